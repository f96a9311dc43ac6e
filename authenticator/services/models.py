"""Models in the log: registered on first serve, listed, and their verdicts found for recalls."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from authenticator.errors import IntegrityError, InvalidInput, NotFound
from authenticator.ledger.log import NewEntry
from authenticator.services.context import ServiceContext
from authenticator.store.db import read_tx, utc_now, write_tx
from authenticator.store.tables import assessments, claims, models

MAX_PAGE = 500
CLAIM_TIMEOUT_S = 60.0


def _json_metrics(metrics: Any) -> dict[str, Any]:
    """The card's metrics as plain JSON (floats that are whole become ints for canonical JSON)."""
    value = json.loads(json.dumps(metrics if isinstance(metrics, dict) else {}, allow_nan=False, default=str))
    return value if isinstance(value, dict) else {}


def ensure_model_registered(
    ctx: ServiceContext, *, sha256: str, name: str, version: str, card_path: Path, metrics: Any
) -> bool:
    """Append ``model.registered`` once per model file; True when this call appended it.

    Several server processes start at once: a row in ``app_claims`` lets exactly one of them
    append, the others see the claim (or the entry) and do nothing.
    """
    item = f"model:{sha256}"
    if ctx.ledger.last_leaf_hash(item) is not None:
        return False
    try:
        with write_tx(ctx.engine) as conn:
            conn.execute(insert(claims).values(name=item, created_at=utc_now()))
    except IntegrityError:  # the claim exists: another process registers (or registered) it
        if not _claim_is_stale(ctx, item):
            return False
    if ctx.ledger.last_leaf_hash(item) is not None:
        return False
    body = {
        "model_sha256": sha256,
        "name": name,
        "version": version,
        "card_sha256": hashlib.sha256(card_path.read_bytes()).hexdigest(),
        "metrics": _json_metrics(metrics),
    }
    ctx.append([NewEntry("model.registered", item, body)])
    return True


def _claim_is_stale(ctx: ServiceContext, name: str) -> bool:
    """A claim older than :data:`CLAIM_TIMEOUT_S` belongs to a process that died before appending."""
    with read_tx(ctx.engine) as conn:
        created = conn.execute(select(claims.c.created_at).where(claims.c.name == name)).scalar()
    try:
        when = datetime.strptime(str(created), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return True
    return datetime.now(UTC) - when > timedelta(seconds=CLAIM_TIMEOUT_S)


def list_models(ctx: ServiceContext) -> list[dict[str, Any]]:
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(select(models).order_by(models.c.registered_index)).all()
    return [_model_json(r) for r in rows]


def _model_json(r: Any) -> dict[str, Any]:
    return {
        "sha256": r.sha256,
        "name": r.name,
        "version": r.version,
        "card_sha256": r.card_sha256,
        "metrics": json.loads(r.metrics),
        "registered_index": r.registered_index,
        "registered_at": r.registered_at,
    }


def get_model(ctx: ServiceContext, sha256: str) -> dict[str, Any]:
    with read_tx(ctx.engine) as conn:
        row = conn.execute(select(models).where(models.c.sha256 == sha256)).first()
    if row is None:
        raise NotFound(f"no registered model {sha256}", sha256=sha256)
    return _model_json(row)


def model_assessments(ctx: ServiceContext, sha256: str, after: int = -1, limit: int = 100) -> dict[str, Any]:
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
    return {
        "model_sha256": sha256,
        "assessments": [
            {
                "id": r.id,
                "item_id": r.item_id,
                "index": r.entry_index,
                "decision": r.decision,
                "probability_authentic": r.probability_authentic,
                "recorded_at": r.recorded_at,
            }
            for r in page
        ],
        "next_after": page[-1].entry_index if len(rows) > limit else None,
    }
