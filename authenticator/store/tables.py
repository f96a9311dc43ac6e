"""The API's tables (SQLAlchemy Core), shared by the migrations, the repositories and rebuild."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
)

metadata = MetaData()

VERSION_TABLE = "alembic_version_app"
"""Alembic version table of these tables; the ledger keeps ``alembic_version_ledger``."""

# --- Projections: derived from the log, rebuilt by ``authenticator projections rebuild`` ------

projection_state = Table(
    "proj_state",
    metadata,
    Column("name", Text, primary_key=True),
    Column("applied_size", BigInteger, nullable=False),
    Column("rules_version", Integer),
)
"""How many log entries the projections have applied, and under which version of the rules;
one row named ``main``."""

items = Table(
    "proj_items",
    metadata,
    Column("id", Text, primary_key=True),
    Column("platform", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("brand", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("serial_commitment", Text),
    Column("registered_index", BigInteger, nullable=False),
    Column("registered_at", Text, nullable=False),
)

assessments = Table(
    "proj_assessments",
    metadata,
    Column("id", Text, primary_key=True),
    Column("item_id", Text, nullable=False),
    Column("entry_index", BigInteger, nullable=False, unique=True),
    Column("decision", Text, nullable=False),
    Column("probability_authentic", Numeric(asdecimal=False)),
    Column("model_sha256", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("recorded_at", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("photoset_sha256", Text),
)
"""``photoset_sha256``: SHA-256 over the sorted photo digests; an item's photo set is assessed
once per model (the natural key a second, identical upload collides with)."""
Index("ix_proj_assessments_item", assessments.c.item_id, assessments.c.entry_index)
Index("ix_proj_assessments_model", assessments.c.model_sha256, assessments.c.entry_index)
Index("ix_proj_assessments_photoset", assessments.c.item_id, assessments.c.photoset_sha256, assessments.c.model_sha256)

certificates = Table(
    "proj_certificates",
    metadata,
    Column("id", Text, primary_key=True),
    Column("item_id", Text, nullable=False),
    Column("lab_id", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("inspection_date", Text, nullable=False),
    Column("method", Text),
    Column("payload_sha256", Text, nullable=False),
    Column("envelope_sha256", Text, nullable=False),
    Column("attached_index", BigInteger, nullable=False),
    Column("attached_at", Text, nullable=False),
    Column("revoked_index", BigInteger),
    Column("revoked_at", Text),
    Column("revocation_reason", Text),
)
Index("ix_proj_certificates_item", certificates.c.item_id, certificates.c.attached_index)

listings = Table(
    "proj_listings",
    metadata,
    Column("id", Text, primary_key=True),
    Column("item_id", Text, nullable=False),
    Column("platform", Text, nullable=False),
    Column("title", Text),
    Column("title_sha256", Text, nullable=False),
    Column("price", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("published_index", BigInteger, nullable=False),
    Column("published_at", Text, nullable=False),
    Column("closed_index", BigInteger),
    Column("closed_reason", Text),
)
Index("ix_proj_listings_item", listings.c.item_id)

custody = Table(
    "proj_custody",
    metadata,
    Column("entry_index", BigInteger, primary_key=True, autoincrement=False),
    Column("item_id", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("platform", Text, nullable=False),
    Column("counterparty_commitment", Text),
    Column("recorded_at", Text, nullable=False),
)
Index("ix_proj_custody_item", custody.c.item_id, custody.c.entry_index)

models = Table(
    "proj_models",
    metadata,
    Column("sha256", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("card_sha256", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("registered_index", BigInteger, nullable=False),
    Column("registered_at", Text, nullable=False),
)

assessment_photos = Table(
    "proj_assessment_photos",
    metadata,
    Column("assessment_id", Text, primary_key=True),
    Column("photo_sha256", Text, primary_key=True),
    Column("item_id", Text, nullable=False),
    Column("recorded_at", Text, nullable=False),
)
"""One row per photo of each assessment: which assessments still hold a (content-addressed,
possibly shared) photo, and how old it is (the retention purge)."""
Index("ix_proj_assessment_photos_sha", assessment_photos.c.photo_sha256)
Index("ix_proj_assessment_photos_recorded", assessment_photos.c.recorded_at)

erasures = Table(
    "proj_erasures",
    metadata,
    Column("assessment_id", Text, primary_key=True),
    Column("photo_sha256", Text, primary_key=True),
    Column("item_id", Text, nullable=False),
    Column("entry_index", BigInteger, nullable=False),
    Column("erased_at", Text, nullable=False),
    Column("erased_by", Text, nullable=False),
    Column("reason", Text),
)
"""Photos taken back (``photos.erased``): the first entry that names a photo of an assessment wins."""
Index("ix_proj_erasures_index", erasures.c.entry_index)

model_lineage = Table(
    "proj_model_lineage",
    metadata,
    Column("entry_index", BigInteger, primary_key=True, autoincrement=False),
    Column("type", Text, nullable=False),
    Column("model_sha256", Text, nullable=False),
    Column("card_sha256", Text, nullable=False),
    Column("evaluation_sha256", Text),
    Column("replaces", Text),
    Column("action", Text),
    Column("active", Integer),
    Column("evaluation_summary", Text),
    Column("recorded_at", Text, nullable=False),
)
"""``model.promoted`` and ``model.shadowed`` in log order: which model serves (the last promotion),
which candidates score in the shadow, and the lineage (``replaces``). ``evaluation_summary`` is read
from the evaluation report in the blob store (the log holds its hash). Every worker reads the
largest ``entry_index`` before each assessment: a new row is the signal to switch models."""
Index("ix_proj_model_lineage_model", model_lineage.c.model_sha256, model_lineage.c.entry_index)

PROJECTION_TABLES = (
    projection_state,
    items,
    assessments,
    certificates,
    listings,
    custody,
    models,
    assessment_photos,
    erasures,
    model_lineage,
)
"""Emptied and refilled from the log by a rebuild, in this order's reverse for deletes."""

