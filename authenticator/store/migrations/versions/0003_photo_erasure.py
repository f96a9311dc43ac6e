"""Photos a seller can take back: one row per photo of each assessment (who still holds a
shared, content-addressed photo; how old it is) and the erasures (``photos.erased``). Both are
projections: the rules version moves with them, so the next start fills them from the log.

Revision ID: 0003_photo_erasure
Revises: 0002_natural_keys
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_photo_erasure"
down_revision = "0002_natural_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proj_assessment_photos",
        sa.Column("assessment_id", sa.Text, primary_key=True),
        sa.Column("photo_sha256", sa.Text, primary_key=True),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.Text, nullable=False),
    )
    op.create_index("ix_proj_assessment_photos_sha", "proj_assessment_photos", ["photo_sha256"])
    op.create_index("ix_proj_assessment_photos_recorded", "proj_assessment_photos", ["recorded_at"])
    op.create_table(
        "proj_erasures",
        sa.Column("assessment_id", sa.Text, primary_key=True),
        sa.Column("photo_sha256", sa.Text, primary_key=True),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
        sa.Column("erased_at", sa.Text, nullable=False),
        sa.Column("erased_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_proj_erasures_index", "proj_erasures", ["entry_index"])


def downgrade() -> None:
    op.drop_index("ix_proj_erasures_index", "proj_erasures")
    op.drop_table("proj_erasures")
    op.drop_index("ix_proj_assessment_photos_recorded", "proj_assessment_photos")
    op.drop_index("ix_proj_assessment_photos_sha", "proj_assessment_photos")
    op.drop_table("proj_assessment_photos")
