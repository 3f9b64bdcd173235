"""The service beside the operations reports and the audit schema, on SQLite.

The Monday 09:00 reports scheduled in the service, CSAT scores over HTTP, decisions under the
policy set in force on the ticket's day, the suggestion events as the workspace records them, and
the service's tables made by the audit migrations (also over a database an older release made).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from sopilot.core.settings import ROOT, Settings

CURRENT = (ROOT / "knowledge" / "policies.yaml").read_text(encoding="utf-8")


def _settings(tmp_path: Path, **changes) -> Settings:
    return Settings.from_env({}, data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'audit.db'}",
                             **changes)


@pytest.fixture
def served(tmp_path):
    """(client, settings, keys by role) over a service whose models load on first use."""
    from fastapi.testclient import TestClient

    from sopilot.identity import KeyStore
    from sopilot.service import create_app

    settings = _settings(tmp_path)
    store = KeyStore(settings.audit_url)
    keys = {role: store.create(name=f"{role} person", role=role).key for role in ("agent", "lead")}
    with TestClient(create_app(settings, warm=False), raise_server_exceptions=False) as client:
        yield client, settings, keys


def _auth(keys, role):
    return {"Authorization": f"Bearer {keys[role]}"}


# ---- the Monday 09:00 reports -------------------------------------------------------------------

def test_the_weekly_reports_are_scheduled_for_monday_nine_only_when_switched_on(tmp_path):
    from fastapi.testclient import TestClient

    from sopilot.reports.schedule import JOB_ID, weekly_run
    from sopilot.service import create_app

    off = create_app(_settings(tmp_path / "off"), warm=False)
    with TestClient(off):
        assert off.state.sopilot.scheduler is None
    app = create_app(_settings(tmp_path / "on", reports_schedule="on"), warm=False)
    with TestClient(app):
        scheduler = app.state.sopilot.scheduler
        assert scheduler is not None and scheduler.running
        job = scheduler.get_job(JOB_ID)
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("mon", "9", "0")
        assert str(job.trigger.timezone) == "UTC" and job.func is weekly_run
        assert job.next_run_time.weekday() == 0 and (job.next_run_time.hour, job.next_run_time.minute) == (9, 0)
    assert app.state.sopilot.scheduler is None and not scheduler.running


def test_a_bad_schedule_switch_is_refused_with_what_to_write():
    from sopilot.core.errors import ConfigError

    with pytest.raises(ConfigError, match="SOPILOT_REPORTS_SCHEDULE='yes' is not on or off"):
        Settings.from_env({"SOPILOT_REPORTS_SCHEDULE": "yes"})
    assert Settings.from_env({"SOPILOT_REPORTS_SCHEDULE": "ON"}).reports_scheduled
    assert not Settings.from_env({}).reports_scheduled


# ---- CSAT over HTTP -----------------------------------------------------------------------------

def test_a_csat_score_is_recorded_on_the_ticket_and_a_low_one_flagged(served):
    from sopilot import audit

    client, settings, keys = served
    low = client.post("/v1/csat", json={"ticket_id": "ZD-9", "score": 1, "comment": "Nobody answered for days."},
                      headers=_auth(keys, "agent"))
    assert low.status_code == 201, low.text
    body = low.json()
    assert (body["recorded"], body["duplicates"], body["low"]) == (1, 0, 1)
    assert body["tasks"][0]["kind"] == "csat_review" and body["tasks"][0]["ticket_id"] == "ZD-9"
    good = client.post("/v1/csat", json={"ticket_id": "ZD-10", "score": 5}, headers=_auth(keys, "agent")).json()
    assert (good["recorded"], good["low"]) == (1, 0)
    again = client.post("/v1/csat", json={"ticket_id": "ZD-10", "score": 5}, headers=_auth(keys, "agent")).json()
    assert (again["recorded"], again["duplicates"]) == (0, 1)
    events = {e.ticket_id: e for e in audit.recent(settings, kind="csat_recorded")}
    assert events["ZD-9"].detail["score"] == 1 and events["ZD-9"].detail["comment"] == "Nobody answered for days."
    assert events["ZD-10"].detail["score"] == 5


@pytest.mark.parametrize("body", [{"ticket_id": "ZD-9", "score": 0}, {"ticket_id": "ZD-9", "score": 6},
                                  {"ticket_id": "ZD-9", "score": "great"}, {"score": 3},
                                  {"ticket_id": "  ", "score": 3}, {"ticket_id": "ZD-9", "score": 3, "extra": 1}])
def test_a_bad_csat_body_is_a_422_json_error(served, body):
    client, _, keys = served
    response = client.post("/v1/csat", json=body, headers=_auth(keys, "agent"))
    assert response.status_code == 422, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]["message"]


def test_csat_needs_a_key_and_is_in_the_openapi_document(served):
    client, _, _ = served
    assert client.post("/v1/csat", json={"ticket_id": "ZD-9", "score": 3}).status_code == 401
    operation = client.get("/openapi.json").json()["paths"]["/v1/csat"]["post"]
    assert "201" in operation["responses"] and "422" in operation["responses"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/CsatRequest")


# ---- the policy set in force ---------------------------------------------------------------------

def test_guard_decides_under_the_policy_set_in_force_on_the_tickets_day(served, tmp_path):
    from sopilot.guard.versions import ARCHIVE_DIR

    client, settings, keys = served
    knowledge = tmp_path / "knowledge"
    (knowledge / ARCHIVE_DIR).mkdir(parents=True)
    (knowledge / ARCHIVE_DIR / "policies-2023.10.yaml").write_text(CURRENT, encoding="utf-8")
    proposal = (CURRENT.replace('policy_version: "2023.10"', 'policy_version: "2026.12"')
                .replace("effective_date: 2023-10-26", "effective_date: 2026-12-01")
                .replace('value: "150.00"', 'value: "250.00"', 1))
    (knowledge / "policies.yaml").write_text(proposal, encoding="utf-8")
    state = client.app.state.sopilot
    state.copilot.settings = dataclasses.replace(settings, knowledge_dir=knowledge)
    ticket = {"message": "charged twice", "sop_id": "A.1", "priority": "Low", "amount": "$200"}

    def outcome(day):
        response = client.post("/v1/guard", json={"ticket": {**ticket, "created_at": day}},
                               headers=_auth(keys, "agent"))
        assert response.status_code == 200, response.text
        return response.json()["outcome"], response.json()["policy_version"]

    assert outcome("2026-11-20T10:00:00Z") == ("escalate", "2023.10")
    assert outcome("2026-12-02") == ("automate", "2026.12")
    bad = client.post("/v1/guard", json={"ticket": {**ticket, "created_at": "last week"}}, headers=_auth(keys, "agent"))
    assert bad.status_code == 422 and "ISO 8601" in bad.json()["error"]["message"]


# ---- suggestion events as the workspace records them ----------------------------------------------

def test_suggestion_made_has_the_verdict_on_the_reply_shown_and_reply_blocked_the_drafts(indexed_settings, tmp_path):
    """A draft the guard blocks (the pipeline's verdict on a promising draft) is recorded as the workspace does."""
    from sopilot.guard.result import guard_decision

    from sopilot import audit
    from sopilot.identity import Identity
    from sopilot.service.copilot import Copilot
    from sopilot.suggest.pipeline import suggest

    settings = dataclasses.replace(indexed_settings, database_url=f"sqlite:///{tmp_path / 'a.db'}")
    ticket = {"message": "Hi, I was charged twice for my March invoice. Please sort it out.", "sop_id": "A.1",
              "priority": "Medium", "amount": "$420.00", "customer_name": "Maria", "ticket_id": "T-1001"}
    clean = suggest(ticket, settings)
    promise = "Hi Maria,\n\nGood news: I have refunded the full $420 to your card today.\n\nKind regards"
    blocked_suggestion = dataclasses.replace(clean, draft=dataclasses.replace(clean.draft, text=promise),
                                             guard=guard_decision(clean.guard.decision, promise))
    assert not blocked_suggestion.guard.verdict.passed and blocked_suggestion.reply != promise
    copilot = Copilot(settings)
    document = copilot._keep(blocked_suggestion, ticket, identity=Identity(name="agent person", role="agent"),
                             ticket_id=None)
    assert document["guard"]["verdict"] == "blocked" and document["reply"] == blocked_suggestion.reply
    events = [e for e in reversed(audit.recent(settings, limit=10))
              if e.detail.get("suggestion_id") == document["suggestion_id"]]
    assert [e.kind for e in events] == ["suggestion_made", "reply_blocked"]
    made, blocked = events
    assert made.verdict == "pass" and made.reply == document["reply"] and made.violations == ()
    assert blocked.verdict == "blocked" and "unauthorized_refund" in blocked.violations
    assert blocked.reply == promise and blocked.detail["replacement"] == document["reply"]
    assert made.agent == blocked.agent == "agent person" and made.ticket_id == blocked.ticket_id == "T-1001"
    assert copilot.store.get(document["suggestion_id"]).document == json.loads(json.dumps(document, default=str))


# ---- the service's tables by migration -------------------------------------------------------------

def _tables(url):
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    return set(inspect(engine).get_table_names()), engine


def test_a_new_database_gets_the_service_tables_from_the_migrations(tmp_path):
    from sopilot.audit.schema import HEAD, current_revision
    from sopilot.identity import KeyStore
    from sopilot.service.store import ServiceStore

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    created = KeyStore(url).create(name="ann", role="agent")
    ServiceStore(url).claim_event("rt", "1")
    names, engine = _tables(url)
    assert {"api_keys", "service_suggestions", "webhook_events", "audit_events", "alembic_version"} <= names
    assert current_revision(engine) == HEAD == "0003"
    assert KeyStore(url).authenticate(created.key).name == "ann"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def database_url(request, tmp_path):
    """An empty audit database: a SQLite file, or a private PostgreSQL cluster (tests/services.py)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    try:
        from tests import services
    except ImportError:  # a package named "tests" in site-packages can shadow tests/
        import services
    try:
        with services.postgres_server(tmp_path / "pg") as url:
            yield url
    except services.ServiceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("audit_first", [False, True], ids=["keys-only database", "audit log at 0002"])
def test_a_database_made_by_create_all_is_migrated_and_keeps_its_rows(tmp_path, database_url, audit_first):
    from sqlalchemy import create_engine, text

    import sopilot.identity.keys as keys_module
    import sopilot.service.store as store_module
    from sopilot.audit.schema import HEAD, current_revision
    from sopilot.identity import KeyStore
    from sopilot.service.store import ServiceStore

    url = database_url
    engine = create_engine(url)
    if audit_first:  # an audit log at revision 0002, then the old stores' create_all beside it
        from alembic import command
        from alembic.config import Config

        from sopilot.audit.schema import MIGRATIONS

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0002")
        assert current_revision(engine) == "0002"
    keys_module._metadata().create_all(engine)
    store_module._metadata().create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO webhook_events (source, event_id, received_at, result) "
                          "VALUES ('rt', 'seen-before', '2026-11-30 10:00:00', '{\"suggestion_id\": \"sug_1\"}')"))
    hashed = keys_module._hasher().hash("s" * 43)  # a key the old release made: its row is written by hand
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (key_id, name, role, hash, created_at) "
                          "VALUES ('0123456789ab', 'old key', 'lead', :h, '2026-11-30 10:00:00')"), {"h": hashed})

    store = KeyStore(url)
    assert current_revision(engine) == HEAD
    assert store.authenticate("sop_0123456789ab_" + "s" * 43).role == "lead"
    first, previous = ServiceStore(url).claim_event("rt", "seen-before")
    assert not first and previous == {"suggestion_id": "sug_1"}
    from sopilot import audit

    settings = Settings.from_env({}, data_dir=tmp_path / "data", database_url=url)
    recorded = audit.record(settings, audit.Event(kind="csat_recorded", ticket_id="T-1", detail={"score": 4}))
    assert recorded[0].id is not None
