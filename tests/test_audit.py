"""The audit log against real SQLite files and a real PostgreSQL: append-only, one event per action,
the guard's verdict on the exact text, migrations, filters, concurrent writers, exports."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import threading
from decimal import Decimal

import pytest

from sopilot import audit
from sopilot.audit import AuditLog, Event
from sopilot.core.errors import InputError, UserError
from sopilot.core.settings import Settings


def _event(n: int, **changes) -> Event:
    values = dict(kind="suggestion_made", ticket_id=f"T-{n}",
                  ticket={"message": f"ticket {n}", "amount": Decimal("60")},
                  sop_ids=("A.1", "tel.billing-dispute"), policy="A.1", outcome="automate",
                  decision={"policy": "A.1", "outcome": "automate"}, verdict="pass", producer="offline",
                  prompt_version="reply-1", latency_ms=12.5, agent="ana")
    values.update(changes)
    return Event(**values)


def test_record_and_read_back_every_field(settings):
    log = audit.open_log(settings)
    [stored] = log.record(_event(1, violations=("unauthorized_refund",), detail={"fallback_reason": "timeout"}))
    assert stored.id is not None and stored.created_at is not None
    [back] = log.recent(limit=1)
    assert back == stored
    assert back.ticket == {"message": "ticket 1", "amount": "60"}
    assert back.sop_ids == ("A.1", "tel.billing-dispute")
    assert back.created_at.tzinfo is not None
    assert (settings.data_dir / "audit.db").exists()


def test_sqlite_is_in_wal_mode(settings):
    audit.open_log(settings).record(_event(1))
    with sqlite3.connect(settings.data_dir / "audit.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_recent_filters_by_policy_outcome_and_kind(settings):
    log = audit.open_log(settings)
    log.record(_event(1), _event(2, policy="B.1", outcome="escalate"),
               _event(3, kind="reply_blocked", verdict="blocked"))
    assert [e.ticket_id for e in log.recent()] == ["T-3", "T-2", "T-1"]
    assert [e.ticket_id for e in log.recent(policy="B.1")] == ["T-2"]
    assert [e.ticket_id for e in log.recent(outcome="automate")] == ["T-3", "T-1"]
    assert [e.ticket_id for e in log.recent(kind="reply_blocked")] == ["T-3"]
    assert [e.ticket_id for e in log.recent(limit=1)] == ["T-3"]


@pytest.mark.parametrize(("changes", "message"), [
    pytest.param({"kind": "reply_overridden", "justification": "  "},
                 "an override needs a justification", id="override without justification"),
    pytest.param({"kind": "reply_overridden"}, "an override needs a justification", id="override missing reason"),
    pytest.param({"kind": "deleted"}, "unknown audit event kind 'deleted'", id="unknown kind"),
    pytest.param({"kind": "reply_sent", "send_mode": "mostly"}, "unknown send mode 'mostly'", id="bad send mode"),
])
def test_invalid_events_are_refused(changes, message):
    with pytest.raises(InputError, match=re.escape(message)):
        _event(1, **changes)


def test_override_with_justification_and_emergency_stop(settings):
    log = audit.open_log(settings)
    log.record(_event(1, kind="reply_overridden", justification="customer is a known reseller, refund approved by TL"))
    stop = audit.record_emergency_stop(settings, policy="A.1", stopped=True, agent="lead",
                                       justification="gateway double-refunding")
    assert stop.detail == {"stopped": True} and stop.agent == "lead"
    kinds = [e.kind for e in log.recent()]
    assert kinds == ["emergency_stop_changed", "reply_overridden"]
    with pytest.raises(InputError, match="names the policy"):
        audit.record_emergency_stop(settings, policy=" ", stopped=False, agent="lead", justification="x")
    with pytest.raises(InputError, match="needs a reason"):
        audit.record_emergency_stop(settings, policy="A.1", stopped=False, agent="lead", justification=" ")
    with pytest.raises(InputError, match="names who switched it"):
        audit.record_emergency_stop(settings, policy="A.1", stopped=False, justification="fixed")
    assert log.count() == 2


def test_concurrent_writers_lose_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    threads, per_thread = 8, 50
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(t: int) -> None:
        try:
            log = AuditLog(url)  # one engine per thread, as separate processes would have
            start.wait(timeout=30)
            for i in range(per_thread):
                log.record(_event(t * 1000 + i, agent=f"agent-{t}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    log = AuditLog(url)
    assert log.count() == threads * per_thread
    ids = {e.ticket_id for e in log.iter_all()}
    assert ids == {f"T-{t * 1000 + i}" for t in range(threads) for i in range(per_thread)}


def test_concurrent_writers_share_one_engine(settings):
    log = audit.open_log(settings)

    def writer(t: int) -> None:
        for i in range(50):
            log.record(_event(t * 1000 + i))

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert log.count() == 400


def test_export_jsonl_and_csv(settings, tmp_path, capsys):
    log = audit.open_log(settings)
    log.record(_event(1, reply='Hello, "quoted", and\na second line'), _event(2, kind="reply_sent", send_mode="edited"))

    assert audit.export_command(fmt="jsonl", output="-", settings=settings) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["ticket_id"] for r in rows] == ["T-1", "T-2"]
    assert rows[0]["reply"] == 'Hello, "quoted", and\na second line'
    assert rows[0]["sop_ids"] == ["A.1", "tel.billing-dispute"]
    assert rows[1]["send_mode"] == "edited"

    out = tmp_path / "audit.csv"
    assert audit.export_command(fmt="csv", output=str(out), settings=settings) == 0
    table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["kind"] for r in table] == ["suggestion_made", "reply_sent"]
    assert table[0]["reply"] == 'Hello, "quoted", and\na second line'
    assert json.loads(table[0]["decision"]) == {"policy": "A.1", "outcome": "automate"}
    assert table[0]["latency_ms"] == "12.5"


def test_export_rejects_unknown_format(settings):
    with pytest.raises(InputError, match=re.escape("unknown export format 'xml'")):
        audit.export_command(fmt="xml", output="-", settings=settings)


# ---- the same properties against real SQLite and real PostgreSQL ---------------------------------------

@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    """One real PostgreSQL for the module (tests/services.py); each test gets a database of its own."""
    from tests import services

    try:
        with services.postgres_server(tmp_path_factory.mktemp("pg")) as url:
            yield url
    except services.ServiceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def db_settings(request, tmp_path):
    """Settings whose audit log is a fresh SQLite file, or a fresh database on the real PostgreSQL."""
    if request.param == "sqlite":
        return Settings.from_env({}, data_dir=tmp_path / "data")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(request.getfixturevalue("postgres_url"))
    name = f"t_{abs(hash(request.node.nodeid)) % 10**12}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return Settings.from_env({}, data_dir=tmp_path / "data",
                             database_url=url.set(database=name).render_as_string(hide_password=False))


A1 = {"message": "I was charged $420 twice for one invoice, priority medium", "ticket_id": "T-77"}
A1_SMALL = {"message": "Charged twice, $60", "ticket_id": "T-60", "sop_id": "A.1", "priority": "Low"}


@pytest.fixture
def suggestion_for(indexed_settings, retriever):
    from sopilot.suggest.pipeline import suggest

    return lambda ticket: suggest(ticket, indexed_settings, retriever=retriever)


def test_the_database_refuses_update_and_delete(db_settings):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    log = audit.open_log(db_settings)
    [event] = log.record(_event(1))
    for statement in ("UPDATE audit_events SET verdict = 'pass', reply = 'changed'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), log.engine.begin() as conn:
            conn.execute(text(statement))
    assert log.recent() == [event]
    assert not [name for name in dir(log) if name.startswith(("update", "delete", "remove", "purge", "edit"))]
    assert not [name for name in dir(audit) if name.startswith(("update", "delete", "remove", "purge"))]


def test_schema_comes_from_migrations_and_a_legacy_log_is_upgraded(db_settings, tmp_path):
    from sqlalchemy import create_engine, inspect, text

    from sopilot.audit.schema import HEAD, current_revision

    log = audit.open_log(db_settings)
    assert current_revision(log.engine) == HEAD
    assert {"audit_events", "workspace_snapshots", "alembic_version"} <= set(inspect(log.engine).get_table_names())
    # A log made by the release before migrations (create_all, no alembic_version) keeps its rows.
    legacy_url = f"sqlite:///{tmp_path / 'legacy.db'}"
    engine = create_engine(legacy_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE audit_events (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at DATETIME "
                          "NOT NULL, kind VARCHAR(40) NOT NULL, ticket_id VARCHAR(200), policy VARCHAR(100), outcome "
                          "VARCHAR(40), verdict VARCHAR(20), producer VARCHAR(20), model VARCHAR(200), prompt_version "
                          "VARCHAR(100), latency_ms FLOAT, agent VARCHAR(200), send_mode VARCHAR(20), justification "
                          "TEXT, reply TEXT, ticket JSON NOT NULL, sop_ids JSON NOT NULL, decision JSON, violations "
                          "JSON NOT NULL, detail JSON NOT NULL)"))
        conn.execute(text("INSERT INTO audit_events (created_at, kind, ticket, sop_ids, violations, detail) VALUES "
                          "('2026-11-01 10:00:00', 'suggestion_made', '{}', '[]', '[]', '{}')"))
    upgraded = AuditLog(legacy_url)
    assert current_revision(upgraded.engine) == HEAD
    assert [e.kind for e in upgraded.iter_all()] == ["suggestion_made"]


def test_one_action_records_one_event(db_settings, suggestion_for):
    suggestion = suggestion_for(A1_SMALL)
    first = audit.record_sent(db_settings, suggestion, text=suggestion.reply, agent="ana", action_id="send-1")
    again = audit.record_sent(db_settings, suggestion, text=suggestion.reply, agent="ana", action_id="send-1")
    assert again.id == first.id
    assert [e.kind for e in audit.recent(db_settings)] == ["reply_sent"]
    audit.record_sent(db_settings, suggestion, text=suggestion.reply, agent="ana", action_id="send-2")
    assert audit.open_log(db_settings).count() == 2


def test_each_event_carries_the_verdict_of_its_exact_text(db_settings, suggestion_for):
    suggestion = suggestion_for(A1)
    assert suggestion.guard.decision.outcome == "escalate"
    promise = "Hi, we have refunded $420 to your card today. Best, Ana"
    with pytest.raises(InputError, match="the guard blocks this reply"):
        audit.record_sent(db_settings, suggestion, text=promise, agent="ana", ticket_id="T-77")
    override = audit.record_override(db_settings, suggestion, text=promise, agent="sam", ticket_id="T-77",
                                     justification="the Billing lead approved this refund by phone")
    assert override.verdict == "blocked" and "unauthorized_refund" in override.violations
    assert override.detail["violation_details"][0]["code"] in override.violations
    assert override.justification.startswith("the Billing lead")
    blocked = audit.record_edit_blocked(db_settings, suggestion, text=promise, agent="ana", ticket_id="T-77")
    assert (blocked.kind, blocked.verdict, blocked.reply) == ("edit_blocked", "blocked", promise)
    sent = audit.record_sent(db_settings, suggestion, text=suggestion.reply + "\n\nThanks, Ana", agent="ana",
                             ticket_id="T-77", channel="inserted_into_ticket")
    assert (sent.verdict, sent.send_mode, sent.detail["channel"]) == ("pass", "edited", "inserted_into_ticket")
    for ev in audit.recent(db_settings, ticket_id="T-77"):
        from sopilot.guard.result import guard_decision

        assert ev.verdict == guard_decision(suggestion.guard.decision, ev.reply).verdict.verdict
        assert (ev.agent, ev.policy, ev.ticket_id) in {("ana", "A.1", "T-77"), ("sam", "A.1", "T-77")}
        assert ev.decision["reasons"]


def test_decision_changes_confirmations_and_wrong_sop_are_logged(db_settings, suggestion_for, tmp_path, capsys):
    before = suggestion_for({**A1_SMALL, "priority": "Low"})
    after = suggestion_for({**A1_SMALL, "priority": "High"})
    changed = audit.record_decision_changed(db_settings, before, after, changed={"priority": ["Low", "High"]},
                                            agent="ana", ticket_id="T-60")
    assert changed.detail["before"]["outcome"] == "automate" and changed.outcome == "escalate"
    confirmed = audit.record_facts_confirmed(db_settings, before, facts={"amount": "USD 60"}, agent="ana")
    assert confirmed.detail["confirmed"] == {"amount": "USD 60"} and confirmed.ticket_id == "T-60"
    audit.record_wrong_sop(db_settings, after, relevant="B.1", agent="ana", ticket_id="T-60")
    audit.record_wrong_sop(db_settings, after, relevant="A.2", agent="ana", ticket_id="T-60")
    assert audit.labelled_examples(audit.open_log(db_settings).iter_all()) == [
        {"query": A1_SMALL["message"], "relevant": ["A.2"]}]
    out = tmp_path / "labels.jsonl"
    assert audit.labels_command(output=str(out), settings=db_settings) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"query": A1_SMALL["message"], "relevant": ["A.2"]}]
    audit.record(db_settings, Event(kind="wrong_sop", ticket={"message": "my roaming is off"}, agent="svc",
                                    detail={"feedback": "wrong_sop", "right_sop_id": "tel.roaming"}))
    assert audit.labelled_examples(audit.open_log(db_settings).iter_all())[-1] == {
        "query": "my roaming is off", "relevant": ["tel.roaming"]}


def test_the_remuneration_ledger_lists_automated_refunds_with_ticket_ids(db_settings, suggestion_for, capsys):
    refund = suggestion_for(A1_SMALL)
    assert refund.guard.decision.outcome == "automate"
    escalated = suggestion_for(A1)
    audit.record_sent(db_settings, refund, text=refund.reply, agent="ana", action_id="a")
    audit.record_sent(db_settings, refund, text=refund.reply, agent="ana", action_id="b")  # sent twice: one entry
    audit.record_sent(db_settings, escalated, text=escalated.reply, agent="ana")
    assert audit.ledger_command(fmt="csv", output="-", settings=db_settings) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["ticket_id"], r["policy"], r["type"], r["amount"]) for r in rows] == [("T-60", "A.1", "refund", "60.00")]


def test_workspace_tickets_survive_a_new_process(db_settings):
    from sopilot.audit import workspace

    workspace.save_ticket(db_settings, workspace="ws1", ticket_id="T-1", state={"message": "one"}, agent="ana")
    workspace.save_ticket(db_settings, workspace="ws1", ticket_id="T-2", state={"message": "two"}, agent="ana")
    workspace.save_ticket(db_settings, workspace="ws1", ticket_id="T-1", state={"message": "one, more"})
    workspace.save_ticket(db_settings, workspace="ws1", ticket_id="T-2", state={"message": "two"}, closed=True)
    fresh = AuditLog(db_settings.audit_url)  # as another process would open it
    assert fresh.count() == 0
    assert [t.ticket_id for t in workspace.open_tickets(db_settings, "ws1")] == ["T-1"]
    assert workspace.load_ticket(db_settings, "ws1", "T-1").state == {"message": "one, more"}
    assert workspace.open_tickets(db_settings, "other") == []
    with pytest.raises(InputError, match="has an id"):
        workspace.save_ticket(db_settings, workspace="ws1", ticket_id=" ", state={})


def test_a_url_whose_driver_is_missing_names_the_package():
    with pytest.raises(UserError, match=re.escape("the mysql driver is not installed: add PyMySQL")):
        AuditLog("mysql://user@127.0.0.1/db")


def test_the_same_action_from_many_writers_at_once_is_one_event(db_settings):
    url = db_settings.audit_url
    AuditLog(url)
    start = threading.Barrier(6)
    ids, errors = [], []

    def writer() -> None:
        try:
            log = AuditLog(url)
            start.wait(timeout=30)
            ids.append(log.record(_event(1, kind="reply_sent", send_mode="as_is", action_id="click-1"))[0].id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=writer) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert len(set(ids)) == 1 and AuditLog(url).count() == 1
