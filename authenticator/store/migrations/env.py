"""Alembic env for the API's tables: run on a connection handed over by :func:`migrate`.

The version table is ``alembic_version_app``, so these migrations never touch the ledger's.
"""

from __future__ import annotations

from alembic import context

from authenticator.store.tables import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic command line
    raise RuntimeError("run the API migrations through authenticator.store.migrate.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
