"""The app's open tickets, kept in the audit database so a reload or another tab finds them again.

A workspace (one agent's browser, named in the page's URL) holds tickets; each change of a ticket
(a message, a fact, the policy, closing it) appends a snapshot of its state. The latest snapshot of
a ticket is its state; nothing is updated in place, like the audit events beside it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sopilot.core.errors import InputError, StoreError


@dataclasses.dataclass(frozen=True, kw_only=True)
class TicketSnapshot:
    """One ticket's state as last saved."""

    workspace: str
    ticket_id: str
    state: Mapping[str, Any]
    agent: str | None = None
    closed: bool = False
    created_at: dt.datetime | None = None


def _check(workspace: str, ticket_id: str) -> None:
    if not workspace.strip():
        raise InputError("a workspace has a name (the page's ?ws= parameter)")
    if not ticket_id.strip():
        raise InputError("a ticket has an id such as 'T-1042': type it or press New ticket")


def save_ticket(settings, *, workspace: str, ticket_id: str, state: Mapping[str, Any], agent: str | None = None,
                closed: bool = False) -> TicketSnapshot:
    """Append a snapshot of one ticket's state."""
    from sqlalchemy.exc import SQLAlchemyError

    from sopilot.audit import open_log

    _check(workspace, ticket_id)
    log = open_log(settings)
    now = dt.datetime.now(dt.UTC)
    data = json.loads(json.dumps(dict(state), default=str))
    try:
        with log.engine.begin() as conn:
            conn.execute(log.snapshots.insert().values(created_at=now, workspace=workspace, ticket_id=ticket_id,
                                                       agent=agent, closed=closed, state=data))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot save ticket {ticket_id!r} in {log.url!r}: {exc}") from exc
    return TicketSnapshot(workspace=workspace, ticket_id=ticket_id, state=data, agent=agent, closed=closed,
                          created_at=now)


def _latest(settings, workspace: str) -> dict[str, TicketSnapshot]:
    from sqlalchemy import select

    from sopilot.audit import open_log

    log = open_log(settings)
    table = log.snapshots
    latest: dict[str, TicketSnapshot] = {}
    query = select(table).where(table.c.workspace == workspace).order_by(table.c.id.asc())
    with log.engine.connect() as conn:
        for row in conn.execute(query).mappings():
            created = row["created_at"]
            latest[row["ticket_id"]] = TicketSnapshot(
                workspace=workspace, ticket_id=row["ticket_id"], state=row["state"] or {}, agent=row["agent"],
                closed=bool(row["closed"]),
                created_at=created.replace(tzinfo=dt.UTC) if created and created.tzinfo is None else created)
    return latest


def open_tickets(settings, workspace: str) -> list[TicketSnapshot]:
    """The workspace's tickets not closed, the most recently changed first."""
    tickets = [t for t in _latest(settings, workspace).values() if not t.closed]
    return sorted(tickets, key=lambda t: t.created_at or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)


def load_ticket(settings, workspace: str, ticket_id: str) -> TicketSnapshot | None:
    """The latest snapshot of one ticket, or None."""
    return _latest(settings, workspace).get(ticket_id)
