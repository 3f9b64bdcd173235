"""The service's tables: API keys, stored suggestions, and the webhook events already seen.

- `api_keys`: argon2 hashes of the service's keys (`sopilot.identity.keys`).
- `service_suggestions`: each suggestion the service answered, so later feedback is checked
  against the decision it answers (`sopilot.service.store`).
- `webhook_events`: one row per (source, event id), so a redelivered event gets the first answer.

Releases before this revision created these tables themselves (SQLAlchemy `create_all`) with the
same shape; a table that exists already is kept as it is.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create each service table that is not there yet."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "api_keys" not in existing:
        op.create_table(
            "api_keys",
            sa.Column("key_id", sa.String(12), primary_key=True),
            sa.Column("name", sa.String(100), nullable=False, unique=True),
            sa.Column("role", sa.String(20), nullable=False),
            sa.Column("hash", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("revoked_at", sa.DateTime(timezone=True)),
        )
    if "service_suggestions" not in existing:
        op.create_table(
            "service_suggestions",
            sa.Column("suggestion_id", sa.String(40), primary_key=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("agent", sa.String(200)),
            sa.Column("ticket_id", sa.String(200)),
            sa.Column("ticket", sa.JSON, nullable=False),
            sa.Column("document", sa.JSON, nullable=False),
        )
        op.create_index("ix_service_suggestions_ticket", "service_suggestions", ["ticket_id"])
    if "webhook_events" not in existing:
        op.create_table(
            "webhook_events",
            sa.Column("source", sa.String(40), primary_key=True),
            sa.Column("event_id", sa.String(200), primary_key=True),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("result", sa.JSON),
        )


def downgrade() -> None:
    """Never: the audit database only moves forward."""
    raise NotImplementedError("the audit database's schema only moves forward")
