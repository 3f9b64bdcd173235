"""The audit trail (handbook §5 and §7): one append-only table of events, SQLAlchemy Core.

Every suggestion, blocked draft or edit, sent reply, override, decision change, fact confirmation,
wrong-SOP mark and Emergency Stop switch is one row with the agent, the ticket id, the policy, the
decision with its reasons, the exact text, and the guard's verdict on that exact text (checked
here, at the moment it is recorded, not copied from the suggestion). An agent's action carries an
`action_id`: recording it twice (a double click, a rerun) keeps one event.

Append-only: this module has no update or delete path, and the migrations (`schema.py`, Alembic)
install triggers that make the database refuse UPDATE and DELETE. The database is any SQLAlchemy
URL; the default is SQLite under the data dir in WAL mode with a busy timeout, so concurrent
writers (UI sessions, batch runs) wait for each other instead of failing.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from sopilot.core.errors import InputError, StoreError, UserError
from sopilot.core.instances import PerKey

EventKind = Literal["suggestion_made", "reply_blocked", "reply_sent", "reply_overridden", "emergency_stop_changed",
                    "edit_blocked", "decision_changed", "facts_confirmed", "wrong_sop",
                    "csat_recorded", "ops_task_created"]  # the last two: sopilot.reports (handbook §8, L.1, L.2)
KINDS: tuple[str, ...] = get_args(EventKind)
SendMode = Literal["as_is", "edited"]
Channel = Literal["marked_sent", "inserted_into_ticket"]
ExportFormat = Literal["csv", "jsonl"]
DRIVERS = {"postgresql": "psycopg (pip install psycopg==3.3.9 psycopg-binary==3.3.9)",
           "mysql": "PyMySQL or mysqlclient", "mssql": "pyodbc", "oracle": "oracledb"}
"""The package to add for each database a URL may name, when its driver is not installed."""

BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another's lock before SQLite gives up."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """One audit event; `id` and `created_at` are set when it is recorded."""

    kind: EventKind
    ticket_id: str | None = None
    ticket: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The ticket's facts as received (the customer message included)."""
    sop_ids: tuple[str, ...] = ()
    """Retrieved SOP ids, best first."""
    policy: str | None = None
    outcome: str | None = None
    decision: Mapping[str, Any] | None = None
    """The guard's decision (docs/interface.md §6) at the time of the event, its reasons included."""
    verdict: str | None = None
    """The guard's verdict on exactly `reply` ("pass" or "blocked")."""
    violations: tuple[str, ...] = ()
    """Violation codes the guard found in exactly `reply`."""
    producer: str | None = None
    """`offline` or `llm`: what drafted the reply."""
    model: str | None = None
    prompt_version: str | None = None
    latency_ms: float | None = None
    agent: str | None = None
    reply: str | None = None
    """The exact text suggested, sent, blocked or substituted."""
    send_mode: SendMode | None = None
    justification: str | None = None
    """Why an agent overrode the decision or switched an Emergency Stop (required for both)."""
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Anything else worth keeping: violation messages, the facts changed, the channel, the LLM fallback reason."""
    action_id: str | None = None
    """The agent's action this event records; one action, one event."""
    id: int | None = None
    created_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown audit event kind {self.kind!r}: use one of {list(KINDS)}")
        if self.send_mode is not None and self.send_mode not in get_args(SendMode):
            raise InputError(f"unknown send mode {self.send_mode!r}: use one of {list(get_args(SendMode))}")
        if self.kind == "reply_overridden" and not (self.justification or "").strip():
            raise InputError("an override needs a justification (handbook §7): say why the decision is overridden")
        if self.kind == "emergency_stop_changed":
            if not (self.agent or "").strip():
                raise InputError("an Emergency Stop switch names who switched it (handbook §7): sign in first")
            if not (self.justification or "").strip():
                raise InputError("an Emergency Stop switch needs a reason (handbook §7): say why it is switched")

    def to_json(self) -> dict[str, Any]:
        """The event as plain JSON-ready data (the export row)."""
        data = dataclasses.asdict(self)
        data["ticket"] = dict(self.ticket)
        data["decision"] = dict(self.decision) if self.decision is not None else None
        data["detail"] = dict(self.detail)
        data["sop_ids"] = list(self.sop_ids)
        data["violations"] = list(self.violations)
        data["created_at"] = self.created_at.isoformat() if self.created_at else None
        return {"id": data.pop("id"), "created_at": data.pop("created_at"), **data}


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Event))
_JSON_COLUMNS = {"ticket", "decision", "detail", "sop_ids", "violations"}


