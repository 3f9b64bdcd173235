"""The HTTP service against real parts: a `chroma run` server, the audit log in PostgreSQL, argon2 keys.

One stack per module: PostgreSQL and Chroma started by tests/services.py, the shipped knowledge
base ingested into the Chroma server, keys of every role, and the app driven over ASGI.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import io
import json
import time

import pytest

try:
    from tests import services
except ImportError:  # a package named "tests" in site-packages can shadow tests/
    import services

from sopilot.core.settings import Settings

pytestmark = pytest.mark.server
SECRET = "test-webhook-secret"
TICKET = {"message": "I was charged twice for my March invoice, $89.", "priority": "Medium", "ticket_id": "ZD-7"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(settings, keys by role) over a Chroma server and PostgreSQL."""
    tmp = tmp_path_factory.mktemp("service")
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(services.postgres_server(tmp))
            host, port = stack.enter_context(services.chroma_server(tmp))
        except services.ServiceUnavailable as exc:
            pytest.skip(str(exc))
        from sopilot.ingest.pipeline import ingest

        from sopilot.identity import KeyStore

        settings = Settings.from_env({}, data_dir=tmp / "data", chroma_url=f"http://{host}:{port}", database_url=url,
                                     webhook_secret=SECRET)
        ingest(None, settings, progress=False)
        store = KeyStore(url)
        roles = ("agent", "senior", "lead", "admin")
        keys = {role: store.create(name=f"{role} person", role=role).key for role in roles}
        yield settings, keys


@pytest.fixture(scope="module")
def client(stack):
    from fastapi.testclient import TestClient

    from sopilot.service import create_app

    settings, _ = stack
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 60
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/healthz").json()
            time.sleep(0.1)
        yield client


def auth(stack, role):
    return {"Authorization": f"Bearer {stack[1][role]}"}


def error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]["message"]


def test_healthz_needs_no_key(client):
    assert client.get("/healthz").json()["status"] == "ok"


def test_suggest_answers_the_suggest_document_with_an_id_and_records_the_key_name(client, stack):
    response = client.post("/v1/suggest", json=TICKET, headers=auth(stack, "agent"))
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["suggestion_id"].startswith("sug_") and doc["ticket_id"] == "ZD-7"
    assert doc["guard"]["policy"] == "A.1" and doc["guard"]["outcome"] == "automate"
    assert doc["reply"] == doc["guard"]["reply"] and doc["guard"]["verdict"] == "pass"
    assert doc["citations"] and {"retrieval", "decision", "draft", "notes"} <= set(doc)
    lines = client.get("/v1/audit", params={"suggestion_id": doc["suggestion_id"]}, headers=auth(stack, "lead"))
    events = [json.loads(line) for line in lines.text.splitlines()]
    assert [e["event"] for e in events] == ["suggestion_made"]
    assert events[0]["agent"] == "agent person" and events[0]["ticket_id"] == "ZD-7"
    assert events[0]["text"] == doc["reply"] and events[0]["policy"] == "A.1"


