"""Each helper of tests/services.py starts its real server, a real round trip works, and leaving the block stops it.

A helper whose server is not installed skips its test, naming the install command
(scripts/install-system-deps.sh).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

try:
    from tests import services
except ImportError:  # a regular package named "tests" in site-packages (text2num 2.5 ships one) shadows tests/
    import services

pytestmark = pytest.mark.server


@contextlib.contextmanager
def started(server):
    """Enter a helper's context manager, skipping the test if its server is not installed."""
    try:
        value = server.__enter__()
    except services.ServiceUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield value
    except BaseException as exc:
        if not server.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        server.__exit__(None, None, None)


def closed(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) != 0


def test_postgres_server_answers_select_1_through_sqlalchemy(tmp_path):
    pytest.importorskip("psycopg")
    import sqlalchemy

    with started(services.postgres_server(tmp_path)) as url:
        engine = sqlalchemy.make_url(url)
        assert (engine.drivername, engine.host, engine.database) == ("postgresql+psycopg", "127.0.0.1", "sopilot")
        db = sqlalchemy.create_engine(url)
        try:
            with db.connect() as connection:
                assert connection.execute(sqlalchemy.text("select 1")).scalar_one() == 1
                assert connection.execute(sqlalchemy.text("show listen_addresses")).scalar_one() == "127.0.0.1"
        finally:
            db.dispose()
    assert closed("127.0.0.1", engine.port)
    assert services.startup_seconds["postgres"] < 30


def test_chroma_server_answers_its_heartbeat(tmp_path):
    with started(services.chroma_server(tmp_path)) as (host, port):
        response = httpx.get(f"http://{host}:{port}/api/v2/heartbeat", timeout=5)
        assert response.status_code == 200
        assert "nanosecond heartbeat" in response.json()
    assert closed(host, port)


def test_rt_server_creates_a_ticket_and_reads_it_back_over_rest2(tmp_path):
    with started(services.rt_server(tmp_path)) as rt:
        client = httpx.Client(base_url=rt.rest_url, auth=rt.auth, timeout=30)
        created = client.post("/ticket", json={
            "Queue": "General", "Subject": "Charged twice for order 1234", "Requestor": "alice@example.com",
            "Content": "I was charged twice for order 1234.", "ContentType": "text/plain"})
        assert created.status_code == 201, created.text
        ticket_id = int(created.json()["id"])

        ticket = client.get(f"/ticket/{ticket_id}").json()
        assert ticket["Subject"] == "Charged twice for order 1234"
        assert ticket["Status"] == "new"
        assert [r["id"] for r in ticket["Requestor"]] == ["alice@example.com"]
        assert ticket["_hyperlinks"][0]["_url"] == f"{rt.rest_url}/ticket/{ticket_id}"  # $WebBaseURL is right

        history = client.get(f"/ticket/{ticket_id}/history", params={"fields": "Type"}).json()["items"]
        assert history[0]["Type"] == "Create"
        content = client.get(f"/transaction/{history[0]['id']}/attachments", params={"fields": "Content"}).json()
        assert content["items"][0]["Content"] == "I was charged twice for order 1234."

        assert httpx.get(f"{rt.rest_url}/rt", headers={"Authorization": f"token {rt.token}"}).status_code == 200
        assert httpx.get(f"{rt.rest_url}/rt", auth=(rt.user, "wrong")).status_code == 401
        assert "AutoReply" in rt.outbox.read_text()  # mail goes to the stand-in sendmail, not out
        port = httpx.URL(rt.base_url).port
    assert closed("127.0.0.1", port)


def test_rt_server_webhook_scrip_posts_on_create_and_correspond(tmp_path):
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{hook.server_address[1]}/rt/webhook"
        with started(services.rt_server(tmp_path, webhook_url=url)) as rt:
            client = httpx.Client(base_url=rt.rest_url, auth=rt.auth, timeout=30)
            ticket_id = int(client.post("/ticket", json={"Queue": "General", "Subject": "Hook me", "Content": "hi",
                                                         "ContentType": "text/plain"}).json()["id"])
            client.post(f"/ticket/{ticket_id}/correspond", json={"Content": "Hello", "ContentType": "text/plain"})
            deadline = time.monotonic() + 10
            while len(received) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        hook.shutdown()
        hook.server_close()
    assert [(r["event"], r["ticket_id"], r["queue"]) for r in received] == [
        ("create", ticket_id, "General"), ("correspond", ticket_id, "General")]
    assert received[0]["transaction_id"] < received[1]["transaction_id"]