def _driver_hint(url: str, exc: BaseException) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if isinstance(exc, ImportError) and scheme in DRIVERS:
        return f"; the {scheme} driver is not installed: add {DRIVERS[scheme]}"
    return ""


class AuditLog:
    """The audit table behind one database URL; safe to share between threads.

    It appends and reads; there is deliberately no method that changes or removes an event.
    """

    def __init__(self, url: str) -> None:
        from sqlalchemy import MetaData, create_engine, event
        from sqlalchemy.exc import SQLAlchemyError

        from sopilot.audit.schema import migrate, tables

        self.url = url
        is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        try:
            self.engine = create_engine(url, **kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise UserError(f"SOPILOT_DATABASE_URL={url!r} cannot be used: {exc}{_driver_hint(url, exc)}. Give a "
                            "SQLAlchemy URL such as sqlite:///path/audit.db or unset it for the default.") from None
        if is_sqlite:
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection, _record) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

        self.table, self.snapshots = tables(MetaData())
        migrate(self.engine, url)

    def record(self, *events: Event) -> list[Event]:
        """Append events in one transaction; return them with id and created_at set.

        An event whose `action_id` is already recorded is not appended again: the recorded one is returned.
        """
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError, SQLAlchemyError

        now = dt.datetime.now(dt.UTC)
        rows = []
        for ev in events:
            row = {name: getattr(ev, name) for name in COLUMNS if name != "id"}
            row["created_at"] = ev.created_at or now
            row["ticket"] = _jsonable(ev.ticket)
            row["decision"] = _jsonable(ev.decision) if ev.decision is not None else None
            row["detail"] = _jsonable(ev.detail)
            row["sop_ids"] = list(ev.sop_ids)
            row["violations"] = list(ev.violations)
            rows.append(row)
        for attempt in range(2):
            recorded = []
            try:
                with self.engine.begin() as conn:
                    for ev, row in zip(events, rows, strict=True):
                        if ev.action_id is not None:
                            seen = conn.execute(select(self.table).where(
                                self.table.c.action_id == ev.action_id)).mappings().first()
                            if seen is not None:
                                recorded.append(_event(seen))
                                continue
                        result = conn.execute(self.table.insert().values(**row))
                        key = result.inserted_primary_key
                        if key is None:  # a single-row insert always returns its primary key
                            raise StoreError("the audit log did not return the id of the recorded event")
                        recorded.append(dataclasses.replace(ev, id=key[0],
                                                            created_at=row["created_at"], ticket=row["ticket"],
                                                            decision=row["decision"], detail=row["detail"]))
                return recorded
            except IntegrityError as exc:
                if attempt == 1:  # the same action recorded by another writer at this instant: read it back
                    raise StoreError(f"cannot write the audit log at {self.url!r}: {exc}") from exc
            except SQLAlchemyError as exc:
                raise StoreError(f"cannot write the audit log at {self.url!r}: {exc}") from exc
        return []

    def recent(self, *, limit: int = 50, policy: str | None = None, outcome: str | None = None,
               kind: str | None = None, ticket_id: str | None = None, agent: str | None = None) -> list[Event]:
        """The newest events first, optionally only those of one policy, outcome, kind, ticket or agent."""
        if limit < 1:
            raise InputError(f"limit must be greater than 0. Currently, limit is {limit}")
        if kind is not None and kind not in KINDS:
            raise InputError(f"unknown audit event kind {kind!r}: use one of {list(KINDS)}")
        return list(self._select(limit=limit, policy=policy, outcome=outcome, kind=kind, ticket_id=ticket_id,
                                 agent=agent, newest_first=True))

    def iter_all(self) -> Iterator[Event]:
        """Every event, oldest first."""
        return self._select(newest_first=False)

    def _select(self, *, limit: int | None = None, newest_first: bool, **filters: str | None) -> Iterator[Event]:
        from sqlalchemy import select

        table = self.table
        query = select(table)
        for name, value in filters.items():
            if value is not None:
                query = query.where(table.c[name] == value)
        query = query.order_by(table.c.id.desc() if newest_first else table.c.id.asc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield _event(row)

    def count(self) -> int:
        """How many events are recorded."""
        from sqlalchemy import func, select

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())


def _jsonable(value: Any) -> Any:
    """Tickets hold Decimals and other non-JSON values: keep them as their text."""
    return json.loads(json.dumps(value, default=str))


