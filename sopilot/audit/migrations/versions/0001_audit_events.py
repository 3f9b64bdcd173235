"""The audit events table as the first releases created it.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `audit_events`; a log created before migrations existed already has it and is kept."""
    if sa.inspect(op.get_bind()).has_table("audit_events"):
        return
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("ticket_id", sa.String(200)),
        sa.Column("policy", sa.String(100)),
        sa.Column("outcome", sa.String(40)),
        sa.Column("verdict", sa.String(20)),
        sa.Column("producer", sa.String(20)),
        sa.Column("model", sa.String(200)),
        sa.Column("prompt_version", sa.String(100)),
        sa.Column("latency_ms", sa.Float),
        sa.Column("agent", sa.String(200)),
        sa.Column("send_mode", sa.String(20)),
        sa.Column("justification", sa.Text),
        sa.Column("reply", sa.Text),
        sa.Column("ticket", sa.JSON, nullable=False),
        sa.Column("sop_ids", sa.JSON, nullable=False),
        sa.Column("decision", sa.JSON),
        sa.Column("violations", sa.JSON, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_events_kind", "audit_events", ["kind"])
    op.create_index("ix_audit_events_policy", "audit_events", ["policy"])


def downgrade() -> None:
    """Never: the audit log only moves forward."""
    raise NotImplementedError("the audit log is append-only: its schema only moves forward")
