"""Which operating point a verdict uses, and whether the photos contradict the declared line.

Pure (numpy, the card); the assessor calls :func:`operating_point` once per request with the line
the item was registered as, and :func:`contradiction` with the scored photos' category and
embeddings. The rules (docs/vision.md, "Validated product lines"):

- a card from before product lines (no ``product_lines`` section): its global pair, for every item;
- no declared line (the CLI without ``--category/--brand/--model``, a preview without an item): the
  card's global pair, which holds the false-pass bound on every development source (the fallback);
- a declared line the card has a validated operating point for: that line's temperature and
  thresholds;
- any other declared line: ``inconclusive`` + ``product_line_not_validated``;
- photos that show another category than declared, or whose nearest reference photos belong
  overwhelmingly to another line: ``inconclusive`` + ``product_line_contradicted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from authenticator.vision.card import LineOperatingPoint, ModelCard, Thresholds
from authenticator.vision.category import bank_similarities
from authenticator.vision.product_lines import DeclaredLine, category_of


class ProductLineUse(BaseModel):
    """What an assessment says about the product line it was judged as."""

    declared: dict[str, str] | None
    """The category, brand and model the item was registered as (None: not declared)."""
    line: str | None
    """The key of the card's line the declaration names (None: no line of the card)."""
    validated: bool
    operating_point: str
    """``line`` (the line's own), ``global`` (the card's global pair) or ``none`` (no verdict)."""


@dataclass(frozen=True)
class OperatingPoint:
    temperature: float
    thresholds: Thresholds
    use: ProductLineUse
    line: LineOperatingPoint | None = None
    refusal: str | None = None  # a reason code: no verdict with this declaration
    detail: str | None = None


def operating_point(card: ModelCard, declared: DeclaredLine | None) -> OperatingPoint:
    """The temperature and thresholds a verdict for an item registered as ``declared`` uses."""
    decl = (
        None if declared is None else {"category": declared.category, "brand": declared.brand, "model": declared.model}
    )
    section = card.product_lines
    if section is None or declared is None:
        use = ProductLineUse(declared=decl, line=None, validated=False, operating_point="global")
        return OperatingPoint(card.temperature, card.thresholds, use)
    op = section.find(declared)
    if op is None or not op.validated or op.thresholds is None or op.temperature is None:
        use = ProductLineUse(
            declared=decl, line=None if op is None else op.key, validated=False, operating_point="none"
        )
        if op is None:
            lines = ", ".join(o.line.label for o in section.validated()) or "none"
            detail = f"{declared.describe()} is not a validated line; validated: {lines}"
        else:
            detail = f"{op.line.label}: {op.why_not_validated or 'no operating point'}"
        return OperatingPoint(
            card.temperature, card.thresholds, use, line=op, refusal="product_line_not_validated", detail=detail
        )
    use = ProductLineUse(declared=decl, line=op.key, validated=True, operating_point="line")
    return OperatingPoint(op.temperature, op.thresholds, use, line=op)


def load_bank_lines(path: Path) -> np.ndarray | None:
    """The bank's product-line key per row ("" for none), or None for a bank without them."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z["line"]).astype(str) if "line" in z.files else None
    except (OSError, ValueError):
        return None


def contradiction(
    card: ModelCard,
    point: OperatingPoint,
    category: str | None,
    embeddings: np.ndarray | None,
    bank: np.ndarray | None,
    bank_lines: np.ndarray | None,
    *,
    sims: np.ndarray | None = None,
) -> str | None:
    """Why the photos contradict the declared line (a sentence), or None.

    ``category``: what most scored photos show; ``embeddings``: the scored photos' (N, D) embeddings;
    ``bank``/``bank_lines``: the reference bank's L2-normalised embeddings and line keys; ``sims``:
    the embeddings' :func:`~authenticator.vision.category.bank_similarities` when already computed."""
    declared = point.use.declared
    if card.product_lines is None or declared is None:
        return None
    wanted = category_of(declared["category"])
    if category is not None and wanted is not None and category != wanted:
        return f"the photos show a {category}; the item was registered as a {wanted}"
    rule = card.product_lines.contradiction
    key = point.use.line
    if key is None or embeddings is None or bank is None or bank_lines is None or not len(embeddings):
        return None
    k, share = int(rule.get("k", 5)), float(rule.get("min_share_other", 1.01))
    other = other_line(embeddings, bank, bank_lines, key, k, share, sims=sims)
    if other is None:
        return None
    names = {op.key: op.line.label for op in card.product_lines.lines}
    return f"the photos look like {names.get(other, other)}, not {names.get(key, key)}"


def other_line(
    emb: np.ndarray,
    bank: np.ndarray,
    bank_lines: np.ndarray,
    declared: str,
    k: int,
    min_share: float,
    *,
    sims: np.ndarray | None = None,
) -> str | None:
    """The one other line that on average at least ``min_share`` of the photos' ``k`` nearest bank
    photos (cosine) belong to, else None (training's ``product_lines.contradicted``, same rule).
    ``sims``: the photos' :func:`~authenticator.vision.category.bank_similarities`, computed here
    when not given (the same einsum the category check uses: no BLAS threads)."""
    if sims is None:
        sims = bank_similarities(emb, bank)  # (N, M)
    kk = min(k, sims.shape[1])
    top = np.argpartition(-sims, kth=kk - 1, axis=1)[:, :kk]
    shares: dict[str, float] = {}
    for row in top:
        labs, counts = np.unique(bank_lines[row], return_counts=True)
        for lab, c in zip(labs.tolist(), counts.tolist(), strict=True):
            if lab and lab != declared:
                shares[lab] = shares.get(lab, 0.0) + c / kk / len(top)
    best = max(shares.items(), key=lambda kv: kv[1], default=None)
    return best[0] if best is not None and best[1] >= min_share else None