def _event(row: Mapping[Any, Any]) -> Event:
    values = dict(row)
    created = values["created_at"]
    if created is not None and created.tzinfo is None:
        values["created_at"] = created.replace(tzinfo=dt.UTC)
    values["sop_ids"] = tuple(values["sop_ids"] or ())
    values["violations"] = tuple(values["violations"] or ())
    values["ticket"] = values["ticket"] or {}
    values["detail"] = values["detail"] or {}
    return Event(**values)


_LOGS: PerKey[AuditLog] = PerKey(AuditLog)


def open_log(settings) -> AuditLog:
    """The process-wide audit log for `settings.audit_url` (one engine per URL)."""
    return _LOGS.get(settings.audit_url)


def engine_for(url: str):
    """The migrated database engine of the audit log at `url`, shared by every store kept beside it."""
    return _LOGS.get(url).engine


def record(settings, *events: Event) -> list[Event]:
    """Append events to the configured audit log."""
    return open_log(settings).record(*events)


def _verdict(suggestion, text: str) -> tuple[str, tuple[str, ...], list[dict[str, Any]]]:
    """The guard's verdict on exactly `text`, under the suggestion's decision: verdict, codes, details."""
    from sopilot.guard.result import guard_decision

    verdict = guard_decision(suggestion.guard.decision, text).verdict
    return (verdict.verdict, tuple(v.code for v in verdict.violations), [v.to_json() for v in verdict.violations])


def _base(suggestion, *, kind: EventKind, agent: str | None, ticket_id: str | None, action_id: str | None,
          text: str | None = None, detail: Mapping[str, Any] | None = None,
          justification: str | None = None) -> Event:
    """An event about `suggestion`, with the guard's verdict on exactly `text` (default: the suggested reply)."""
    decision = suggestion.guard.to_json()
    draft = suggestion.draft
    text = suggestion.reply if text is None else text
    verdict, codes, found = _verdict(suggestion, text)
    hits = suggestion.retrieval.hits
    extra: dict[str, Any] = {"violation_details": found} if found else {}
    if draft.fallback_reason:
        extra["fallback_reason"] = draft.fallback_reason
    best = hits[0] if hits else None
    probability = getattr(best, "match_probability", None)
    if isinstance(probability, int | float):
        extra["match_probability"] = float(probability)
    extra["matched"] = suggestion.retrieval.sop_id is not None
    return Event(
        kind=kind, ticket_id=ticket_id or _ticket_id(suggestion.ticket), ticket=suggestion.ticket,
        sop_ids=tuple(h.sop_id for h in hits) or tuple(filter(None, [suggestion.retrieval.sop_id])),
        policy=decision.get("policy"), outcome=decision.get("outcome"), decision=decision,
        verdict=verdict, violations=codes, producer=draft.producer, model=draft.model,
        prompt_version=suggestion.prompt_version, latency_ms=suggestion.latency_ms, agent=agent, reply=text,
        detail={**extra, **(detail or {})}, action_id=action_id, justification=justification)


def record_suggestion(settings, suggestion, *, agent: str | None = None, ticket_id: str | None = None,
                      action_id: str | None = None, detail: Mapping[str, Any] | None = None) -> list[Event]:
    """Log a suggestion (`suggestion_made`, plus `reply_blocked` with the draft when the guard replaced it)."""
    base = _base(suggestion, kind="suggestion_made", agent=agent, ticket_id=ticket_id, action_id=action_id,
                 detail=detail)
    events = [base]
    if not suggestion.guard.verdict.passed:
        blocked = _base(suggestion, kind="reply_blocked", agent=agent, ticket_id=ticket_id,
                        action_id=f"{action_id}:blocked" if action_id else None, text=suggestion.draft.text,
                        detail={**(detail or {}), "replacement": suggestion.reply})
        events.append(blocked)
    return record(settings, *events)


def record_sent(settings, suggestion, *, text: str, agent: str | None = None, ticket_id: str | None = None,
                action_id: str | None = None, channel: Channel = "marked_sent",
                detail: Mapping[str, Any] | None = None) -> Event:
    """Log the reply an agent sent: `as_is` when it is the suggested reply, else `edited`.

    Raises:
        InputError: the guard blocks exactly this text; only an override with a justification may send it.
    """
    if channel not in get_args(Channel):
        raise InputError(f"unknown channel {channel!r}: use one of {list(get_args(Channel))}")
    mode: SendMode = "as_is" if text.strip() == suggestion.reply.strip() else "edited"
    event = _base(suggestion, kind="reply_sent", agent=agent, ticket_id=ticket_id, action_id=action_id, text=text,
                  detail={"channel": channel, **(detail or {})})
    if event.verdict != "pass":
        raise InputError(f"the guard blocks this reply ({', '.join(event.violations)}): fix it, or override the "
                         "decision with a written justification (handbook §7)")
    return record(settings, dataclasses.replace(event, send_mode=mode))[0]


