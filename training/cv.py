"""Item-grouped cross-validation of every approach on cached features, plus the honest
(cross-fitted) operating point: temperature and thresholds for fold f are fitted only on the
held-out scores of the other folds, then applied to fold f."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from authenticator.vision.decision import decide_codes
from training.features import META_NAMES, FeatureSet
from training.heads import (
    LinearHead,
    fit_knn_contrast,
    fit_linear,
    fit_mil,
    fit_mlp,
    fit_patchcore,
    mil_scores,
)
from training.metrics import fit_temperature, fit_thresholds, sigmoid


@dataclass
class CVResult:
    name: str
    logits: np.ndarray  # out-of-fold raw scores (higher = authentic)
    heads: list[LinearHead] = field(default_factory=list)  # linear fold heads (shippable approaches)
    shippable: bool = False


@dataclass
class Arrays:
    y: np.ndarray
    fold: np.ndarray
    groups: np.ndarray
    strata: np.ndarray
    source: np.ndarray
    category: np.ndarray


Fitter = Callable[[FeatureSet, np.ndarray, Arrays, int], tuple[Callable[[np.ndarray], np.ndarray], LinearHead | None]]


def _sub(fs: FeatureSet, idx: np.ndarray) -> FeatureSet:
    return FeatureSet(**{k: v[idx] for k, v in fs.__dict__.items()})


def _linear_on(attr: str) -> Fitter:
    def fit(
        fs: FeatureSet, tr: np.ndarray, a: Arrays, seed: int
    ) -> tuple[Callable[[np.ndarray], np.ndarray], LinearHead | None]:
        x = getattr(fs, attr)
        h = fit_linear(x[tr], a.y[tr], a.groups[tr], a.strata[tr], seed)
        return (lambda idx: h(getattr(fs, attr)[idx])), h

    return fit


def _meta_wh(
    fs: FeatureSet, tr: np.ndarray, a: Arrays, seed: int
) -> tuple[Callable[[np.ndarray], np.ndarray], LinearHead | None]:
    cols = [META_NAMES.index("width"), META_NAMES.index("height")]
    x = np.log(fs.meta[:, cols] + 1)
    # one metadata model per source: the shortcut baseline is "what width/height alone says here"
    heads: dict[str, LinearHead] = {}
    for s in np.unique(a.source[tr]):
        m = tr[a.source[tr] == s]
        if len(np.unique(a.y[m])) == 2:
            heads[s] = fit_linear(x[m], a.y[m], a.groups[m], a.strata[m], seed, c=1.0)

    def score(idx: np.ndarray) -> np.ndarray:
        out = np.zeros(len(idx))
        for j, i in enumerate(idx):
            h = heads.get(a.source[i])
            out[j] = h(x[i : i + 1])[0] if h else 0.0
        return out

    return score, None


_MIL_CACHE: dict[tuple[int, bytes, int], LinearHead] = {}


def _mil(pool: str) -> Fitter:
    def fit(
        fs: FeatureSet, tr: np.ndarray, a: Arrays, seed: int
    ) -> tuple[Callable[[np.ndarray], np.ndarray], LinearHead | None]:
        key = (id(fs), tr.tobytes(), seed)  # both pools share one instance head per fold
        if key not in _MIL_CACHE:
            _MIL_CACHE.clear()
            _MIL_CACHE[key] = fit_mil(fs.grid448[tr].astype(np.float32), a.y[tr], a.groups[tr], a.strata[tr], seed)
        h = _MIL_CACHE[key]
        # mean pooling of linear region scores is itself linear: that head ships in one graph
        return (lambda idx: mil_scores(h, fs.grid448[idx].astype(np.float32), pool)), (h if pool == "mean" else None)

    return fit


def _mlp(
    fs: FeatureSet, tr: np.ndarray, a: Arrays, seed: int
) -> tuple[Callable[[np.ndarray], np.ndarray], LinearHead | None]:
    sc = fit_mlp(fs.emb448[tr], a.y[tr], a.groups[tr], a.strata[tr], seed)
    return (lambda idx: sc(fs.emb448[idx])), None


def _patchcore(
    fs: FeatureSet, tr: np.ndarray, a: Arrays, seed: int
) -> tuple[Callable[[np.ndarray], np.ndarray], LinearHead | None]:
    sc = fit_patchcore(fs.grid448[tr].astype(np.float32), a.y[tr], seed)
    return (lambda idx: sc(fs.grid448[idx].astype(np.float32))), None


def _knn(
    fs: FeatureSet, tr: np.ndarray, a: Arrays, seed: int
) -> tuple[Callable[[np.ndarray], np.ndarray], LinearHead | None]:
    sc = fit_knn_contrast(fs.emb224[tr], a.y[tr])
    return (lambda idx: sc(fs.emb224[idx])), None


def _needs_photos(
    fs: FeatureSet, tr: np.ndarray, a: Arrays, seed: int
) -> tuple[Callable[[np.ndarray], np.ndarray], LinearHead | None]:
    raise ValueError("the finetune approach trains on photos: training.finetune.finetune_cv runs it")


APPROACHES: dict[str, tuple[str, Fitter, bool]] = {
    "global224_lr": (
        "Frozen backbone, 224 px letterbox, pooled embedding + logistic regression",
        _linear_on("emb224"),
        True,
    ),
    "global448_lr": (
        "Frozen backbone, 448 px letterbox (higher-res detail), pooled embedding + LR",
        _linear_on("emb448"),
        True,
    ),
    "mlp448": (
        "Frozen backbone, 448 px embedding + one-hidden-layer MLP (grouped early stopping); not exported",
        _mlp,
        False,
    ),
    "mil448_mean": (
        "4x4 regions of the 448 px map as instances (MIL), region LR, mean of region logits",
        _mil("mean"),
        True,
    ),
    "mil448_min4": ("MIL as above, photo score = mean of its 4 most counterfeit-looking regions", _mil("min4"), False),
    "patchcore448": (
        "PatchCore-style: worst region's nearest-neighbour distance to authentic regions",
        _patchcore,
        False,
    ),
    "knn224": ("Photo kNN (k=5, cosine): distance to counterfeits minus distance to authentics", _knn, False),
    "meta_wh": ("Metadata only: log width & height, one LR per source (shortcut baseline)", _meta_wh, False),
    "finetune": (
        "Backbone fine-tuned (last 2 blocks + head conv, 448 px) with a linear head per fold; CUDA when present",
        _needs_photos,
        False,
    ),
}
"""Every approach the pipeline compares. ``finetune`` trains on photos, not cached features: the
pipeline runs it through :mod:`training.finetune`, never through :func:`run_cv`."""


def run_cv(
    fs: FeatureSet, a: Arrays, names: list[str], seed: int = 0, log: Callable[[str], None] = print
) -> dict[str, CVResult]:
    k = int(a.fold.max()) + 1
    out: dict[str, CVResult] = {}
    for name in names:
        _, fitter, shippable = APPROACHES[name]
        z = np.zeros(len(a.y))
        heads: list[LinearHead] = []
        for f in range(k):
            tr, te = np.flatnonzero(a.fold != f), np.flatnonzero(a.fold == f)
            score, head = fitter(fs, tr, a, seed)
            z[te] = score(te)
            if head is not None:
                heads.append(head)
        out[name] = CVResult(name, z, heads, shippable)
        log(f"cv {name}: done")
    return out


def crossfit_decisions(
    z: np.ndarray, a: Arrays, max_false_pass: float, max_false_reject: float, exclude_sources: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Honest calibrated P and decisions: fold f uses T and thresholds fitted on the other folds."""
    k = int(a.fold.max()) + 1
    p = np.zeros(len(z))
    d = np.zeros(len(z), dtype=np.int64)
    keep = ~np.isin(a.source, exclude_sources)
    for f in range(k):
        tr, te = (a.fold != f) & keep, a.fold == f
        t = fit_temperature(a.y[tr], z[tr])
        p_tr = sigmoid(z[tr] / t)
        hi, lo = fit_thresholds(a.y[tr], p_tr, a.source[tr], max_false_pass, max_false_reject)
        p[te] = sigmoid(z[te] / t)
        d[te] = decide_codes(p[te], hi, lo)
    return p, d
