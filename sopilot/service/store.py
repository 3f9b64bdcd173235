"""What the service keeps besides the audit log: its suggestions, and the webhook events it has seen.

Feedback arrives later than the suggestion and maybe at another process, so every suggestion is
stored (the `suggest --json` document and the ticket) under its `suggestion_id`. Webhook events
are stored by (source, event id) with a primary key: the same event delivered twice finds the
first one's row and gets the same answer, never a second suggestion. Both tables live in the
audit database and are created by its migrations (revision 0003); `_metadata()` declares them for
queries only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from sopilot.core.errors import NotFoundError
from sopilot.core.instances import PerKey


def _metadata():
    from sqlalchemy import JSON, Column, DateTime, Index, MetaData, String, Table

    metadata = MetaData()
    Table("service_suggestions", metadata,
          Column("suggestion_id", String(40), primary_key=True),
          Column("created_at", DateTime(timezone=True), nullable=False),
          Column("agent", String(200)),
          Column("ticket_id", String(200)),
          Column("ticket", JSON, nullable=False),
          Column("document", JSON, nullable=False),
          Index("ix_service_suggestions_ticket", "ticket_id"))
    Table("webhook_events", metadata,
          Column("source", String(40), primary_key=True),
          Column("event_id", String(200), primary_key=True),
          Column("received_at", DateTime(timezone=True), nullable=False),
          Column("result", JSON))
    return metadata


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoredSuggestion:
    """A suggestion as the service answered it."""

    suggestion_id: str
    created_at: dt.datetime
    agent: str | None
    ticket_id: str | None
    ticket: Mapping[str, Any]
    document: Mapping[str, Any]


class ServiceStore:
    """The two service tables behind one database URL; safe to share between threads."""

    def __init__(self, url: str) -> None:
        from sopilot.audit import engine_for

        self.engine = engine_for(url)  # the audit log's engine: one pool per URL, WAL and busy timeout set
        from sopilot.audit.schema import migrate

        metadata = _metadata()
        self.suggestions = metadata.tables["service_suggestions"]
        self.events = metadata.tables["webhook_events"]
        migrate(self.engine, url)  # the audit schema's migrations create both tables (revision 0003)

    @staticmethod
    def new_id() -> str:
        """A fresh suggestion id."""
        return "sug_" + uuid.uuid4().hex

    def put(self, *, suggestion_id: str, agent: str | None, ticket_id: str | None, ticket: Mapping[str, Any],
            document: Mapping[str, Any]) -> None:
        """Keep one suggestion."""
        row = {"suggestion_id": suggestion_id, "created_at": dt.datetime.now(dt.UTC), "agent": agent,
               "ticket_id": ticket_id, "ticket": _jsonable(ticket), "document": _jsonable(document)}
        with self.engine.begin() as conn:
            conn.execute(self.suggestions.insert().values(**row))

    def get(self, suggestion_id: str) -> StoredSuggestion:
        """The suggestion, or `NotFoundError`."""
        from sqlalchemy import select

        with self.engine.connect() as conn:
            row = conn.execute(select(self.suggestions).where(self.suggestions.c.suggestion_id == suggestion_id)
                               ).mappings().first()
        if row is None:
            raise NotFoundError(f"no suggestion {suggestion_id[:60]!r}: use the suggestion_id that POST /v1/suggest "
                                "answered")
        return _stored(row)

    def latest_for_ticket(self, ticket_id: str) -> StoredSuggestion | None:
        """The newest suggestion made for a ticket, or None."""
        from sqlalchemy import select

        query = (select(self.suggestions).where(self.suggestions.c.ticket_id == ticket_id)
                 .order_by(self.suggestions.c.created_at.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _stored(row) if row is not None else None

    def claim_event(self, source: str, event_id: str) -> tuple[bool, Mapping[str, Any] | None]:
        """Record a webhook event; (True, None) the first time, (False, its result) for a repeat."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        try:
            with self.engine.begin() as conn:
                conn.execute(self.events.insert().values(source=source, event_id=event_id,
                                                         received_at=dt.datetime.now(dt.UTC), result=None))
            return True, None
        except IntegrityError:
            with self.engine.connect() as conn:
                row = conn.execute(select(self.events.c.result).where(self.events.c.source == source,
                                                                       self.events.c.event_id == event_id)).first()
            return False, (row[0] if row else None)

    def finish_event(self, source: str, event_id: str, result: Mapping[str, Any]) -> None:
        """Keep what an event produced, for its repeats."""
        from sqlalchemy import update

        with self.engine.begin() as conn:
            conn.execute(update(self.events).where(self.events.c.source == source, self.events.c.event_id == event_id)
                         .values(result=_jsonable(result)))

    def release_event(self, source: str, event_id: str) -> None:
        """Forget an event whose processing failed, so a redelivery is processed again."""
        from sqlalchemy import delete

        with self.engine.begin() as conn:
            conn.execute(delete(self.events).where(self.events.c.source == source, self.events.c.event_id == event_id))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _stored(row: Mapping[Any, Any]) -> StoredSuggestion:
    created = row["created_at"]
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return StoredSuggestion(suggestion_id=row["suggestion_id"], created_at=created, agent=row["agent"],
                            ticket_id=row["ticket_id"], ticket=row["ticket"], document=row["document"])


_STORES: PerKey[ServiceStore] = PerKey(ServiceStore)


def open_store(settings) -> ServiceStore:
    """The process-wide service store of `settings.audit_url`."""
    return _STORES.get(settings.audit_url)