def record_override(settings, suggestion, *, text: str, justification: str, agent: str | None = None,
                    ticket_id: str | None = None, action_id: str | None = None) -> Event:
    """Log an agent overriding the guard, with the violations of exactly `text` and the justification (§7)."""
    return record(settings, _base(suggestion, kind="reply_overridden", agent=agent, ticket_id=ticket_id,
                                  action_id=action_id, text=text, justification=justification.strip() or None))[0]


def record_edit_blocked(settings, suggestion, *, text: str, agent: str | None = None, ticket_id: str | None = None,
                        action_id: str | None = None) -> Event:
    """Log an agent's edit of the reply that the guard blocks (the exact text and its violations)."""
    return record(settings, _base(suggestion, kind="edit_blocked", agent=agent, ticket_id=ticket_id,
                                  action_id=action_id, text=text))[0]


def record_decision_changed(settings, before, after, *, changed: Mapping[str, Any], agent: str | None = None,
                            ticket_id: str | None = None, action_id: str | None = None) -> Event:
    """Log a decision recomputed after a fact (or the policy) changed: what changed, and both decisions."""
    old = before.guard.to_json()
    return record(settings, _base(after, kind="decision_changed", agent=agent, ticket_id=ticket_id,
                                  action_id=action_id, detail={
                                      "changed": dict(changed), "before": {k: old.get(k) for k in (
                                          "policy", "outcome", "escalate_to", "remuneration", "reasons")}}))[0]


def record_facts_confirmed(settings, suggestion, *, facts: Mapping[str, Any], agent: str | None = None,
                           ticket_id: str | None = None, action_id: str | None = None) -> Event:
    """Log an agent confirming facts read from the customer's words before an automated reply is offered."""
    return record(settings, _base(suggestion, kind="facts_confirmed", agent=agent, ticket_id=ticket_id,
                                  action_id=action_id, detail={"confirmed": dict(facts)}))[0]


def record_wrong_sop(settings, suggestion, *, relevant: str, agent: str | None = None, ticket_id: str | None = None,
                     action_id: str | None = None) -> Event:
    """Log that the suggested SOP was wrong and which one is right: a labelled example for `sopilot eval`."""
    if not relevant.strip():
        raise InputError("a wrong-SOP mark names the right SOP, such as 'A.1'")
    return record(settings, _base(suggestion, kind="wrong_sop", agent=agent, ticket_id=ticket_id,
                                  action_id=action_id, detail={
                                      "query": suggestion.retrieval.query, "wrong": suggestion.retrieval.sop_id,
                                      "relevant": [relevant.strip()]}))[0]


def record_emergency_stop(settings, *, policy: str, stopped: bool, agent: str | None = None,
                          justification: str | None = None, action_id: str | None = None) -> Event:
    """Log an Emergency Stop switched on (`stopped=True`) or off for one policy: who, and why (handbook §7)."""
    if not policy.strip():
        raise InputError("an Emergency Stop names the policy it applies to, such as 'A.1'")
    return record(settings, Event(kind="emergency_stop_changed", policy=policy.strip(), agent=agent,
                                  justification=(justification or "").strip() or None, detail={"stopped": stopped},
                                  action_id=action_id))[0]


def recent(settings, *, limit: int = 50, policy: str | None = None, outcome: str | None = None,
           kind: str | None = None, ticket_id: str | None = None, agent: str | None = None) -> list[Event]:
    """The newest events first, with optional filters (see `AuditLog.recent`)."""
    return open_log(settings).recent(limit=limit, policy=policy, outcome=outcome, kind=kind, ticket_id=ticket_id,
                                     agent=agent)


def _ticket_id(ticket: Mapping[str, Any]) -> str | None:
    value = ticket.get("ticket_id") or ticket.get("id")
    return str(value) if value not in (None, "") else None


# ---- what an auditor and the evaluation take out -----------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One automated remuneration (refund or service credit) a sent reply confirmed (handbook §5)."""

    event_id: int
    created_at: str
    ticket_id: str | None
    policy: str | None
    type: str
    amount: str | None
    currency: str | None
    agent: str | None
    reasons: str

    def to_json(self) -> dict[str, Any]:
        """The ledger row."""
        return dataclasses.asdict(self)


LEDGER_TYPES = ("refund", "service_credit")