def test_streaming_sends_only_the_guarded_reply(client, stack):
    ticket = {"message": "Please refund me $900 right now, the product arrived broken", "sop_id": "C.1",
              "damage": "major", "under_warranty": True}
    response = client.post("/v1/suggest/stream", json=ticket, headers=auth(stack, "agent"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.strip().split("\n\n"):
        name = block.split("\n")[0].removeprefix("event: ")
        data = json.loads(block.split("\n", 1)[1].removeprefix("data: "))
        events.append((name, data))
    assert events[0][0] == "meta" and events[-1][0] == "suggestion"
    streamed = "".join(d for n, d in events if n == "reply")
    final = events[-1][1]
    assert streamed == final["reply"] == final["guard"]["reply"]
    guard = client.post("/v1/guard", json={"ticket": ticket, "reply": streamed}, headers=auth(stack, "agent"))
    assert guard.json()["verdict"] == "pass"


def test_feedback_rechecks_the_exact_text_and_overrides_need_a_senior_and_a_reason(client, stack):
    sid = client.post("/v1/suggest", json=TICKET, headers=auth(stack, "agent")).json()["suggestion_id"]
    path = f"/v1/suggestions/{sid}/feedback"
    sent = client.post(path, json={"action": "sent"}, headers=auth(stack, "agent")).json()
    assert sent["event"] == "reply_sent" and sent["verdict"] == "pass"
    edited = client.post(path, json={"action": "edited", "text": "Good news: we refunded $420 to your card."},
                         headers=auth(stack, "agent")).json()
    assert edited["verdict"] == "blocked" and "unauthorized_refund" in [v["code"] for v in edited["violations"]]
    error(client.post(path, json={"action": "overridden", "justification": "VIP", "text": "Refunded $420."},
                      headers=auth(stack, "agent")), 403, "forbidden")
    error(client.post(path, json={"action": "overridden", "text": "Refunded $420."}, headers=auth(stack, "senior")),
          422, "invalid_input")
    overridden = client.post(path, json={"action": "overridden", "justification": "manager approved the full amount",
                                         "text": "We refunded $420."}, headers=auth(stack, "senior")).json()
    assert overridden["event"] == "reply_overridden" and overridden["verdict"] == "blocked"
    assert overridden["agent"] == "senior person"
    wrong = client.post(path, json={"action": "wrong_sop", "sop_id": "I.2"}, headers=auth(stack, "agent")).json()
    assert wrong["sop_id"] == "I.2"
    rows = client.get("/v1/audit", params={"suggestion_id": sid}, headers=auth(stack, "admin")).text.splitlines()
    events = [json.loads(r) for r in rows]
    assert [e["event"] for e in events][1:4] == ["reply_sent", "reply_sent", "reply_overridden"]
    assert events[2]["verdict"] == "blocked" and events[2]["violations"] == ["unauthorized_refund"]
    assert events[3]["justification"] == "manager approved the full amount"
    error(client.post("/v1/suggestions/sug_nope/feedback", json={"action": "sent"}, headers=auth(stack, "agent")),
          404, "not_found")


def test_stops_are_for_leads_and_record_who_and_why(client, stack):
    error(client.put("/v1/stops/A.1", json={"stopped": True, "reason": "bug"}, headers=auth(stack, "senior")),
          403, "forbidden")
    state = client.put("/v1/stops/A.1", json={"stopped": True, "reason": "refund loop found"},
                       headers=auth(stack, "lead")).json()
    assert state["stopped"]["A.1"]["by"] == "lead person" and state["stopped"]["A.1"]["reason"] == "refund loop found"
    doc = client.post("/v1/suggest", json=TICKET, headers=auth(stack, "agent")).json()
    assert doc["guard"]["outcome"] != "automate"
    assert client.get("/v1/stops", headers=auth(stack, "agent")).json()["stopped"]["A.1"]["by"] == "lead person"
    client.put("/v1/stops/A.1", json={"stopped": False, "reason": "fixed"}, headers=auth(stack, "admin"))
    assert client.get("/v1/stops", headers=auth(stack, "agent")).json() == {"stopped": {}}
    error(client.put("/v1/stops/Z.9", json={"stopped": True, "reason": "x"}, headers=auth(stack, "lead")),
          404, "not_found")


def test_guard_and_retrieve_answer_as_the_cli_does(client, stack):
    from sopilot.eval.guard import parse_case
    from sopilot.guard.policy import policies_for
    from sopilot.guard.result import guard_ticket

    settings = stack[0]
    ticket = {"message": "refund my duplicate charge", "sop_id": "A.1", "priority": "Low", "amount": "$120"}
    answer = client.post("/v1/guard", json={"ticket": ticket, "reply": "We refunded $500."},
                         headers=auth(stack, "agent")).json()
    parsed, _, _ = parse_case({"ticket": ticket}, "t")
    assert answer == json.loads(json.dumps(guard_ticket(parsed, policies_for(settings), reply="We refunded $500.")
                                           .to_json(), default=str))
    found = client.post("/v1/retrieve", json={"query": "locked out after failed logins", "k": 3},
                        headers=auth(stack, "agent")).json()
    hits = found["hits"]
    assert len(hits) == 3 and hits[0]["sop_id"] == "B.1"
    assert found["language"] == "en" and found["read_as"] and 0.0 <= found["match_probability"] <= 1.0
    assert found["matched"] is (found["match_probability"] >= settings.match_threshold)


def test_audit_exports_csv_and_filters(client, stack):
    client.post("/v1/suggest", json={**TICKET, "ticket_id": "CSV-1"}, headers=auth(stack, "agent"))
    text = client.get("/v1/audit", params={"format": "csv", "ticket_id": "CSV-1"}, headers=auth(stack, "lead")).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.startswith("id,created_at,kind") and len(rows) == 1
    assert rows[0]["ticket_id"] == "CSV-1" and rows[0]["agent"] == "agent person"
    assert rows[0]["kind"] == "suggestion_made"
    error(client.get("/v1/audit", params={"kind": "nonsense"}, headers=auth(stack, "lead")), 422, "invalid_input")


def test_bad_input_is_json_never_a_traceback(client, stack):
    headers = {**auth(stack, "agent"), "content-type": "application/json"}
    error(client.post("/v1/suggest", content=b"{not json", headers=headers), 400, "malformed_json")
    assert "message" in error(client.post("/v1/suggest", json={"priority": "High"}, headers=headers),
                              422, "invalid_request")
    error(client.post("/v1/suggest", json={"message": "x", "priority": "Urgent!!"}, headers=headers),
          422, "invalid_input")
    error(client.post("/v1/suggest", content=b'{"message": "' + b"a" * 1_100_000 + b'"}', headers=headers),
          413, "body_too_large")
    error(client.get("/v1/nothing-here", headers=headers), 404, "not_found")


ENDPOINTS = [
    ("post", "/v1/suggest", TICKET), ("post", "/v1/suggest/stream", TICKET),
    ("post", "/v1/guard", {"ticket": TICKET}), ("post", "/v1/retrieve", {"query": "refund", "k": 2}),
    ("post", "/v1/suggestions/sug_x/feedback", {"action": "sent"}), ("get", "/v1/policies", None),
    ("get", "/v1/stops", None), ("put", "/v1/stops/A.1", {"stopped": False, "reason": "r"}), ("get", "/v1/audit", None),
    ("get", "/v1/keys", None), ("post", "/v1/keys", {"name": "x", "role": "agent"}), ("delete", "/v1/keys/x", None),
    ("post", "/v1/csat", {"ticket_id": "ZD-7", "score": 4}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer sop_000000000000_" + "x" * 43, "Basic dXNlcjpwYXNz"])
def test_every_endpoint_refuses_a_missing_or_unknown_key(client, method, path, body, header):
    headers = {"Authorization": header} if header else {}
    error(client.request(method, path, json=body, headers=headers), 401, "unauthorized")


ROLE_MATRIX = [
    ("put", "/v1/stops/B.2", {"stopped": False, "reason": "r"},
     {"agent": 403, "senior": 403, "lead": 200, "admin": 200}),
    ("get", "/v1/audit", None, {"agent": 403, "senior": 403, "lead": 200, "admin": 200}),
    ("post", "/v1/guard", {"ticket": TICKET}, {"agent": 200, "senior": 200, "lead": 200, "admin": 200}),
    ("get", "/v1/policies", None, {"agent": 200, "senior": 200, "lead": 200, "admin": 200}),
    ("get", "/v1/keys", None, {"agent": 403, "senior": 403, "lead": 403, "admin": 200}),
    ("delete", "/v1/keys/nobody", None, {"agent": 403, "senior": 403, "lead": 403, "admin": 422}),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), ROLE_MATRIX,
                         ids=[f"{m} {p}" for m, p, _, _ in ROLE_MATRIX])
def test_role_matrix(client, stack, method, path, body, expected):
    got = {role: client.request(method, path, json=body, headers=auth(stack, role)).status_code for role in expected}
    assert got == expected


def test_override_feedback_role_matrix(client, stack):
    sid = client.post("/v1/suggest", json=TICKET, headers=auth(stack, "agent")).json()["suggestion_id"]
    body = {"action": "overridden", "justification": "approved by phone", "text": "We refunded $89."}
    got = {role: client.post(f"/v1/suggestions/{sid}/feedback", json=body, headers=auth(stack, role)).status_code
           for role in ("agent", "senior", "lead", "admin")}
    assert got == {"agent": 403, "senior": 200, "lead": 200, "admin": 200}


def test_admins_create_and_revoke_keys_over_http(client, stack):
    made = client.post("/v1/keys", json={"name": "Nina New", "role": "senior"}, headers=auth(stack, "admin"))
    assert made.status_code == 201 and made.json()["role"] == "senior"
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    assert client.get("/v1/stops", headers=key).status_code == 200
    assert "Nina New" in [k["name"] for k in client.get("/v1/keys", headers=auth(stack, "admin")).json()["keys"]]
    assert client.delete("/v1/keys/Nina New", headers=auth(stack, "admin")).json()["revoked_at"]
    error(client.get("/v1/stops", headers=key), 401, "unauthorized")


def sign(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Sopilot-Timestamp": str(ts), "X-Sopilot-Signature": f"sha256={mac}", "content-type": "application/json"}


def test_signed_webhook_is_idempotent(client, stack):
    body = json.dumps({"event_id": "evt-1", "ticket_id": "4242", "ticket": {"message": "I can't log in, reset please"}}
                      ).encode()
    first = client.post("/v1/hooks/zendesk", content=body, headers=sign(body))
    assert first.status_code == 200, first.text
    again = client.post("/v1/hooks/zendesk", content=body, headers=sign(body))
    assert again.json()["duplicate"] is True
    assert again.json()["suggestion_id"] == first.json()["suggestion_id"]
    made = client.get("/v1/audit", params={"ticket_id": "zendesk:4242", "kind": "suggestion_made"},
                      headers=auth(stack, "lead")).text.splitlines()
    assert len(made) == 1 and json.loads(made[0])["agent"] == "zendesk webhook"


@pytest.mark.parametrize("case", ["unsigned", "wrong secret", "tampered body", "replayed"])
def test_webhooks_without_a_valid_fresh_signature_are_refused(client, case):
    body = json.dumps({"event_id": f"evt-{case}", "ticket": {"message": "hello"}}).encode()
    headers = {"unsigned": {"content-type": "application/json"}, "wrong secret": sign(body, secret="guess"),
               "tampered body": sign(body.replace(b"hello", b"hullo")),
               "replayed": sign(body, timestamp=int(time.time()) - 3600)}[case]
    error(client.post("/v1/hooks/freshdesk", content=body, headers=headers), 401, "unauthorized")
