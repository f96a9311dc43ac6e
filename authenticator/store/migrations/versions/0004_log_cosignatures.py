"""Witness cosignatures of the log's checkpoints (C2SP tlog-cosignature): one row per witness
and tree size, the signature line as the witness answered it (already verified), served with the
checkpoint of that size. Not a projection: the log does not hold them, a rebuild keeps them.

Revision ID: 0004_log_cosignatures
Revises: 0003_photo_erasure
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_log_cosignatures"
down_revision = "0003_photo_erasure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_log_cosignatures",
        sa.Column("witness_key", sa.Text, primary_key=True),
        sa.Column("tree_size", sa.BigInteger, primary_key=True),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("cosigned_at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
    )
    op.create_index("ix_app_log_cosignatures_size", "app_log_cosignatures", ["tree_size"])


def downgrade() -> None:
    op.drop_index("ix_app_log_cosignatures_size", "app_log_cosignatures")
    op.drop_table("app_log_cosignatures")
