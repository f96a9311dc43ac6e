"""What is in the photo? A category (bag, watch, sneaker) or none.

Two signals from the same forward pass: the ImageNet head (knows watches, shoes and handbags in
general, but calls many Birkin and sneaker close-ups something else) and the cosine distance of
the embedding to the training photos' reference bank (knows close-ups, knows nothing of other
categories). A photo is accepted when either signal is confident; otherwise it is an
``unsupported_object``. Pure numpy; the bank is loaded once by the assessor.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from authenticator.errors import ModelError

#: The kinds of goods an item is registered as (and a model card may validate).
Category = Literal["bag", "watch", "sneaker"]
CATEGORIES: tuple[Category, ...] = get_args(Category)


@dataclass(frozen=True)
class CategoryConfig:
    """The card's ``ood`` section (plus settings overrides) in typed form."""

    imagenet_classes: dict[str, list[int]] = field(default_factory=dict)
    imagenet_min_prob: float = 0.02  # the shipped card's value; docs/vision-ood.md
    #: the category's classes together must also outweigh the most probable other class
    imagenet_must_beat_other: bool = True
    k: int = 5
    #: "what is it?": a photo this close to the bank takes the bank's category
    distance_threshold: float | None = None
    #: the unfamiliar-photo safety gate (service): farther photos are left out of the verdict
    unfamiliar_threshold: float | None = None
    #: an ImageNet category this strong (and outweighing every other class) wins over the bank's vote
    imagenet_decisive_prob: float | None = None

    @classmethod
    def from_card(
        cls,
        ood: dict[str, Any],
        *,
        distance_threshold: float | None = None,
        category_distance_threshold: float | None = None,
        imagenet_min_prob: float | None = None,
    ) -> CategoryConfig:
        """``distance_threshold`` / ``category_distance_threshold`` override the card's gate and
        category thresholds; a card without a category threshold uses its gate threshold for both."""
        classes = {str(c): [int(i) for i in ids] for c, ids in (ood.get("imagenet_category_classes") or {}).items()}
        gate = distance_threshold if distance_threshold is not None else ood.get("distance_threshold")
        cat = category_distance_threshold
        if cat is None:
            cat = ood.get("category_distance_threshold", ood.get("distance_threshold"))
        min_prob = imagenet_min_prob if imagenet_min_prob is not None else ood.get("imagenet_min_prob", 0.02)
        decisive = ood.get("imagenet_decisive_prob")
        return cls(
            imagenet_classes=classes,
            imagenet_min_prob=float(min_prob),
            k=int(ood.get("k", 5)),
            distance_threshold=None if cat is None else float(cat),
            unfamiliar_threshold=None if gate is None else float(gate),
            imagenet_decisive_prob=None if decisive is None else float(decisive),
        )


#: Bank rows of the training photos (the unfamiliar-photo gate measures against these only).
TRAIN_ROLE = "train"
#: Bank rows of recognition-only photos: they say what a category looks like, nothing about authenticity.
RECOGNITION_ROLE = "recognition"


@dataclass(frozen=True)
class ReferenceBank:
    """L2-normalised embeddings of the bank's photos, with their categories; ``gate_rows`` marks the
    training photos' rows (None: every row is one, as in banks without a ``role`` array)."""

    embeddings: np.ndarray  # (M, D) float32, rows of unit length
    categories: np.ndarray  # (M,) str
    gate_rows: np.ndarray | None = None  # (M,) bool

    @classmethod
    def load(cls, path: Path) -> ReferenceBank:
        try:
            with np.load(path, allow_pickle=False) as z:
                emb = np.asarray(z["embeddings"], dtype=np.float32)
                cats = np.asarray(z["category"]).astype(str)
                roles = np.asarray(z["role"]).astype(str) if "role" in z.files else None
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"reference bank {path} cannot be read: {exc}") from exc
        if emb.ndim != 2 or len(emb) != len(cats) or len(emb) == 0 or (roles is not None and len(roles) != len(emb)):
            raise ModelError(f"reference bank {path} has inconsistent arrays")
        gate_rows = None
        if roles is not None and not (roles == TRAIN_ROLE).all():
            gate_rows = roles == TRAIN_ROLE
            if not gate_rows.any():
                raise ModelError(f"reference bank {path} has no training rows")
        return cls(embeddings=_l2n(emb), categories=cats, gate_rows=gate_rows)


