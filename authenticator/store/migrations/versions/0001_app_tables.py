"""Projection tables (items, assessments, certificates, listings, custody, models) and the
API's own tables (principals, labs, API keys, idempotency keys, photo hashes, heat maps).

Revision ID: 0001_app
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_app"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    big = sa.BigInteger()
    op.create_table(
        "proj_state", sa.Column("name", sa.Text, primary_key=True), sa.Column("applied_size", big, nullable=False)
    )
    op.create_table(
        "proj_items",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("brand", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("serial_commitment", sa.Text),
        sa.Column("registered_index", big, nullable=False),
        sa.Column("registered_at", sa.Text, nullable=False),
    )
    op.create_table(
        "proj_assessments",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("entry_index", big, nullable=False, unique=True),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("probability_authentic", sa.Numeric(asdecimal=False)),
        sa.Column("model_sha256", sa.Text, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_proj_assessments_item", "proj_assessments", ["item_id", "entry_index"])
    op.create_index("ix_proj_assessments_model", "proj_assessments", ["model_sha256", "entry_index"])
    op.create_table(
        "proj_certificates",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("lab_id", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("inspection_date", sa.Text, nullable=False),
        sa.Column("method", sa.Text),
        sa.Column("payload_sha256", sa.Text, nullable=False),
        sa.Column("envelope_sha256", sa.Text, nullable=False),
        sa.Column("attached_index", big, nullable=False),
        sa.Column("attached_at", sa.Text, nullable=False),
        sa.Column("revoked_index", big),
        sa.Column("revoked_at", sa.Text),
        sa.Column("revocation_reason", sa.Text),
    )
    op.create_index("ix_proj_certificates_item", "proj_certificates", ["item_id", "attached_index"])
    op.create_table(
        "proj_listings",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("title_sha256", sa.Text, nullable=False),
        sa.Column("price", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("published_index", big, nullable=False),
        sa.Column("published_at", sa.Text, nullable=False),
        sa.Column("closed_index", big),
        sa.Column("closed_reason", sa.Text),
    )
    op.create_index("ix_proj_listings_item", "proj_listings", ["item_id"])
    op.create_table(
        "proj_custody",
        sa.Column("entry_index", big, primary_key=True, autoincrement=False),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("counterparty_commitment", sa.Text),
        sa.Column("recorded_at", sa.Text, nullable=False),
    )
    op.create_index("ix_proj_custody_item", "proj_custody", ["item_id", "entry_index"])
    op.create_table(
        "proj_models",
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("card_sha256", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("registered_index", big, nullable=False),
        sa.Column("registered_at", sa.Text, nullable=False),
    )
    op.create_table(
        "app_principals",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_table(
        "app_labs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("accreditation", sa.Text, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("keyid", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_table(
        "app_api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("principal_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.Text),
    )
    op.create_table(
        "app_idempotency",
        sa.Column("principal_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("resource_id", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_table(
        "app_photo_hashes",
        sa.Column("item_id", sa.Text, primary_key=True),
        sa.Column("photo_sha256", sa.Text, primary_key=True),
        sa.Column("phash", big, nullable=False),
        sa.Column("band0", sa.Integer, nullable=False),
        sa.Column("band1", sa.Integer, nullable=False),
        sa.Column("band2", sa.Integer, nullable=False),
        sa.Column("band3", sa.Integer, nullable=False),
    )
    for band in range(4):
        op.create_index(f"ix_app_photo_hashes_band{band}", "app_photo_hashes", [f"band{band}"])
    op.create_table(
        "app_heatmaps",
        sa.Column("assessment_id", sa.Text, primary_key=True),
        sa.Column("photo_sha256", sa.Text, primary_key=True),
        sa.Column("png_sha256", sa.Text, nullable=False),
    )
    op.create_table(
        "app_claims",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("created_at", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "app_claims",
        "app_heatmaps",
        "app_photo_hashes",
        "app_idempotency",
        "app_api_keys",
        "app_labs",
        "app_principals",
        "proj_models",
        "proj_custody",
        "proj_listings",
        "proj_certificates",
        "proj_assessments",
        "proj_items",
        "proj_state",
    ):
        op.drop_table(name)
