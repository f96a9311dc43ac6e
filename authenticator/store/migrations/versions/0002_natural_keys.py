"""Natural keys the exactly-once commands check under the writer lock: the photo set of an
assessment (one verdict per item, photo set and model) and the rules version of the projections
(a new version makes the next start rebuild them from the log).

Revision ID: 0002_natural_keys
Revises: 0001_app
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_natural_keys"
down_revision = "0001_app"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("proj_assessments", sa.Column("photoset_sha256", sa.Text, nullable=True))
    op.create_index(
        "ix_proj_assessments_photoset", "proj_assessments", ["item_id", "photoset_sha256", "model_sha256"]
    )
    op.add_column("proj_state", sa.Column("rules_version", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("proj_state", "rules_version")
    op.drop_index("ix_proj_assessments_photoset", "proj_assessments")
    op.drop_column("proj_assessments", "photoset_sha256")
