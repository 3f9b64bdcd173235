"""Request Tracker 5 end to end: a real RT, its webhook scrip, and `sopilot serve` as a real process.

A ticket created over REST2 fires RT's scrip; the service reads the transaction back, writes the
guarded suggestion as an internal comment and, for an escalation, moves the ticket to the team's
queue. The agent's correspondence is then read back as feedback in the audit log.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import httpx
import pytest

try:
    from tests import services
except ImportError:  # a package named "tests" in site-packages can shadow tests/
    import services

pytestmark = pytest.mark.server
SECRET = "rt-shared-secret"


def _wait(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def _comment_of_ours(rt_http: httpx.Client, rest: str, ticket_id: int) -> str | None:
    history = rt_http.get(f"{rest}/ticket/{ticket_id}/history", params={"fields": "Type", "per_page": 100}).json()
    for item in history["items"]:
        if item.get("Type") != "Comment":
            continue
        for att in rt_http.get(f"{rest}/transaction/{item['id']}/attachments").json()["items"]:
            content = rt_http.get(f"{rest}/attachment/{att['id']}").json().get("Content")
            text = base64.b64decode(content).decode() if content else ""
            if text.startswith("sopilot suggestion "):
                return text
    return None


@pytest.fixture
def serving(request, tmp_path, indexed_settings):
    """(rt, service base URL, lead key): RT with the webhook scrip, and the service it calls.

    Parametrised with "poll" (indirect), RT has no scrip and the service polls REST2 instead.
    """
    poll = getattr(request, "param", "webhook") == "poll"
    port = services.free_port()
    config_dir = tmp_path / "rt" / "RT_SiteConfig.d"
    config_dir.mkdir(parents=True)
    (config_dir / "sopilot.pm").write_text(f"Set($SopilotWebhookSecret, '{SECRET}');\n1;\n")
    try:
        rt_context = services.rt_server(tmp_path, webhook_url=None if poll else f"http://127.0.0.1:{port}/v1/hooks/rt")
        rt = rt_context.__enter__()
    except services.ServiceUnavailable as exc:
        pytest.skip(f"Request Tracker 5 is not installed here ({exc})")
    env = {**os.environ, "SOPILOT_DATA_DIR": str(indexed_settings.data_dir),
           "SOPILOT_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}", "SOPILOT_RT_URL": rt.base_url,
           "SOPILOT_RT_TOKEN": rt.token, "SOPILOT_WEBHOOK_SECRET": SECRET, "HF_HUB_OFFLINE": "1",
           "SOPILOT_RT_POLL_SECONDS": "0.5" if poll else "0"}
    lead = json.loads(subprocess.run([sys.executable, "-m", "sopilot", "keys", "create", "--name", "Lena Lead",
                                      "--role", "lead", "--json"], env=env, capture_output=True, text=True,
                                     check=True).stdout)["key"]
    log = open(tmp_path / "service.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "sopilot", "serve", "--port", str(port), "--log-level", "info"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait("the service answering /healthz", healthy, 60)
        yield rt, base, lead
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        rt_context.__exit__(None, None, None)
        print((tmp_path / "service.log").read_text(errors="replace")[-3000:])


def test_a_new_rt_ticket_gets_its_suggestion_as_a_comment_and_the_agent_reply_is_feedback(serving):
    rt, base, lead = serving
    rest = rt.rest_url
    with httpx.Client(headers={"Authorization": f"token {rt.token}"}, timeout=10) as rt_http:
        created = rt_http.post(f"{rest}/queue", json={"Name": "Billing Specialist"})
        assert created.status_code == 201, created.text
        started = time.monotonic()
        ticket = rt_http.post(f"{rest}/ticket", json={
            "Queue": "General", "Subject": "Double charge", "Requestor": "customer@example.com",
            "Content": "I was charged twice for my subscription, $420 each time. Please refund the duplicate. "
                       "This is high priority."}).json()
        ticket_id = int(ticket["id"])
        comment = _wait("the suggestion comment", lambda: _comment_of_ours(rt_http, rest, ticket_id), 30)
        seconds = time.monotonic() - started
        print(f"RT ticket {ticket_id} carried its suggestion {seconds:.2f} s after creation (webhook)")
        assert "Decision: escalate under policy A.1" in comment
        assert "Team: Billing Specialist team" in comment and "SLA: " in comment
        assert "Sources:" in comment and "A.1" in comment.split("Sources:")[1]
        assert "Suggested reply (checked by the guard):" in comment
        queue = _wait("the move to the team's queue", lambda: rt_http.get(f"{rest}/ticket/{ticket_id}").json()
                      ["Queue"]["id"] == created.json()["id"], 10)
        assert queue

        suggestion_id = comment.splitlines()[0].removeprefix("sopilot suggestion ").strip()
        reply = "Hello, our Billing Specialist team is reviewing the duplicate charge and will contact you."
        sent = rt_http.post(f"{rest}/ticket/{ticket_id}/correspond", json={"Content": reply,
                                                                           "ContentType": "text/plain"})
        assert sent.status_code == 201, sent.text

        def feedback():
            text = httpx.get(f"{base}/v1/audit", params={"suggestion_id": suggestion_id},
                             headers={"Authorization": f"Bearer {lead}"}).text
            events = [json.loads(line) for line in text.splitlines()]
            return [e for e in events if e["event"] == "reply_sent"]

        [event] = _wait("the agent's reply recorded as feedback", feedback, 30)
        assert event["agent"] == "rt:root" and event["text"] == reply and event["ticket_id"] == f"rt:{ticket_id}"
        assert event["verdict"] == "pass" and event["send_mode"] == "edited"
        made = [json.loads(line) for line in httpx.get(
            f"{base}/v1/audit", params={"ticket_id": f"rt:{ticket_id}", "kind": "suggestion_made"},
            headers={"Authorization": f"Bearer {lead}"}).text.splitlines()]
        assert len(made) == 1, "our own comment and the agent's reply must not ask for another suggestion"


@pytest.mark.parametrize("serving", ["poll"], indirect=True)
def test_polling_rest2_finds_a_new_ticket_without_the_scrip(serving):
    rt, _, _ = serving
    rest = rt.rest_url
    with httpx.Client(headers={"Authorization": f"token {rt.token}"}, timeout=10) as rt_http:
        time.sleep(1.5)  # the poller's first round marks where it starts
        started = time.monotonic()
        ticket = rt_http.post(f"{rest}/ticket", json={
            "Queue": "General", "Subject": "Locked out", "Requestor": "customer@example.com",
            "Content": "I am locked out of my account after 6 failed login attempts, please help."}).json()
        comment = _wait("the suggestion comment", lambda: _comment_of_ours(rt_http, rest, int(ticket["id"])), 30)
        print(f"RT ticket carried its suggestion {time.monotonic() - started:.2f} s after creation (polling 0.5 s)")
        assert "under policy B.1" in comment and "Suggested reply (checked by the guard):" in comment


def test_rt_notices_with_a_wrong_secret_are_refused(serving):
    _, base, _ = serving
    answer = httpx.post(f"{base}/v1/hooks/rt", json={"transaction_id": 1},
                        headers={"X-Sopilot-Webhook-Secret": "guess"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"

