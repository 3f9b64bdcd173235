"""The audit log against real SQLite files: filters, overrides, concurrent writers, export."""

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
from sopilot.core.errors import InputError


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
    assert stop.detail == {"stopped": True}
    kinds = [e.kind for e in log.recent()]
    assert kinds == ["emergency_stop_changed", "reply_overridden"]
    with pytest.raises(InputError, match="names the policy"):
        audit.record_emergency_stop(settings, policy=" ", stopped=False)


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
