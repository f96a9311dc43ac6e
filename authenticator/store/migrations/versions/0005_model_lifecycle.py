"""The model lifecycle (issue 13): ``proj_model_lineage`` (a projection of ``model.promoted`` and
``model.shadowed``: which model serves, which ones score in the shadow, what replaced what) and the
shadow models' results and drop counts (operational data, not in the log; a rebuild keeps them).

Revision ID: 0005_model_lifecycle
Revises: 0004_log_cosignatures
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_model_lifecycle"
down_revision = "0004_log_cosignatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proj_model_lineage",
        sa.Column("entry_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("model_sha256", sa.Text, nullable=False),
        sa.Column("card_sha256", sa.Text, nullable=False),
        sa.Column("evaluation_sha256", sa.Text, nullable=True),
        sa.Column("replaces", sa.Text, nullable=True),
        sa.Column("action", sa.Text, nullable=True),
        sa.Column("active", sa.Integer, nullable=True),
        sa.Column("evaluation_summary", sa.Text, nullable=True),
        sa.Column("recorded_at", sa.Text, nullable=False),
    )
    op.create_index("ix_proj_model_lineage_model", "proj_model_lineage", ["model_sha256", "entry_index"])
    op.create_table(
        "app_shadow_results",
        sa.Column("model_sha256", sa.Text, primary_key=True),
        sa.Column("assessment_id", sa.Text, primary_key=True),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("probability_authentic", sa.Numeric(asdecimal=False), nullable=True),
        sa.Column("champion_sha256", sa.Text, nullable=False),
        sa.Column("champion_decision", sa.Text, nullable=False),
        sa.Column("scored_at", sa.Text, nullable=False),
    )
    op.create_index("ix_app_shadow_results_item", "app_shadow_results", ["item_id"])
    op.create_table(
        "app_shadow_counts",
        sa.Column("model_sha256", sa.Text, primary_key=True),
        sa.Column("dropped", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("app_shadow_counts")
    op.drop_index("ix_app_shadow_results_item", "app_shadow_results")
    op.drop_table("app_shadow_results")
    op.drop_index("ix_proj_model_lineage_model", "proj_model_lineage")
    op.drop_table("proj_model_lineage")
