"""The audit database's tables, and the migrations that make them (Alembic, forward only).

The tables are declared here for queries; they are created and changed only by the migrations in
`migrations/versions/` (never `create_all`), so a database made by any release reaches the same
schema, and the append-only triggers come with it. `migrate` runs on every open and is a no-op once
the database is at the head revision; concurrent openers wait for each other (an advisory lock on
PostgreSQL, SQLite's write lock and a retry otherwise).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sopilot.core.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0003"
"""The newest revision; a migration added to `migrations/versions/` moves it."""
_LOCK_ID = 731_0002
_MIGRATING = threading.Lock()  # Alembic's `op` and `context` are module-wide: one migration at a time


def tables(metadata):
    """`audit_events` and `workspace_snapshots`, as the head revision shapes them."""
    from sqlalchemy import JSON, Boolean, Column, DateTime, Float, Integer, String, Table, Text

    events = Table(
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
        Column("action_id", String(100)),
    )
    snapshots = Table(
        "workspace_snapshots", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("workspace", String(100), nullable=False),
        Column("ticket_id", String(200), nullable=False),
        Column("agent", String(200)),
        Column("closed", Boolean, nullable=False),
        Column("state", JSON, nullable=False),
    )
    return events, snapshots


def current_revision(engine) -> str | None:
    """The revision the database is at (None: no migration has run)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine, url: str) -> None:
    """Bring the database to the head revision.

    Raises:
        StoreError: the database cannot be migrated; the message names it.
    """
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if current_revision(engine) == HEAD:
            return
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the audit log at {url!r}: {exc}") from None
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    for attempt in range(5):
        try:
            with _MIGRATING, engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_ID})"))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
            return
        except SQLAlchemyError as exc:
            # Another process migrated between our check and our upgrade: look again.
            if attempt == 4:
                raise StoreError(f"cannot migrate the audit log at {url!r}: {exc}") from None
            time.sleep(0.2 * (attempt + 1))
