"""Append-only, one event per action, tickets by id, and the workspace's ticket snapshots.

- `action_id`: the id of the agent's action (a click); unique, so a double click records one event.
- `ticket_id` indexed: an auditor reads a ticket's whole history.
- `workspace_snapshots`: the app's open tickets (facts, policy, messages), appended on every change so
  a reload restores them; the latest snapshot of a ticket is its state.
- Triggers refuse UPDATE and DELETE on both tables (and TRUNCATE on PostgreSQL): no code path of
  sopilot changes a recorded event, and the database refuses it to anyone else.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("audit_events", "workspace_snapshots")


def upgrade() -> None:
    """Add the columns, the snapshot table and the append-only triggers."""
    op.add_column("audit_events", sa.Column("action_id", sa.String(100)))
    op.create_index("ux_audit_events_action_id", "audit_events", ["action_id"], unique=True)
    op.create_index("ix_audit_events_ticket_id", "audit_events", ["ticket_id"])
    op.create_table(
        "workspace_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workspace", sa.String(100), nullable=False),
        sa.Column("ticket_id", sa.String(200), nullable=False),
        sa.Column("agent", sa.String(200)),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
    )
    op.create_index("ix_workspace_snapshots_workspace", "workspace_snapshots", ["workspace", "ticket_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("""
            CREATE FUNCTION sopilot_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
            END $$""")
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION sopilot_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION sopilot_append_only()")
    else:
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: {operation} on {table} "
                           "is refused'); END")


def downgrade() -> None:
    """Never: the audit log only moves forward."""
    raise NotImplementedError("the audit log is append-only: its schema only moves forward")