def ledger(events: Iterable[Event]) -> list[LedgerEntry]:
    """Every automated refund or credit a sent reply confirmed, once per ticket and policy, oldest first."""
    entries, seen = [], set()
    for ev in events:
        decision = ev.decision or {}
        money = decision.get("remuneration") or {}
        if ev.kind != "reply_sent" or ev.outcome != "automate" or money.get("type") not in LEDGER_TYPES:
            continue
        key = (ev.ticket_id or f"event-{ev.id}", ev.policy)
        if key in seen:
            continue
        seen.add(key)
        entries.append(LedgerEntry(event_id=int(ev.id or 0), created_at=ev.created_at.isoformat() if ev.created_at
                                   else "", ticket_id=ev.ticket_id, policy=ev.policy, type=money["type"],
                                   amount=money.get("amount"), currency=money.get("currency"), agent=ev.agent,
                                   reasons=" | ".join(decision.get("reasons") or [])))
    return entries


def write_ledger(entries: Iterable[LedgerEntry], fmt: ExportFormat, out) -> int:
    """Write ledger rows as CSV or JSON Lines; return how many."""
    if fmt not in get_args(ExportFormat):
        raise InputError(f"unknown export format {fmt!r}: use one of {list(get_args(ExportFormat))}")
    fields = [f.name for f in dataclasses.fields(LedgerEntry)]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writeheader()
    count = 0
    for entry in entries:
        if writer:
            writer.writerow(entry.to_json())
        else:
            out.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
        count += 1
    return count


def labelled_examples(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Wrong-SOP marks as `{"query", "relevant"}` (the eval queries' shape); the latest mark of a query wins.

    The app records the query and the right SOP; the service's feedback names the right SOP as `right_sop_id`
    and the query is the ticket's message.
    """
    labels: dict[str, list[str]] = {}
    for ev in events:
        if ev.kind != "wrong_sop":
            continue
        query = ev.detail.get("query") or (ev.ticket or {}).get("message")
        relevant = ev.detail.get("relevant") or [r for r in [ev.detail.get("right_sop_id")] if r]
        if isinstance(query, str) and query.strip() and relevant:
            labels.pop(query, None)
            labels[query] = [str(r) for r in relevant]
    return [{"query": query, "relevant": relevant} for query, relevant in labels.items()]


def _write(output: str | None, write) -> int:
    if output in ("-", "", None):
        return write(sys.stdout)
    buffer = io.StringIO()
    count = write(buffer)
    try:
        Path(output).write_text(buffer.getvalue(), encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot write {output!r}: {exc.strerror}. Check the path.") from None
    return count


def ledger_command(*, fmt: str, output: str, settings) -> int:
    """`sopilot audit ledger --format csv|jsonl [--output FILE]`: automated refunds and credits with ticket ids."""
    entries = ledger(open_log(settings).iter_all())
    count = _write(output, lambda out: write_ledger(entries, fmt, out))  # type: ignore[arg-type]
    print(f"exported {count} ledger entries", file=sys.stderr)
    return 0


def labels_command(*, output: str, settings) -> int:
    """`sopilot audit labels [--output FILE]`: agents' wrong-SOP marks as JSON Lines for `sopilot eval`."""
    rows = labelled_examples(open_log(settings).iter_all())

    def write(out) -> int:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return len(rows)

    count = _write(output, write)
    print(f"exported {count} labelled queries", file=sys.stderr)
    return 0


def write_export(events: Iterable[Event], fmt: ExportFormat, out) -> int:
    """Write events as CSV (JSON columns as JSON text) or JSON Lines; return how many."""
    if fmt not in get_args(ExportFormat):
        raise InputError(f"unknown export format {fmt!r}: use one of {list(get_args(ExportFormat))}")
    count = 0
    if fmt == "jsonl":
        for ev in events:
            out.write(json.dumps(ev.to_json(), ensure_ascii=False) + "\n")
            count += 1
        return count
    writer = csv.DictWriter(out, fieldnames=list(Event(kind="suggestion_made").to_json()), lineterminator="\n")
    writer.writeheader()
    for ev in events:
        row = ev.to_json()
        for name in _JSON_COLUMNS:
            row[name] = json.dumps(row[name], ensure_ascii=False)
        writer.writerow(row)
        count += 1
    return count


def export_command(*, fmt: str, output: str, settings) -> int:
    """`sopilot audit export --format csv|jsonl [--output FILE]`: every event, oldest first."""
    log = open_log(settings)
    if fmt not in get_args(ExportFormat):
        raise InputError(f"unknown export format {fmt!r}: use one of {list(get_args(ExportFormat))}")
    count = _write(output, lambda out: write_export(log.iter_all(), fmt, out))  # type: ignore[arg-type]
    print(f"exported {count} audit events", file=sys.stderr)
    return 0
