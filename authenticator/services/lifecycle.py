"""The model lifecycle in the log: promote, roll back, shadow; which model serves.

A model is its ONNX file's SHA-256. The shipped one lives in ``settings.weights_dir``; every other
model a deployment has used lives in ``<models_dir>/<sha256>/`` (ONNX, card, bank, and the
evaluation that promoted it), copied there by :func:`promote` or :func:`shadow` before the log
names it. The log is the switch: ``model.promoted`` (item ``model:lineage``) says which model serves
from that entry on, every worker reads the lineage before each assessment
(:mod:`authenticator.services.serving`), and the entry's check runs under the writer lock, so two
operators promoting at once cannot both replace the same model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from authenticator.config import Settings
from authenticator.contracts.models import (
    Model,
    ModelLineageEntry,
    ModelStatus,
    PromotedAnswer,
    PromotionAnswer,
    ShadowedAnswer,
)
from authenticator.db import read_tx
from authenticator.errors import ModelError, NotFound, PromotionRefused
from authenticator.ledger.entries import MODEL_LINEAGE_ITEM
from authenticator.ledger.entry_types import ModelPromoted, ModelShadowed
from authenticator.ledger.log import Check, NewEntry
from authenticator.services.context import ServiceContext
from authenticator.services.models import ensure_model_registered, list_models
from authenticator.services.promotion import check_promotion, eligible, refusal_message
from authenticator.store.tables import model_lineage
from authenticator.vision.card import ModelCard, sha256_file

EVALUATION_DIR = "evaluation"


@dataclass(frozen=True)
class LineageRow:
    """One ``model.promoted`` or ``model.shadowed`` entry as the lineage table keeps it."""

    index: int
    type: Literal["model.promoted", "model.shadowed"]
    model_sha256: str
    card_sha256: str
    evaluation_sha256: str | None
    replaces: str | None
    action: Literal["promotion", "rollback"] | None
    """Set on ``model.promoted`` only."""
    active: bool | None
    evaluation_summary: dict[str, Any] | None
    """Free-form: the ``summary`` section of the evaluation report, whatever that report measured."""
    recorded_at: str


def lineage_marker(conn: Connection) -> int:
    """The log index of the newest lineage entry (-1: none); one primary-key lookup."""
    value = conn.execute(select(func.max(model_lineage.c.entry_index))).scalar()
    return -1 if value is None else int(value)


def lineage_rows(conn: Connection) -> list[LineageRow]:
    rows = conn.execute(select(model_lineage).order_by(model_lineage.c.entry_index)).all()
    return [
        LineageRow(
            index=int(r.entry_index),
            type=r.type,
            model_sha256=r.model_sha256,
            card_sha256=r.card_sha256,
            evaluation_sha256=r.evaluation_sha256,
            replaces=r.replaces,
            action=r.action,
            active=None if r.active is None else bool(r.active),
            evaluation_summary=None if r.evaluation_summary is None else json.loads(r.evaluation_summary),
            recorded_at=r.recorded_at,
        )
        for r in rows
    ]


def shipped_card_path(settings: Settings) -> Path:
    return (settings.weights_dir / f"{settings.model_name}.card.json").resolve()


def shipped_sha256(settings: Settings) -> str:
    return ModelCard.load(shipped_card_path(settings)).sha256


def serving_from(rows: list[LineageRow], shipped: str) -> str:
    promoted = [r for r in rows if r.type == "model.promoted"]
    return promoted[-1].model_sha256 if promoted else shipped


def shadows_from(rows: list[LineageRow], serving: str) -> list[str]:
    """Models whose latest ``model.shadowed`` is active (the serving one never shadows itself)."""
    state: dict[str, bool] = {}
    for r in rows:
        if r.type == "model.shadowed":
            state[r.model_sha256] = bool(r.active)
    return [sha for sha, on in state.items() if on and sha != serving]


def serving_sha256(ctx: ServiceContext) -> str:
    with read_tx(ctx.engine) as conn:
        rows = lineage_rows(conn)
    return serving_from(rows, shipped_sha256(ctx.settings))


def card_path_of(settings: Settings, sha256: str) -> Path:
    """Where the model ``sha256`` lives: the shipped folder or its folder in the models store."""
    shipped = shipped_card_path(settings)
    if ModelCard.load(shipped).sha256 == sha256:
        return shipped
    folder = settings.resolved_models_dir / sha256
    cards = sorted(folder.glob("*.card.json"))
    if not cards:
        raise NotFound(f"model {sha256[:16]}... is not in {settings.resolved_models_dir}", sha256=sha256)
    return cards[0]


def _candidate_card(candidate: Path) -> Path:
    """A candidate given as its folder (one ``*.card.json`` in it) or its card file."""
    if candidate.is_dir():
        cards = sorted(candidate.glob("*.card.json"))
        if len(cards) != 1:
            raise ModelError(f"{candidate} must hold exactly one *.card.json (found {len(cards)})")
        return cards[0]
    return candidate


def load_candidate(candidate: Path) -> tuple[ModelCard, Path]:
    card_path = _candidate_card(candidate)
    card = ModelCard.load(card_path)
    card.verify_files(card_path)
    return card, card_path


def store_model(settings: Settings, card: ModelCard, card_path: Path, evaluation: Path | None) -> Path:
    """Copy the model's files (and its evaluation folder) into ``<models_dir>/<sha256>/``; idempotent.
    Written to a temporary folder first and renamed, so a worker never sees half a model."""
    dest = settings.resolved_models_dir / card.sha256
    if (dest / card_path.name).is_file():
        ModelCard.load(dest / card_path.name).verify_files(dest / card_path.name)
        return dest / card_path.name
    settings.resolved_models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.resolved_models_dir, prefix=".incoming-") as tmp:
        staged = Path(tmp) / "model"
        staged.mkdir()
        for rel in [card.onnx_file, *(f.path for f in card.extra_files)]:
            shutil.copyfile(card_path.parent / rel, staged / rel)
        shutil.copyfile(card_path, staged / card_path.name)
        if evaluation is not None:
            shutil.copytree(evaluation, staged / EVALUATION_DIR)
        ModelCard.load(staged / card_path.name).verify_files(staged / card_path.name)
        try:
            staged.rename(dest)
        except OSError:
            if not (dest / card_path.name).is_file():  # another process stored it meanwhile: fine
                raise
    return dest / card_path.name


def _evaluation_report(evaluation: Path) -> tuple[dict[str, Any], bytes]:
    # the report is free-form JSON (training/lifecycle.py writes it); check_promotion reads its numbers
    path = evaluation / "report.json" if evaluation.is_dir() else evaluation
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"no evaluation report at {path}: run authenticator model evaluate first") from exc
    report = json.loads(data)
    if not isinstance(report, dict):
        raise PromotionRefused(f"{path} is not an evaluation report")
    return report, data


def _register(ctx: ServiceContext, card: ModelCard, card_path: Path) -> None:
    ensure_model_registered(
        ctx, sha256=card.sha256, name=card.name, version=card.version, card_path=card_path, metrics=card.metrics
    )


def _still_serving(expected: str, shipped: str) -> Check:
    def check(conn: Connection) -> None:
        now = serving_from(lineage_rows(conn), shipped)
        if now != expected:
            raise PromotionRefused(
                f"model {now[:16]}... serves now, not {expected[:16]}...: evaluate the candidate against it again",
                serving=now,
            )

    return check


def promote(ctx: ServiceContext, candidate: Path, evaluation: Path, *, tolerance: float = 0.0) -> PromotionAnswer:
    """Promote the candidate if its evaluation against the serving model meets the rule
    (:func:`authenticator.services.promotion.check_promotion`); append ``model.promoted``."""
    card, card_path = load_candidate(candidate)
    report, raw = _evaluation_report(evaluation)
    shipped = shipped_sha256(ctx.settings)
    serving = serving_sha256(ctx)
    if card.sha256 == serving:
        raise PromotionRefused("this model already serves")
    evaluated = (report.get("candidate") or {}).get("sha256")
    if evaluated != card.sha256:
        raise PromotionRefused(f"the evaluation is of model {str(evaluated)[:16]}..., not of {card.sha256[:16]}...")
    against = (report.get("champion") or {}).get("sha256")
    if against != serving:
        raise PromotionRefused(
            f"the evaluation compares against {str(against)[:16]}..., but {serving[:16]}... serves now: "
            "evaluate the candidate against the serving model",
            serving=serving,
        )
    checks = check_promotion(report, tolerance=tolerance)
    if not eligible(checks):
        raise PromotionRefused(f"the candidate is not promoted: {refusal_message(checks)}")
    evaluation_dir = evaluation if evaluation.is_dir() else evaluation.parent
    stored = store_model(ctx.settings, card, card_path, evaluation_dir)
    evaluation_sha = ctx.blobs.put(raw)
    _register(ctx, card, stored)
    body = ModelPromoted(
        model_sha256=card.sha256,
        card_sha256=sha256_file(stored),
        evaluation_sha256=evaluation_sha,
        replaces=serving,
        action="promotion",
        name=card.name,
        version=card.version,
    )
    index = _append_promoted(ctx, body, _still_serving(serving, shipped))
    return PromotionAnswer(**body.model_dump(), index=index, checks=checks, stored=str(stored.parent))


def _append_promoted(ctx: ServiceContext, body: ModelPromoted, check: Check) -> int:
    return ctx.append([NewEntry("model.promoted", MODEL_LINEAGE_ITEM, body.model_dump())], check=check)[0].index


def rollback(ctx: ServiceContext) -> PromotedAnswer:
    """Serve again the model the serving one replaced when it was promoted (``model.promoted`` with
    ``action: rollback``)."""
    shipped = shipped_sha256(ctx.settings)
    with read_tx(ctx.engine) as conn:
        rows = lineage_rows(conn)
    serving = serving_from(rows, shipped)
    promotions = [r for r in rows if r.type == "model.promoted" and r.action == "promotion"]
    came = [r for r in promotions if r.model_sha256 == serving]
    if not came or came[-1].replaces is None:
        raise PromotionRefused(f"nothing to roll back to: {serving[:16]}... was never promoted over another model")
    target = came[-1].replaces
    card_path = card_path_of(ctx.settings, target)
    card = ModelCard.load(card_path)
    card.verify_files(card_path)
    earlier = [r for r in promotions if r.model_sha256 == target]
    _register(ctx, card, card_path)
    body = ModelPromoted(
        model_sha256=target,
        card_sha256=sha256_file(card_path),
        evaluation_sha256=earlier[-1].evaluation_sha256 if earlier else None,
        replaces=serving,
        action="rollback",
        name=card.name,
        version=card.version,
    )
    index = _append_promoted(ctx, body, _still_serving(serving, shipped))
    return PromotedAnswer(**body.model_dump(), index=index)


def start_shadow(ctx: ServiceContext, candidate: Path, *, evaluation: Path | None = None) -> ShadowedAnswer:
    """Score live assessments with a candidate in the background from now on (``model.shadowed``)."""
    card, card_path = load_candidate(candidate)
    if card.sha256 == serving_sha256(ctx):
        raise PromotionRefused("the serving model cannot shadow itself")
    evaluation_dir = None if evaluation is None else (evaluation if evaluation.is_dir() else evaluation.parent)
    stored = store_model(ctx.settings, card, card_path, evaluation_dir)
    evaluation_sha = None if evaluation is None else ctx.blobs.put(_evaluation_report(evaluation)[1])
    return _shadowed(ctx, card, stored, evaluation_sha, active=True)


def stop_shadow(ctx: ServiceContext, sha256: str) -> ShadowedAnswer:
    """Stop scoring live assessments with the shadow model ``sha256``."""
    with read_tx(ctx.engine) as conn:
        rows = lineage_rows(conn)
    if sha256 not in shadows_from(rows, serving_from(rows, shipped_sha256(ctx.settings))):
        raise NotFound(f"model {sha256[:16]}... is not a shadow model", sha256=sha256)
    card_path = card_path_of(ctx.settings, sha256)
    return _shadowed(ctx, ModelCard.load(card_path), card_path, None, active=False)


def _shadowed(
    ctx: ServiceContext, card: ModelCard, card_path: Path, evaluation_sha: str | None, *, active: bool
) -> ShadowedAnswer:
    _register(ctx, card, card_path)
    body = ModelShadowed(
        model_sha256=card.sha256,
        card_sha256=sha256_file(card_path),
        evaluation_sha256=evaluation_sha,
        active=active,
        name=card.name,
        version=card.version,
    )
    receipt = ctx.append([NewEntry("model.shadowed", MODEL_LINEAGE_ITEM, body.model_dump())])[0]
    return ShadowedAnswer(**body.model_dump(), index=receipt.index)


@dataclass(frozen=True)
class ModelState:
    """Where a model stands in the lineage: what :func:`models_with_lineage` adds to its registration."""

    status: ModelStatus
    lineage: list[ModelLineageEntry]
    evaluation: dict[str, Any] | None
    """Its latest evaluation summary (free-form, as :attr:`LineageRow.evaluation_summary`)."""


def statuses(ctx: ServiceContext) -> dict[str, ModelState]:
    """Per model the lineage names: its status (serving, shadow, retired or registered), the lineage
    entries that name it and its latest evaluation summary."""
    with read_tx(ctx.engine) as conn:
        rows = lineage_rows(conn)
    serving = serving_from(rows, shipped_sha256(ctx.settings))
    shadows = set(shadows_from(rows, serving))
    served = {r.model_sha256 for r in rows if r.type == "model.promoted"} | {
        r.replaces for r in rows if r.type == "model.promoted" and r.replaces
    }
    out: dict[str, ModelState] = {}
    for sha in {serving, *shadows, *served, *(r.model_sha256 for r in rows)}:
        status: ModelStatus = (
            "serving"
            if sha == serving
            else "shadow"
            if sha in shadows
            else "retired"
            if sha in served
            else "registered"
        )
        mine = [r for r in rows if r.model_sha256 == sha or r.replaces == sha]
        summaries = [r.evaluation_summary for r in rows if r.model_sha256 == sha and r.evaluation_summary]
        out[sha] = ModelState(
            status=status,
            lineage=[_lineage_entry(r) for r in mine],
            evaluation=summaries[-1] if summaries else None,
        )
    return out


def _lineage_entry(r: LineageRow) -> ModelLineageEntry:
    if r.type == "model.promoted":
        assert r.action is not None  # the entry's schema requires it
        action: Literal["promotion", "rollback", "start", "stop"] = r.action
    else:
        action = "start" if r.active else "stop"
    return ModelLineageEntry(
        index=r.index,
        type=r.type,
        action=action,
        model_sha256=r.model_sha256,
        replaces=r.replaces,
        evaluation_sha256=r.evaluation_sha256,
        recorded_at=r.recorded_at,
    )


def models_with_lineage(ctx: ServiceContext) -> list[Model]:
    """``GET /v1/models``: every registered model with its status, lineage and evaluation summary."""
    states = statuses(ctx)
    serving = serving_sha256(ctx)
    out = []
    for m in list_models(ctx):
        state = states.get(m.sha256) or ModelState(
            status="serving" if m.sha256 == serving else "registered", lineage=[], evaluation=None
        )
        out.append(
            m.model_copy(update={"status": state.status, "lineage": state.lineage, "evaluation": state.evaluation})
        )
    return out
