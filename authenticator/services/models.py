"""Models in the log: registered on first serve, listed, and their verdicts found for recalls."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, select

from authenticator.contracts.models import Model, ModelAssessment, ModelAssessments
from authenticator.db import read_tx
from authenticator.errors import Conflict, InvalidInput, NotFound
from authenticator.ledger.log import NewEntry
from authenticator.services.context import ServiceContext
from authenticator.store.tables import assessments, models

MAX_PAGE = 500


METRICS_MAX_BYTES = 32_768
"""The card's metrics copied into ``model.registered`` (an entry fits 64 KiB); larger ones are
left to the card, which the entry names by its SHA-256."""


def _json_metrics(metrics: Any) -> dict[str, Any]:
    """The card's metrics as plain JSON (floats that are whole become ints for canonical JSON).

    Free-form on purpose: whatever the card measured, copied into the log as it is."""
    value = json.loads(json.dumps(metrics if isinstance(metrics, dict) else {}, allow_nan=False, default=str))
    if not isinstance(value, dict):
        return {}
    if len(json.dumps(value, separators=(",", ":"))) > METRICS_MAX_BYTES:
        return {"in_card": "the metrics are too large for a log entry; see the card named by card_sha256"}
    return value


def ensure_model_registered(
    ctx: ServiceContext, *, sha256: str, name: str, version: str, card_path: Path, metrics: Any
) -> bool:
    """Append ``model.registered`` once per model file; True when this call appended it.

    Several server processes start at once: the check runs under the log's writer lock, in the
    append's transaction, so exactly one of them appends.
    """
    item = f"model:{sha256}"
    if ctx.ledger.last_leaf_hash(item) is not None:
        return False
    body = {
        "model_sha256": sha256,
        "name": name,
        "version": version,
        "card_sha256": hashlib.sha256(card_path.read_bytes()).hexdigest(),
        "metrics": _json_metrics(metrics),
    }

    def not_registered(conn: Connection) -> None:
        if conn.execute(select(models.c.sha256).where(models.c.sha256 == sha256)).first() is not None:
            raise Conflict("this model is already registered", sha256=sha256)

    try:
        ctx.append([NewEntry("model.registered", item, body)], check=not_registered)
    except Conflict:
        return False
    return True


def list_models(ctx: ServiceContext) -> list[Model]:
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(select(models).order_by(models.c.registered_index)).all()
    return [_model(r) for r in rows]


def _model(r: Row[Any]) -> Model:
    return Model(
        sha256=r.sha256,
        name=r.name,
        version=r.version,
        card_sha256=r.card_sha256,
        metrics=json.loads(r.metrics),
        registered_index=r.registered_index,
        registered_at=r.registered_at,
    )


def get_model(ctx: ServiceContext, sha256: str) -> Model:
    with read_tx(ctx.engine) as conn:
        row = conn.execute(select(models).where(models.c.sha256 == sha256)).first()
    if row is None:
        raise NotFound(f"no registered model {sha256}", sha256=sha256)
    return _model(row)


def model_assessments(ctx: ServiceContext, sha256: str, after: int = -1, limit: int = 100) -> ModelAssessments:
    """Every verdict the model gave, in log order, paged by log index (for recalls)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    get_model(ctx, sha256)
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(
            select(
                assessments.c.id,
                assessments.c.item_id,
                assessments.c.entry_index,
                assessments.c.decision,
                assessments.c.probability_authentic,
                assessments.c.recorded_at,
            )
            .where(assessments.c.model_sha256 == sha256, assessments.c.entry_index > after)
            .order_by(assessments.c.entry_index)
            .limit(limit + 1)
        ).all()
    page = rows[:limit]
    return ModelAssessments(
        model_sha256=sha256,
        assessments=[
            ModelAssessment(
                id=r.id,
                item_id=r.item_id,
                index=r.entry_index,
                decision=r.decision,
                probability_authentic=r.probability_authentic,
                recorded_at=r.recorded_at,
            )
            for r in page
        ],
        next_after=page[-1].entry_index if len(rows) > limit else None,
    )
