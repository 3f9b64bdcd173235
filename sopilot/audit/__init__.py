"""The audit trail (handbook §5 and §7): one append-only table of events, SQLAlchemy Core.

Every suggestion, blocked draft, sent reply, agent override and Emergency Stop change is one row
with the ticket's facts, the SOPs retrieved, the guard's decision and verdict, who drafted the
reply (offline composer or which LLM, with which prompt version) and how long it took. The
database is any SQLAlchemy URL; the default is SQLite under the data dir in WAL mode with a busy
timeout, so concurrent writers (UI sessions, batch runs) wait for each other instead of failing.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from sopilot.core.errors import InputError, StoreError, UserError

EventKind = Literal["suggestion_made", "reply_blocked", "reply_sent", "reply_overridden", "emergency_stop_changed",
                    "csat_recorded", "ops_task_created"]  # the last two: sopilot.reports (handbook §8, L.1, L.2)
KINDS: tuple[str, ...] = get_args(EventKind)
SendMode = Literal["as_is", "edited"]
ExportFormat = Literal["csv", "jsonl"]

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
    """The guard's decision (CONTRACT §6) at the time of the event."""
    verdict: str | None = None
    violations: tuple[str, ...] = ()
    """Violation codes found in the draft."""
    producer: str | None = None
    """`offline` or `llm`: what drafted the reply."""
    model: str | None = None
    prompt_version: str | None = None
    latency_ms: float | None = None
    agent: str | None = None
    reply: str | None = None
    """The text suggested, sent or substituted."""
    send_mode: SendMode | None = None
    justification: str | None = None
    """Why an agent overrode the decision, or changed an Emergency Stop (required for overrides)."""
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Anything else worth keeping: the LLM fallback reason, the stopped policies, …"""
    id: int | None = None
    created_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown audit event kind {self.kind!r}: use one of {list(KINDS)}")
        if self.send_mode is not None and self.send_mode not in get_args(SendMode):
            raise InputError(f"unknown send mode {self.send_mode!r}: use one of {list(get_args(SendMode))}")
        if self.kind == "reply_overridden" and not (self.justification or "").strip():
            raise InputError("an override needs a justification (handbook §7): say why the decision is overridden")

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


def _table(metadata):
    from sqlalchemy import JSON, Column, DateTime, Float, Index, Integer, String, Table, Text

    return Table(
        "audit_events", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("kind", String(40), nullable=False),
        Column("ticket_id", String(200)),
        Column("policy", String(100)),
        Column("outcome", String(40)),
        Column("verdict", String(20)),
        Column("producer", String(20)),
        Column("model", String(200)),
        Column("prompt_version", String(100)),
        Column("latency_ms", Float),
        Column("agent", String(200)),
        Column("send_mode", String(20)),
        Column("justification", Text),
        Column("reply", Text),
        Column("ticket", JSON, nullable=False),
        Column("sop_ids", JSON, nullable=False),
        Column("decision", JSON),
        Column("violations", JSON, nullable=False),
        Column("detail", JSON, nullable=False),
        Index("ix_audit_events_kind", "kind"),
        Index("ix_audit_events_policy", "policy"),
    )


class AuditLog:
    """The audit table behind one database URL; safe to share between threads."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import MetaData, create_engine, event
        from sqlalchemy.exc import SQLAlchemyError

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
            raise UserError(f"SOPILOT_DATABASE_URL={url!r} cannot be used: {exc}. Give a SQLAlchemy URL such as "
                            "sqlite:///path/audit.db or unset it for the default.") from None
        if is_sqlite:
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection, _record) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

        self.table = _table(MetaData())
        for attempt in range(3):
            try:
                self.table.metadata.create_all(self.engine)
                break
            except SQLAlchemyError as exc:
                # Another process created the table between our check and our CREATE: check again.
                if attempt == 2:
                    raise StoreError(f"cannot open the audit log at {url!r}: {exc}") from None

    def record(self, *events: Event) -> list[Event]:
        """Append events in one transaction; return them with id and created_at set."""
        from sqlalchemy.exc import SQLAlchemyError

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
        recorded = []
        try:
            with self.engine.begin() as conn:
                for ev, row in zip(events, rows, strict=True):
                    result = conn.execute(self.table.insert().values(**row))
                    recorded.append(dataclasses.replace(ev, id=result.inserted_primary_key[0],
                                                        created_at=row["created_at"], ticket=row["ticket"],
                                                        decision=row["decision"], detail=row["detail"]))
        except Exception as exc:
            if isinstance(exc, SQLAlchemyError):
                raise StoreError(f"cannot write the audit log at {self.url!r}: {exc}") from exc
            raise
        return recorded

    def recent(self, *, limit: int = 50, policy: str | None = None, outcome: str | None = None,
               kind: str | None = None, ticket_id: str | None = None) -> list[Event]:
        """The newest events first, optionally only those of one policy, outcome, kind or ticket."""
        if limit < 1:
            raise InputError(f"limit must be greater than 0. Currently, limit is {limit}")
        if kind is not None and kind not in KINDS:
            raise InputError(f"unknown audit event kind {kind!r}: use one of {list(KINDS)}")
        return list(self._select(limit=limit, policy=policy, outcome=outcome, kind=kind, ticket_id=ticket_id,
                                 newest_first=True))

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


