"""Real servers for tests, each on 127.0.0.1 on a free port, in a directory of the caller's.

Plain context managers, no pytest in here (conftest wires them into fixtures):

    with postgres_server(tmp_path) as url:      # "postgresql+psycopg://postgres@127.0.0.1:PORT/sopilot"
    with chroma_server(tmp_path) as (host, port):
    with rt_server(tmp_path) as rt:             # rt.base_url, rt.rest_url, rt.user, rt.password, rt.token

Each one raises `ServiceUnavailable` at once when what it runs is not installed (a test may skip on
it: `scripts/install-system-deps.sh` installs the Debian packages), and `ServiceStartError`, with
the tail of the server's log, when the server is not ready within its timeout. Each server runs in
its own process group; leaving the block stops the whole group (TERM, then KILL after a grace
period) and waits for it. How long each start took is kept in `startup_seconds[name]`.

Request Tracker runs against a private copy of Debian's packaged SQLite database, with a site
config of its own (RT_SITE_CONFIG / RT_SITE_CONFIG_DIR), so every server starts from the same fresh
data and parallel ones share nothing but the read-only code. The first RT start in a process
prepares that copy once (about a second); docs/request-tracker.md explains the choices.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import dataclasses
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PG_BIN = Path(os.environ.get("SOPILOT_PG_BIN", "/usr/lib/postgresql/15/bin"))
RT_SERVER = Path("/usr/share/request-tracker5/libexec/rt-server")
RT_LIB = Path("/usr/share/request-tracker5/lib")
RT_PACKAGED_DB = Path("/var/lib/dbconfig-common/sqlite3/request-tracker5/rtdb")
RT_WEBHOOK_INITIALDATA = Path(__file__).resolve().parent.parent / "scripts" / "rt-webhook-initialdata.pl"

startup_seconds: dict[str, float] = {}
"""Seconds from launch to ready of the last start of each server ("postgres", "chroma", "rt"), and of parts
("postgres.initdb", "rt.template": the one-off preparation of RT's database)."""


class ServiceUnavailable(RuntimeError):
    """What the server needs is not installed on this machine."""


class ServiceStartError(RuntimeError):
    """The server did not start, or was not ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- process plumbing ------------------------------------------------------------------------------


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _launch(argv: list[str], log_path: Path, **kwargs) -> subprocess.Popen:
    """Start `argv` in a new session (its own process group), output to `log_path`."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, **kwargs)


def _exited(proc: subprocess.Popen) -> bool:
    """Whether `proc` has exited, without reaping it (its pid, the group id, stays taken)."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _wait_ready(what: str, proc: subprocess.Popen, ready: Callable[[], bool], timeout: float,
                log_path: Path, started: float) -> float:
    """Poll `ready()` until it is true; seconds since `started`. Raises if the process dies or time runs out."""
    deadline = started + timeout
    while True:
        if _exited(proc):
            raise ServiceStartError(f"{what} exited before it was ready; "
                                    f"log {log_path}:\n{_tail(log_path)}")
        if ready():
            seconds = time.monotonic() - started
            startup_seconds[what] = seconds
            log.info("%s ready in %.2f s", what, seconds)
            return seconds
        if time.monotonic() > deadline:
            raise ServiceStartError(f"{what} not ready after {timeout:.0f} s; log {log_path}:\n{_tail(log_path)}")
        time.sleep(0.1)


def _stop_group(proc: subprocess.Popen, stop_signal: int = signal.SIGTERM, *, leader_only: bool = False,
                grace: float = 15.0) -> None:
    """Stop the process group that `proc` leads: `stop_signal` (to the group, or to `proc` alone when
    `leader_only`), up to `grace` seconds to exit, then SIGKILL for whatever is left in the group.

    The leader is waited for without being reaped (WNOWAIT) until the group is cleared, so its pid, and
    with it the group id, cannot be reused by another process in between.
    """
    if not _exited(proc):
        with contextlib.suppress(ProcessLookupError):
            if leader_only:
                os.kill(proc.pid, stop_signal)
            else:
                os.killpg(proc.pid, stop_signal)
        deadline = time.monotonic() + grace
        while not _exited(proc) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not _exited(proc):
            log.warning("process group %d still running %.0f s after signal %d: SIGKILL", proc.pid, grace, stop_signal)
    # Workers may outlive their parent: clear the group (empty by now, as a rule), then reap the leader.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _http_ok(url: str, headers: dict[str, str] | None = None, timeout: float = 2.0) -> bool:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback only)
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


# --- PostgreSQL ------------------------------------------------------------------------------------


def _traversable_by(path: Path, uid: int, gids: set[int]) -> bool:
    """Whether user `uid` (groups `gids`) can reach `path` through every parent directory."""
    for parent in [path, *path.parents]:
        try:
            st = parent.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == uid:
            needed = stat.S_IXUSR
        elif st.st_gid in gids:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not st.st_mode & needed:
            return False
    return True


@contextlib.contextmanager
def postgres_server(tmp_dir: Path | str, *, database: str = "sopilot", timeout: float = 30.0) -> Iterator[str]:
    """A private PostgreSQL 15 cluster; yields a SQLAlchemy URL to database `database` in it.

    initdb and postgres from `PG_BIN` (SOPILOT_PG_BIN overrides), run as the OS user `postgres`
    when we are root (PostgreSQL refuses to run as root). Listens on 127.0.0.1 only (no Unix
    socket), trust authentication for the superuser `postgres`, durability off (fsync,
    synchronous_commit, full_page_writes): a test database. Stopped with a fast shutdown. A cluster
    that an earlier start left in `tmp_dir` is started again, data and all.
    """
    binaries = {name: PG_BIN / name for name in ("initdb", "postgres", "pg_isready", "createdb")}
    missing = [str(path) for path in binaries.values() if not os.access(path, os.X_OK)]
    if missing:
        raise ServiceUnavailable(f"PostgreSQL 15 not installed ({', '.join(missing)} missing): "
                                 "run scripts/install-system-deps.sh postgres")
    tmp_dir = Path(tmp_dir).resolve()
    tmp_dir.mkdir(parents=True, exist_ok=True)

    run_as: dict = {}
    owner_uid = os.getuid()
    if os.geteuid() == 0:
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ServiceUnavailable("running as root but there is no OS user 'postgres' to run the server") from exc
        run_as = {"user": pg_user.pw_uid, "group": pg_user.pw_gid, "extra_groups": []}
        owner_uid = pg_user.pw_uid
        gids = {pg_user.pw_gid, *os.getgrouplist(pg_user.pw_name, pg_user.pw_gid)}
    else:
        gids = set(os.getgroups())

    # The cluster lives in tmp_dir when the postgres user can reach it there (pytest's tmp_path, under
    # /tmp/pytest-of-root, is mode 700: it cannot), else in a directory of its own under the system temp.
    scratch: Path | None = None
    if _traversable_by(tmp_dir, owner_uid, gids):
        base = tmp_dir / "postgres"
        base.mkdir(exist_ok=True)
    else:
        scratch = base = Path(tempfile.mkdtemp(prefix="sopilot-pg-"))
    data = base / "data"
    if run_as:
        os.chown(base, run_as["user"], run_as["group"])
    log_path = tmp_dir / "postgres.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}

    proc: subprocess.Popen | None = None
    try:
        started = time.monotonic()
        initdb_seconds = 0.0
        if not (data / "PG_VERSION").exists():  # a cluster left in tmp_dir by an earlier start is reused
            init = subprocess.run(
                [str(binaries["initdb"]), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
                cwd=base, env=env, capture_output=True, text=True, timeout=timeout, **run_as)
            if init.returncode != 0:
                raise ServiceStartError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
            initdb_seconds = time.monotonic() - started

        port = free_port()
        proc = _launch(
            [str(binaries["postgres"]), "-D", str(data), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "shared_buffers=32MB", "-c", "max_connections=50"],
            log_path, cwd=base, env=env, **run_as)

        def ready() -> bool:
            check = subprocess.run([str(binaries["pg_isready"]), "-q", "-h", "127.0.0.1", "-p", str(port),
                                    "-U", "postgres", "-d", "postgres", "-t", "1"], env=env, timeout=5)
            return check.returncode == 0

        _wait_ready("postgres", proc, ready, timeout, log_path, started)
        created = subprocess.run([str(binaries["createdb"]), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                  database], env=env, capture_output=True, text=True, timeout=timeout)
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise ServiceStartError(f"createdb {database} failed: {created.stderr.strip()}")
        startup_seconds["postgres"] = time.monotonic() - started
        startup_seconds["postgres.initdb"] = initdb_seconds
        log.info("postgres on 127.0.0.1:%d (initdb %.2f s, ready with database %.2f s)",
                 port, initdb_seconds, startup_seconds["postgres"])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        if proc is not None:
            # SIGINT to the postmaster is PostgreSQL's "fast" shutdown: it ends the sessions itself.
            _stop_group(proc, signal.SIGINT, leader_only=True)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


# --- Chroma ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def chroma_server(tmp_dir: Path | str, *, timeout: float = 30.0) -> Iterator[tuple[str, int]]:
    """`chroma run` (the venv's, beside sys.executable) on a fresh directory; yields (host, port)."""
    chroma = Path(sys.executable).parent / "chroma"
    if not os.access(chroma, os.X_OK):
        raise ServiceUnavailable(f"{chroma} not found: install chromadb into this environment (make install)")
    tmp_dir = Path(tmp_dir).resolve()
    path = tmp_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    host, port = "127.0.0.1", free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    log_path = tmp_dir / "chroma.log"
    started = time.monotonic()
    proc = _launch([str(chroma), "run", "--path", str(path), "--host", host, "--port", str(port)],
                   log_path, cwd=tmp_dir, env=env)
    try:
        _wait_ready("chroma", proc, lambda: _http_ok(f"http://{host}:{port}/api/v2/heartbeat"), timeout,
                    log_path, started)
        yield host, port
    finally:
        _stop_group(proc)


# --- Request Tracker 5 -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RTServer:
    """A running Request Tracker."""

    base_url: str
    """http://127.0.0.1:PORT (RT's $WebBaseURL; $WebPath is empty)."""
    user: str
    password: str
    token: str
    """An auth token of `user`: header `Authorization: token <token>`."""
    directory: Path
    """Holds rtdb (the private SQLite copy), RT_SiteConfig.pm, rt-server.log and outbox.mbox."""

    @property
    def rest_url(self) -> str:
        """The REST2 root, e.g. http://127.0.0.1:PORT/REST/2.0."""
        return f"{self.base_url}/REST/2.0"

    @property
    def auth(self) -> tuple[str, str]:
        """(user, password) for HTTP basic auth (httpx `auth=`)."""
        return self.user, self.password

    @property
    def basic_auth_header(self) -> dict[str, str]:
        """The basic auth header, for clients that take headers only."""
        return {"Authorization": "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()}

    @property
    def outbox(self) -> Path:
        """Mail RT sent (autoreplies, notifications), appended in mbox format by a stand-in sendmail."""
        return self.directory / "outbox.mbox"

    @property
    def log(self) -> Path:
        """rt-server's log (RT's own log goes to STDERR at level warning)."""
        return self.directory / "rt-server.log"


def _perl_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _site_config(settings: dict[str, str | int], extra: list[str] = ()) -> str:
    lines = [f"Set(${key}, {value if isinstance(value, int) else _perl_string(value)});"
             for key, value in settings.items()]
    return "# Written by tests/services.py.\n" + "\n".join([*lines, *extra]) + "\n1;\n"


def _private_paths(directory: Path) -> list[str]:
    """Logging to STDERR only; compiled templates and web sessions in `directory`, not under /var."""
    for sub in ("mason_data", "session_data"):
        (directory / sub).mkdir(exist_ok=True)
    return ["Set($LogToSyslog, undef);", "Set($LogToFile, undef);",
            f"$RT::MasonDataDir = {_perl_string(str(directory / 'mason_data'))};",
            f"$RT::MasonSessionDir = {_perl_string(str(directory / 'session_data'))};"]


_RT_SETUP = r"""
use strict; use warnings;
use RT; RT::LoadConfig(); RT::Init();
my $user = RT::User->new(RT->SystemUser);
$user->Load($ENV{RT_SETUP_USER}) or die "no user $ENV{RT_SETUP_USER}\n";
# Re-hash the password at this config's $BcryptCost (4): every REST2 request checks it.
my ($ok, $msg) = $user->SetPassword($ENV{RT_SETUP_PASSWORD});
die "SetPassword: $msg\n" unless $ok;
my $current = RT::CurrentUser->new; $current->Load($user->id);
my ($id, $tmsg, $authstring) = RT::AuthToken->new($current)->Create(Owner => $user->id, Description => 'tests');
die "AuthToken: $tmsg\n" unless $id;
if ($ENV{RT_SETUP_DATAFILE}) {
    my ($ret, $imsg) = $RT::Handle->InsertData($ENV{RT_SETUP_DATAFILE}, undef, disconnect_after => 0);
    die "InsertData: $imsg\n" unless $ret;
}
print "TOKEN=$authstring\n";
"""

_rt_templates: dict[tuple, tuple[Path, str]] = {}


def _rt_template(perl: str, user: str, password: str, webhook: bool, timeout: float) -> tuple[Path, str]:
    """A prepared copy of the packaged database (fast password hash, an auth token, the webhook scrip
    if asked), made once per process and copied for each server; (database path, token)."""
    key = (user, password, webhook, RT_PACKAGED_DB.stat().st_mtime_ns)
    if key in _rt_templates and _rt_templates[key][0].exists():
        return _rt_templates[key]
    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="sopilot-rt-template-"))
    atexit.register(shutil.rmtree, directory, True)
    database = directory / "rtdb"
    shutil.copyfile(RT_PACKAGED_DB, database)
    database.chmod(0o600)
    (directory / "RT_SiteConfig.d").mkdir()
    config = directory / "RT_SiteConfig.pm"
    config.write_text(_site_config({"DatabaseType": "SQLite", "DatabaseName": str(database), "Timezone": "UTC",
                                    "LogToSTDERR": "error", "BcryptCost": 4}, _private_paths(directory)))
    env = {**os.environ, "RT_SITE_CONFIG": str(config), "RT_SITE_CONFIG_DIR": str(directory / "RT_SiteConfig.d"),
           "PERL5LIB": str(RT_LIB), "RT_SETUP_USER": user, "RT_SETUP_PASSWORD": password}
    if webhook:
        env["RT_SETUP_DATAFILE"] = str(RT_WEBHOOK_INITIALDATA)
    setup = subprocess.run([perl, "-e", _RT_SETUP], cwd=directory, env=env, capture_output=True, text=True,
                           timeout=timeout)
    token = next((line[6:] for line in setup.stdout.splitlines() if line.startswith("TOKEN=")), None)
    if setup.returncode != 0 or token is None:
        raise ServiceStartError(f"RT setup failed ({setup.returncode}):\n{setup.stdout}\n{setup.stderr}")
    startup_seconds["rt.template"] = time.monotonic() - started
    _rt_templates[key] = (database, token)
    return database, token


@contextlib.contextmanager
def rt_server(tmp_dir: Path | str, *, webhook_url: str | None = None, user: str = "root",
              password: str = "password", workers: int = 4, timeout: float = 60.0) -> Iterator[RTServer]:
    """Request Tracker 5 (Debian's rt-server, Starlet) on 127.0.0.1, REST2 at `rest_url`.

    Runs on a private copy of the packaged SQLite database (queue General, user root/password),
    prepared once per process, with a site config of its own; outgoing mail is appended to `outbox`.
    With `webhook_url`, the copy has the scrip of scripts/rt-webhook-initialdata.pl: every Create,
    Correspond and Comment then POSTs a JSON notice there.
    """
    for needed in (RT_SERVER, RT_PACKAGED_DB):
        if not needed.exists():
            raise ServiceUnavailable(f"Request Tracker 5 not installed ({needed} missing): "
                                     "run scripts/install-system-deps.sh rt")
    perl = shutil.which("perl")
    if perl is None:
        raise ServiceUnavailable("perl not found")
    started = time.monotonic()
    template, token = _rt_template(perl, user, password, bool(webhook_url), timeout)

    directory = Path(tmp_dir).resolve() / "rt"
    (directory / "RT_SiteConfig.d").mkdir(parents=True, exist_ok=True)
    database = directory / "rtdb"
    shutil.copyfile(template, database)
    database.chmod(0o600)
    sendmail = directory / "sendmail"
    sendmail.write_text(f"#!/bin/sh\n# Stand-in sendmail: keep the message.\ncat >> '{directory / 'outbox.mbox'}'\n")
    sendmail.chmod(0o755)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings: dict[str, str | int] = {
        "rtname": "sopilot-test",
        "Organization": "sopilot.test",
        "Timezone": "UTC",
        "DatabaseType": "SQLite",
        "DatabaseName": str(database),
        "WebDomain": "127.0.0.1",
        "WebPort": port,
        "WebPath": "",
        "WebBaseURL": base_url,
        "CorrespondAddress": "support@sopilot.test",
        "CommentAddress": "support-comment@sopilot.test",
        "LogToSTDERR": "warning",
        "MailCommand": "sendmailpipe",
        "SendmailPath": str(sendmail),
        "BcryptCost": 4,
    }
    if webhook_url:
        settings["SopilotWebhookURL"] = webhook_url
    site_config = directory / "RT_SiteConfig.pm"
    site_config.write_text(_site_config(settings, _private_paths(directory)))

    env = {**os.environ, "RT_SITE_CONFIG": str(site_config),
           "RT_SITE_CONFIG_DIR": str(directory / "RT_SiteConfig.d"), "PERL5LIB": str(RT_LIB)}
    log_path = directory / "rt-server.log"
    # Never SIGINT rt-server as root: its INT handler runs `chown -R www-data /var/lib/request-tracker5`.
    proc = _launch([perl, str(RT_SERVER), "--host", "127.0.0.1", "--port", str(port), "--max-workers", str(workers)],
                   log_path, cwd=directory, env=env)
    server = RTServer(base_url=base_url, user=user, password=password, token=token, directory=directory)
    try:
        _wait_ready("rt", proc, lambda: _http_ok(f"{server.rest_url}/rt", server.basic_auth_header), timeout,
                    log_path, started)
        yield server
    finally:
        _stop_group(proc)