# --- Source tables: what the log does not hold ------------------------------------------------

principals = Table(
    "app_principals",
    metadata,
    Column("id", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)
"""Who acts: an operator, a platform or a lab. Keys belong to a principal."""

labs = Table(
    "app_labs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("accreditation", Text, nullable=False),
    Column("public_key", Text, nullable=False),
    Column("keyid", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("duplicate_of", Text),
)
"""Registered labs and their Ed25519 public keys (base64 of the raw 32 bytes). A public key is
one lab's (unique index); ``duplicate_of`` names the first lab of a key that an older version
registered twice (those later labs stay: their certificates name them)."""
Index(
    "ux_app_labs_public_key",
    labs.c.public_key,
    unique=True,
    sqlite_where=labs.c.duplicate_of.is_(None),
    postgresql_where=labs.c.duplicate_of.is_(None),
)

api_keys = Table(
    "app_api_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("principal_id", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("secret_sha256", LargeBinary(32), nullable=False),
    Column("created_at", Text, nullable=False),
    Column("revoked_at", Text),
)
"""Only the SHA-256 of each key's secret; the key itself is shown once, at creation."""

idempotency = Table(
    "app_idempotency",
    metadata,
    Column("principal_id", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("resource_id", Text, nullable=False),
    Column("status_code", Integer),
    Column("response", Text),
    Column("created_at", Text, nullable=False),
)
"""One row per (caller, Idempotency-Key): pending while ``response`` is null. ``resource_id`` is
the id the first run gave its result (an assessment id), chosen before it appended anything."""

photo_hashes = Table(
    "app_photo_hashes",
    metadata,
    Column("item_id", Text, primary_key=True),
    Column("photo_sha256", Text, primary_key=True),
    Column("phash", BigInteger, nullable=False),
    Column("band0", Integer, nullable=False),
    Column("band1", Integer, nullable=False),
    Column("band2", Integer, nullable=False),
    Column("band3", Integer, nullable=False),
)
"""Perceptual hashes of stored photos, split in four 16-bit bands (each indexed): two hashes
within Hamming distance 3 share at least one band, so a band match finds every candidate."""
for _band in range(4):
    Index(f"ix_app_photo_hashes_band{_band}", photo_hashes.c[f"band{_band}"])

heatmaps = Table(
    "app_heatmaps",
    metadata,
    Column("assessment_id", Text, primary_key=True),
    Column("photo_sha256", Text, primary_key=True),
    Column("png_sha256", Text, nullable=False),
)

claims = Table(
    "app_claims",
    metadata,
    Column("name", Text, primary_key=True),
    Column("created_at", Text, nullable=False),
)
"""One-time jobs claimed by one process (registering a model version in the log)."""

log_cosignatures = Table(
    "app_log_cosignatures",
    metadata,
    Column("witness_key", Text, primary_key=True),
    Column("tree_size", BigInteger, primary_key=True),
    Column("line", Text, nullable=False),
    Column("cosigned_at", BigInteger, nullable=False),
    Column("received_at", Text, nullable=False),
)
"""Witnesses' cosignatures of the log's checkpoints (verified before they are kept), by the
witness's verifier key and the tree size; served appended to that checkpoint."""
Index("ix_app_log_cosignatures_size", log_cosignatures.c.tree_size)

shadow_results = Table(
    "app_shadow_results",
    metadata,
    Column("model_sha256", Text, primary_key=True),
    Column("assessment_id", Text, primary_key=True),
    Column("item_id", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("probability_authentic", Numeric(asdecimal=False)),
    Column("champion_sha256", Text, nullable=False),
    Column("champion_decision", Text, nullable=False),
    Column("scored_at", Text, nullable=False),
)
"""What a shadow model decided for a live assessment (never part of the verdict, not in the log)."""
Index("ix_app_shadow_results_item", shadow_results.c.item_id)

shadow_counts = Table(
    "app_shadow_counts",
    metadata,
    Column("model_sha256", Text, primary_key=True),
    Column("dropped", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
)
"""Live assessments a shadow model did not score: dropped (its queue was full) or failed."""
