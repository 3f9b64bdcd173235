"""Alembic's entry point for the audit schema: run on the connection `sopilot.audit.schema.migrate` gives."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
