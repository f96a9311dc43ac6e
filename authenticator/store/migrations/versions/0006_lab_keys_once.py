"""A lab's public key is registered once: a unique index on ``app_labs.public_key``.

An older version registered a lab again on a retry (same name, key and keyid). Those later labs
stay, since their certificates and API keys name them: ``duplicate_of`` names the first lab of
their key (the oldest), and the unique index covers the rows where it is null, one per key.

Revision ID: 0006_lab_keys_once
Revises: 0005_model_lifecycle
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_lab_keys_once"
down_revision = "0005_model_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("app_labs", sa.Column("duplicate_of", sa.Text, nullable=True))
    conn = op.get_bind()
    first: dict[str, str] = {}
    for lab_id, public_key in conn.execute(sa.text("SELECT id, public_key FROM app_labs ORDER BY created_at, id")):
        if public_key in first:
            conn.execute(
                sa.text("UPDATE app_labs SET duplicate_of = :first WHERE id = :id"),
                {"first": first[public_key], "id": lab_id},
            )
        else:
            first[public_key] = lab_id
    op.create_index(
        "ux_app_labs_public_key",
        "app_labs",
        ["public_key"],
        unique=True,
        sqlite_where=sa.text("duplicate_of IS NULL"),
        postgresql_where=sa.text("duplicate_of IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ux_app_labs_public_key", "app_labs")
    op.drop_column("app_labs", "duplicate_of")