@dataclass(frozen=True)
class CategoryResult:
    category: str | None
    imagenet_category: str | None
    imagenet_prob: float  # probability mass of the best category's ImageNet classes
    bank_distance: float | None  # 1 - mean cosine similarity of the k nearest bank photos
    bank_category: str | None
    imagenet_top_other: float = 0.0  # probability of the most probable ImageNet class that is none of ours
    #: the same distance to the bank's training rows only (the unfamiliar-photo gate's measure)
    gate_distance: float | None = None

    @property
    def unfamiliar_distance(self) -> float | None:
        """What the unfamiliar-photo gate compares with its threshold."""
        return self.gate_distance if self.gate_distance is not None else self.bank_distance

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "imagenet_category": self.imagenet_category,
            "imagenet_prob": round(self.imagenet_prob, 4),
            "imagenet_top_other": round(self.imagenet_top_other, 4),
            "bank_distance": None if self.bank_distance is None else round(self.bank_distance, 4),
            "bank_category": self.bank_category,
        }
        if self.gate_distance is not None:
            out["gate_distance"] = round(self.gate_distance, 4)
        return out


def _l2n(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    out: np.ndarray = (x / np.maximum(n, 1e-12)).astype(np.float32)
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def bank_similarities(embeddings: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """(N, M) cosine similarities of N photos' embeddings to the M L2-normalised bank rows.

    einsum, not BLAS: right after onnxruntime ran, OpenBLAS's sleeping threads make this small
    product take ~30 ms instead of ~1.5 ms (measured in bench/vision.py's process), and after it
    they spin-wait on the cores the next photos need. The assessor computes it once per request
    for the category check and the product-line vote."""
    out: np.ndarray = np.einsum("ij,kj->ik", _l2n(embeddings.astype(np.float32)), bank)
    return out


def categorize(
    imagenet_logits: np.ndarray,
    embeddings: np.ndarray,
    cfg: CategoryConfig,
    bank: ReferenceBank | None,
    *,
    sims: np.ndarray | None = None,
) -> list[CategoryResult]:
    """One result per photo (rows of the two arrays); ``sims``: :func:`bank_similarities` of the
    embeddings and the bank when the caller has them."""
    probs = _softmax(imagenet_logits.astype(np.float64))
    names = list(cfg.imagenet_classes)
    ours = sorted({i for ids in cfg.imagenet_classes.values() for i in ids})
    others = probs.copy()
    others[:, ours] = 0.0
    top_other = others.max(axis=1)  # the most probable ImageNet class that is none of ours
    mass = (
        np.stack([probs[:, cfg.imagenet_classes[c]].sum(axis=1) for c in names], axis=1)
        if names
        else np.zeros((len(probs), 0))
    )
    dist: np.ndarray | None = None
    gate_dist: np.ndarray | None = None
    nearest: np.ndarray | None = None
    if bank is not None:
        sims = bank_similarities(embeddings, bank.embeddings) if sims is None else sims
        k = max(1, min(cfg.k, sims.shape[1]))
        nearest = np.argsort(-sims, axis=1)[:, :k]
        dist = 1.0 - np.take_along_axis(sims, nearest, axis=1).mean(axis=1)
        if bank.gate_rows is not None:
            train = sims[:, bank.gate_rows]
            kt = max(1, min(cfg.k, train.shape[1]))
            gate_dist = 1.0 - (-np.sort(-train, axis=1)[:, :kt]).mean(axis=1)
    out: list[CategoryResult] = []
    for i in range(len(probs)):
        inet_cat: str | None = None
        inet_p = 0.0
        if names:
            j = int(mass[i].argmax())
            inet_p = float(mass[i, j])
            # Enough mass, and more than any single other class: a brick wall whose "watch" mass
            # is 0.05 is still mostly "brick" (docs/vision-ood.md).
            beats_other = inet_p >= float(top_other[i]) or not cfg.imagenet_must_beat_other
            inet_cat = names[j] if inet_p >= cfg.imagenet_min_prob and beats_other else None
        bank_cat: str | None = None
        d: float | None = None
        if dist is not None and nearest is not None and bank is not None:
            d = float(dist[i])
            votes = Counter(str(c) for c in bank.categories[nearest[i]])
            best = max(votes.values())
            # ties go to the category of the nearest neighbour among the tied ones
            bank_cat = next(str(bank.categories[n]) for n in nearest[i] if votes[str(bank.categories[n])] == best)
        familiar = d is not None and cfg.distance_threshold is not None and d <= cfg.distance_threshold
        category = bank_cat if familiar else inet_cat
        decisive = cfg.imagenet_decisive_prob
        if inet_cat is not None and decisive is not None and inet_p >= decisive:
            category = inet_cat  # a clear ImageNet answer beats a bank that never saw this staging
        out.append(
            CategoryResult(
                category=category,
                imagenet_category=inet_cat,
                imagenet_prob=inet_p,
                bank_distance=d,
                bank_category=bank_cat,
                imagenet_top_other=float(top_other[i]),
                gate_distance=None if gate_dist is None else float(gate_dist[i]),
            )
        )
    return out
