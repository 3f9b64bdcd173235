"""The index under concurrency and for long-running readers: one writer, no collection deleted under
a reader that may still hold it, no directories left behind, Chroma failures as SopilotErrors."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sopilot.ingest.pipeline import ingest
from sopilot.ingest.store import Store, active_version

from sopilot.core.errors import IndexChangedError, IngestBusyError, SopilotError, StoreUnavailableError
from sopilot.core.settings import Settings
from tests.conftest import KNOWLEDGE

HOLD_LOCK = """
import sys, time
from sopilot.core.settings import Settings
from sopilot.ingest.lock import ingest_lock
with ingest_lock(Settings.from_env()):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


def _settings(data_dir: Path, knowledge: Path, **overrides) -> Settings:
    return Settings.from_env({}, data_dir=data_dir, knowledge_dir=knowledge, **overrides)


def _edit(knowledge: Path, n: int) -> None:
    text = f"# Changing {n}\n\n## Procedure\n\n1. Step number {n} of the changing SOP.\n"
    (knowledge / "changing.md").write_text(text, encoding="utf-8")


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "SOPILOT_DATA_DIR": str(settings.data_dir),
            "SOPILOT_KNOWLEDGE_DIR": str(settings.knowledge_dir)}


def test_a_second_ingest_waits_or_says_so_and_a_killed_holder_frees_the_lock(tmp_path, knowledge, embedder):
    settings = _settings(tmp_path / "data", knowledge, ingest_wait=0.0)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK], env=_env(settings), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = rf"another ingest of .* is running \(pid {holder.pid} on .*SOPILOT_INGEST_WAIT"
        with pytest.raises(IngestBusyError, match=busy):
            ingest(None, settings)
        started = time.monotonic()
        with pytest.raises(IngestBusyError, match="did not finish within 1 s"):
            ingest(None, _settings(settings.data_dir, knowledge, ingest_wait=1.0))
        assert 0.9 <= time.monotonic() - started < 10
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    report = ingest(None, settings)  # the kernel released the dead holder's lock: no wait at all
    assert Store.for_settings(settings).active_version() == report.version


def test_two_ingests_at_once_both_finish_and_the_pointer_names_a_live_collection(tmp_path, knowledge, embedder):
    settings = _settings(tmp_path / "data", knowledge)
    ingest(None, settings)
    _edit(knowledge, 1)
    other = tmp_path / "other"
    shutil.copytree(knowledge, other)
    _edit(other, 2)
    env = {**_env(settings), "SOPILOT_INGEST_WAIT": "600"}  # the second waits for the first, however slow
    runs = [subprocess.Popen([sys.executable, "-m", "sopilot", "ingest", *paths], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for paths in ([], [str(other / "changing.md")])]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in runs]
    assert [code for code, _ in results] == [0, 0], results
    assert all("NotFoundError" not in err and "Traceback" not in err for _, err in results)
    store = Store.for_settings(settings)
    assert store.active().count() > 0
    assert store.active_version() in store.versions()


def _segment_dirs(chroma: Path) -> tuple[set[str], set[str]]:
    with sqlite3.connect(f"file:{chroma / 'chroma.sqlite3'}?mode=ro", uri=True) as db:
        live = {row[0] for row in db.execute("SELECT id FROM segments")}
    on_disk = {p.name for p in chroma.iterdir() if p.is_dir()}
    return live, on_disk


def test_a_reader_keeps_working_for_one_switch_then_gets_a_clear_error_and_reloads(tmp_path, knowledge, embedder):
    from sopilot.retriever.hybrid import load

    from sopilot.suggest import resources

    settings = _settings(tmp_path / "data", knowledge)
    first = ingest(None, settings)
    reader = load(settings)
    _edit(knowledge, 1)
    second = ingest(None, settings)
    assert reader.search("customer was charged twice", k=1)[0].sop_id == "A.1"  # previous version kept
    assert set(Store.for_settings(settings).versions()) == {first.version, second.version}
    _edit(knowledge, 2)
    third = ingest(None, settings)
    assert set(Store.for_settings(settings).versions()) == {second.version, third.version}
    with pytest.raises(IndexChangedError, match=r"a newer ingest replaced it\): retry"):
        reader.search("customer was charged twice", k=1)
    assert active_version(settings) == third.version
    fresh = resources.retriever(settings)
    assert fresh.search("customer was charged twice", k=1)[0].sop_id == "A.1"
    resources.forget(settings)


def test_ten_changed_ingests_leave_no_orphaned_collection_directories(tmp_path, knowledge, embedder):
    settings = _settings(tmp_path / "data", knowledge)
    for n in range(10):
        _edit(knowledge, n)
        ingest(None, settings)
    live, on_disk = _segment_dirs(settings.data_dir / "chroma")
    assert on_disk <= live
    assert len(Store.for_settings(settings).versions()) == 2


def test_a_version_written_by_another_process_is_seen_by_a_cheap_read(tmp_path, knowledge, embedder):
    settings = _settings(tmp_path / "data", knowledge)
    first = ingest(None, settings)
    assert active_version(settings) == first.version
    _edit(knowledge, 7)
    done = subprocess.run([sys.executable, "-m", "sopilot", "ingest"], env=_env(settings), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    started = time.perf_counter()
    seen = active_version(settings)
    assert seen not in {None, first.version}
    assert time.perf_counter() - started < 0.5


@pytest.mark.server
def test_an_unreachable_chroma_server_is_a_sopilot_error_in_library_and_cli(tmp_path, knowledge, embedder, capsys,
                                                                         monkeypatch):
    from sopilot.retriever.hybrid import load

    from sopilot.cli import main
    from tests.services import ServiceUnavailable, chroma_server

    try:
        server = chroma_server(tmp_path / "server")
        host, port = server.__enter__()
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    try:
        settings = _settings(tmp_path / "data", knowledge, chroma_url=f"http://{host}:{port}")
        report = ingest(None, settings)
        assert active_version(settings) == report.version
        busy = _settings(tmp_path / "data", knowledge, chroma_url=settings.chroma_url, ingest_wait=0.0)
        store = Store.for_settings(settings)
        store.set_pointer(lock_owner="pid 1 on elsewhere", lock_until=time.time() + 60)
        with pytest.raises(IngestBusyError, match=r"is running \(pid 1 on elsewhere\)"):
            ingest(None, busy)
        store.set_pointer(lock_owner="pid 1 on elsewhere", lock_until=time.time() - 1)  # the holder died
        ingest(None, busy)
        reader = load(settings)
        assert reader.search("customer was charged twice", k=1)[0].sop_id == "A.1"
    finally:
        server.__exit__(None, None, None)
    with pytest.raises(StoreUnavailableError, match=f"cannot reach the Chroma server at http://{host}:{port}"):
        reader.search("customer was charged twice", k=1)
    with pytest.raises(SopilotError, match="cannot reach"):
        active_version(settings)
    monkeypatch.setenv("SOPILOT_CHROMA_URL", settings.chroma_url)
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(settings.data_dir))
    assert main(["retrieve", "customer was charged twice", "--json"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the Chroma server" in err and "Traceback" not in err
