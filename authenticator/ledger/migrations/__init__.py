"""Alembic environment of the ledger, run programmatically by :func:`authenticator.ledger.sql.migrate`."""
