"""Alembic env for the ledger tables: always run on a connection handed over by the store.

The store opens the connection, takes the writer lock and passes it in
``config.attributes["connection"]``, so concurrent processes never race on the DDL.
"""

from __future__ import annotations

from alembic import context

from authenticator.ledger.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic command line
    raise RuntimeError("run the ledger migrations through authenticator.ledger.sql.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