def _event(row: Mapping[str, Any]) -> Event:
    values = dict(row)
    created = values["created_at"]
    if created is not None and created.tzinfo is None:
        values["created_at"] = created.replace(tzinfo=dt.UTC)
    values["sop_ids"] = tuple(values["sop_ids"] or ())
    values["violations"] = tuple(values["violations"] or ())
    values["ticket"] = values["ticket"] or {}
    values["detail"] = values["detail"] or {}
    return Event(**values)


_LOGS: dict[str, AuditLog] = {}
_LOCK = threading.Lock()


def open_log(settings) -> AuditLog:
    """The process-wide audit log for `settings.audit_url` (one engine per URL)."""
    url = settings.audit_url
    with _LOCK:
        log = _LOGS.get(url)
        if log is None:
            log = _LOGS[url] = AuditLog(url)
        return log


def record(settings, *events: Event) -> list[Event]:
    """Append events to the configured audit log."""
    return open_log(settings).record(*events)


def record_suggestion(settings, suggestion, *, agent: str | None = None) -> list[Event]:
    """Log a suggestion (`suggestion_made`, plus `reply_blocked` when the guard replaced the draft)."""
    base = _suggestion_event(suggestion, agent=agent)
    events = [base]
    if not suggestion.guard.verdict.passed:
        events.append(dataclasses.replace(base, kind="reply_blocked", reply=suggestion.draft.text,
                                          detail={**base.detail, "replacement": suggestion.reply}))
    return record(settings, *events)


def record_sent(settings, suggestion, *, text: str, agent: str | None = None) -> Event:
    """Log the reply an agent sent: `as_is` when it is the suggested reply, else `edited`."""
    mode: SendMode = "as_is" if text.strip() == suggestion.reply.strip() else "edited"
    base = _suggestion_event(suggestion, agent=agent)
    return record(settings, dataclasses.replace(base, kind="reply_sent", reply=text, send_mode=mode))[0]


def record_override(settings, suggestion, *, text: str, justification: str, agent: str | None = None) -> Event:
    """Log an agent overriding the guard's decision; the justification is mandatory (handbook §7)."""
    base = _suggestion_event(suggestion, agent=agent)
    return record(settings, dataclasses.replace(base, kind="reply_overridden", reply=text,
                                                justification=justification.strip()))[0]


def record_emergency_stop(settings, *, policy: str, stopped: bool, agent: str | None = None,
                          justification: str | None = None) -> Event:
    """Log an Emergency Stop switched on (`stopped=True`) or off for one policy (handbook §7)."""
    if not policy.strip():
        raise InputError("an Emergency Stop names the policy it applies to, such as 'A.1'")
    return record(settings, Event(kind="emergency_stop_changed", policy=policy.strip(), agent=agent,
                                  justification=justification, detail={"stopped": stopped}))[0]


def recent(settings, *, limit: int = 50, policy: str | None = None, outcome: str | None = None,
           kind: str | None = None, ticket_id: str | None = None) -> list[Event]:
    """The newest events first, with optional filters (see `AuditLog.recent`)."""
    return open_log(settings).recent(limit=limit, policy=policy, outcome=outcome, kind=kind, ticket_id=ticket_id)


def _suggestion_event(suggestion, *, agent: str | None) -> Event:
    decision = suggestion.guard.to_json()
    draft = suggestion.draft
    return Event(
        kind="suggestion_made", ticket_id=_ticket_id(suggestion.ticket), ticket=suggestion.ticket,
        sop_ids=tuple(h.sop_id for h in suggestion.retrieval.hits)
        or tuple(filter(None, [suggestion.retrieval.sop_id])),
        policy=decision.get("policy"), outcome=decision.get("outcome"), decision=decision,
        verdict=decision.get("verdict"),
        violations=tuple(v.get("code", "") for v in decision.get("violations", [])),
        producer=draft.producer, model=draft.model, prompt_version=suggestion.prompt_version,
        latency_ms=suggestion.latency_ms, agent=agent, reply=suggestion.reply,
        detail={"fallback_reason": draft.fallback_reason} if draft.fallback_reason else {},
    )


def _ticket_id(ticket: Mapping[str, Any]) -> str | None:
    value = ticket.get("ticket_id") or ticket.get("id")
    return str(value) if value not in (None, "") else None


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
    if output in ("-", "", None):
        count = write_export(log.iter_all(), fmt, sys.stdout)
    else:
        buffer = io.StringIO()
        count = write_export(log.iter_all(), fmt, buffer)
        try:
            Path(output).write_text(buffer.getvalue(), encoding="utf-8", newline="")
        except OSError as exc:
            raise InputError(f"cannot write {output!r}: {exc.strerror}. Check the path.") from None
    print(f"exported {count} audit events", file=sys.stderr)
    return 0
