"""Validated product lines: one operating point per line (category + brand + model line).

One global pair of thresholds, fitted so that no source lets more than 1% of counterfeits through,
is set by the worst source. Each line with enough development data gets its own temperature and
thresholds instead, fitted on the held-out (out-of-fold) scores of its own photos:

- a line is **validated** when its training data holds at least ``min_items`` item groups of each
  label (real photos, not synthetic). 100 is the default: 1% of 100 counterfeit items is one item,
  the smallest false-pass bound that can be both fitted and seen; with fewer, "at most 1%" means
  "none", and zero false passes out of n has a 95% upper bound near 3/n (above 3%); 5 folds then
  hold about 20 items per label each;
- its temperature is fitted on the line's held-out logits; its thresholds on the line's held-out
  photos that the unfamiliar-photo gate lets through (the runtime sets the others aside), so that in
  every source of the line at most ``max_false_pass`` of the counterfeits pass and at most
  ``max_false_reject`` of the authentics are rejected;
- its figures are nested (cross-fitted): the photos of fold f are decided with the temperature and
  thresholds fitted on the line's other folds, gate applied, 95% intervals from resampling item
  groups.

The reference bank gets each photo's line, so the runtime can see that photos contradict the line an
item was registered as (:func:`contradiction_check` measures the k-NN vote it uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from authenticator.vision.card import LineOperatingPoint, ProductLines, Thresholds
from authenticator.vision.decision import decide_codes
from authenticator.vision.product_lines import KNOWN_LINES, DeclaredLine, ProductLine, match_line
from training.cv import Arrays
from training.data import Sample
from training.evaluation import block
from training.heads import l2n
from training.metrics import fit_temperature, fit_thresholds, sigmoid
from training.table_format import cell

MIN_ITEMS_PER_CLASS = 100

#: The model line of sources whose manifest rows name only the brand (``../shared/data/real/README``:
#: zhengwu123-aj1 is "sneaker / Nike Air Jordan 1", alauzon13-birkin "bag / Hermès Birkin").
SOURCE_MODEL_LINE: dict[str, str] = {"zhengwu123-aj1": "Air Jordan 1", "alauzon13-birkin": "Birkin"}

FALLBACK = (
    "The global temperature and thresholds (fitted so that every development source holds the false-pass "
    "bound) serve only assessments that declare no product line: the CLI without --category/--brand/--model "
    "and previews without a registered item. An item registered as a line without a validated operating "
    "point gets inconclusive (product_line_not_validated)."
)


def sample_line(s: Sample, lines: Sequence[ProductLine] = KNOWN_LINES) -> ProductLine | None:
    """The line a development or certified photo belongs to, from its manifest row."""
    model = s.extra.get("model") or SOURCE_MODEL_LINE.get(s.source, "")
    return match_line(DeclaredLine(s.category, s.brand, model), lines)


def line_keys(samples: Sequence[Sample]) -> np.ndarray:
    """Each photo's line key ("" when it names no known line)."""
    out = []
    for s in samples:
        line = sample_line(s)
        out.append("" if line is None else line.key)
    return np.array(out, dtype=object)


def nested_decisions(
    z: np.ndarray,
    a: Arrays,
    m: np.ndarray,
    familiar: np.ndarray,
    max_false_pass: float,
    max_false_reject: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated P and gated decisions for the line's photos (mask ``m``), each fold decided
    with the temperature and thresholds fitted on the line's other folds."""
    p = np.full(len(z), np.nan)
    d = np.full(len(z), -1, dtype=np.int64)
    for f in np.unique(a.fold[m]):
        tr, te = m & (a.fold != f), m & (a.fold == f)
        if len(np.unique(a.y[tr])) < 2:
            continue
        t = fit_temperature(a.y[tr], z[tr])
        fit = tr & familiar
        hi, lo = fit_thresholds(a.y[fit], sigmoid(z[fit] / t), a.source[fit], max_false_pass, max_false_reject)
        p[te] = sigmoid(z[te] / t)
        d[te] = np.where(familiar[te], decide_codes(p[te], hi, lo), -1)
    return p, d


def _figures(
    z: np.ndarray, a: Arrays, m: np.ndarray, p: np.ndarray, d: np.ndarray, familiar: np.ndarray, reps: int
) -> dict[str, Any]:
    out = block(a.y[m], z[m], np.nan_to_num(p[m], nan=0.5), d[m], a.groups[m], reps)
    pos = m & (a.y == 1)
    if pos.any() and reps:
        from training.metrics import bootstrap_ci

        y_m, d_m = a.y[m], d[m]
        lo, hi = bootstrap_ci(
            lambda i: float((d_m[i][y_m[i] == 1] == 0).mean()) if (y_m[i] == 1).any() else np.nan,
            int(m.sum()),
            a.groups[m],
            reps=reps,
        )
        out["false_reject_ci95"] = [_r(lo), _r(hi)]
    out["flagged_unfamiliar"] = _r(float((~familiar[m]).mean()))
    out["items"] = _item_level(z[m], a.y[m], d[m], a.groups[m])
    return out


def _item_level(z: np.ndarray, y: np.ndarray, d: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Per item group: decided when most of its photos were decided the same way (a rough view of
    an assessment of several photos; the operating point itself is per photo)."""
    _, inv = np.unique(groups, return_inverse=True)
    n = inv.max() + 1
    yi = np.bincount(inv, weights=y, minlength=n) / np.bincount(inv, minlength=n) > 0.5
    auth = np.bincount(inv, weights=(d == 1), minlength=n)
    fake = np.bincount(inv, weights=(d == 0), minlength=n)
    total = np.bincount(inv, minlength=n)
    di = np.where(auth > total / 2, 1, np.where(fake > total / 2, 0, -1))
    neg, pos = ~yi, yi
    return {
        "n": int(n),
        "false_pass_rate": _r(float((di[neg] == 1).mean())) if neg.any() else None,
        "false_reject_rate": _r(float((di[pos] == 0).mean())) if pos.any() else None,
        "coverage": _r(float((di >= 0).mean())),
    }


def _r(x: float | None, n: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), n)


def fit_product_lines(
    z: np.ndarray,
    a: Arrays,
    samples: Sequence[Sample],
    heldout_distance: np.ndarray,
    distance_threshold: float,
    emb: np.ndarray,
    *,
    synthetic: bool,
    max_false_pass: float,
    max_false_reject: float,
    reps: int,
    min_items: int = MIN_ITEMS_PER_CLASS,
    global_pair: tuple[float, float, float] | None = None,
) -> tuple[ProductLines, np.ndarray]:
    """The card's ``product_lines`` section and each photo's line key (for the bank).

    ``z``: out-of-fold logits of the shipped head; ``heldout_distance``: each photo's k-NN distance
    to the other folds' bank (the unfamiliar-photo gate's measure); ``global_pair``: (temperature,
    authentic_above, counterfeit_below) of the card, to report what the global pair did on each line.
    """
    keys = line_keys(samples)
    familiar = heldout_distance <= distance_threshold
    catalogue = {line.key: line for line in KNOWN_LINES}
    ops: list[LineOperatingPoint] = []
    for key in sorted({k for k in keys if k}):
        m = keys == key
        items = {lab: len(np.unique(a.groups[m & (a.y == y)])) for lab, y in (("authentic", 1), ("counterfeit", 0))}
        photos = {lab: int((m & (a.y == y)).sum()) for lab, y in (("authentic", 1), ("counterfeit", 0))}
        short = [f"{n} {lab} items" for lab, n in items.items() if n < min_items]
        why = None
        if synthetic:
            why = "synthetic photos only"
        elif short:
            why = f"{' and '.join(short)} in the training data; a validated line needs {min_items} of each"
        op = LineOperatingPoint(
            line=catalogue[key],
            key=key,
            validated=why is None,
            why_not_validated=why,
            items=items,
            photos=photos,
            sources=sorted(np.unique(a.source[m]).tolist()),
        )
        if len(np.unique(a.y[m])) == 2:
            p, d = nested_decisions(z, a, m, familiar, max_false_pass, max_false_reject)
            fig = _figures(z, a, m, p, d, familiar, reps)
            fig["per_source"] = {str(s): _figures(z, a, m & (a.source == s), p, d, familiar, 0) for s in op.sources}
            if global_pair is not None:
                t, hi, lo = global_pair
                dg = np.where(familiar, decide_codes(sigmoid(z / t), hi, lo), -1)
                neg, pos = m & (a.y == 0), m & (a.y == 1)
                fig["with_global_pair"] = {
                    "false_pass_rate": _r(float((dg[neg] == 1).mean())) if neg.any() else None,
                    "false_reject_rate": _r(float((dg[pos] == 0).mean())) if pos.any() else None,
                    "coverage": _r(float((dg[m] >= 0).mean())),
                    "note": "the global pair's own held-out thresholds were fitted on all sources; shown for scale",
                }
            op.figures = fig
        if op.validated:
            t = round(fit_temperature(a.y[m], z[m]), 6)  # rounded as the card stores it, then the thresholds
            fit = m & familiar
            hi, lo = fit_thresholds(a.y[fit], sigmoid(z[fit] / t), a.source[fit], max_false_pass, max_false_reject)
            op.temperature = t
            op.thresholds = Thresholds(authentic_above=hi, counterfeit_below=lo)
        ops.append(op)
    section = ProductLines(
        min_items_per_class=min_items,
        lines=ops,
        fallback=FALLBACK,
        contradiction=contradiction_check(emb, a, keys, [op.key for op in ops if op.validated]),
    )
    return section, keys


CONTRADICTION_K = 5
CONTRADICTION_SHARE = 0.8


def line_vote(
    emb: np.ndarray, bank: np.ndarray, bank_lines: np.ndarray, k: int = CONTRADICTION_K
) -> list[dict[str, float]]:
    """Per photo: share of each line among its ``k`` nearest bank photos (cosine)."""
    q, b = l2n(emb.astype(np.float32)), l2n(bank.astype(np.float32))
    sims = q @ b.T
    top = np.argpartition(-sims, kth=min(k, sims.shape[1] - 1), axis=1)[:, :k]
    out = []
    for row in top:
        labs, counts = np.unique(bank_lines[row], return_counts=True)
        out.append({str(lab): float(c) / k for lab, c in zip(labs, counts, strict=True)})
    return out


def contradicted(votes: Sequence[dict[str, float]], declared: str, min_share: float) -> str | None:
    """The other line the photos show, when on average at least ``min_share`` of their neighbours
    belong to that one line (and so at most 1 - ``min_share`` to the declared one); else None."""
    if not votes:
        return None
    lines = {lab for v in votes for lab in v if lab and lab != declared}
    for lab in sorted(lines):
        share = float(np.mean([v.get(lab, 0.0) for v in votes]))
        if share >= min_share:
            return lab
    return None


def contradiction_check(emb: np.ndarray, a: Arrays, keys: np.ndarray, validated: list[str]) -> dict[str, Any]:
    """How the k-NN line vote behaves on held-out photos of the validated lines (bank = other
    folds): how often a photo of a line is said to contradict it (false contradiction), and how
    often a photo declared as another validated line of its category is caught."""
    out: dict[str, Any] = {
        "method": "mean share of the k nearest reference-bank photos (cosine) that belong to one other line",
        "k": CONTRADICTION_K,
        "min_share_other": CONTRADICTION_SHARE,
        "per_line": {},
    }
    votes: list[dict[str, float]] = [{} for _ in range(len(keys))]
    for f in np.unique(a.fold):
        te, tr = np.flatnonzero(a.fold == f), np.flatnonzero(a.fold != f)
        for i, v in zip(te, line_vote(emb[te], emb[tr], keys[tr]), strict=True):
            votes[i] = v
    for key in validated:
        m = np.flatnonzero(keys == key)
        false = np.mean([contradicted([votes[i]], key, CONTRADICTION_SHARE) is not None for i in m])
        others = [o for o in validated if o != key and o.split("/")[0] == key.split("/")[0]]
        caught = {
            o: _r(float(np.mean([contradicted([votes[i]], o, CONTRADICTION_SHARE) == key for i in m]))) for o in others
        }
        out["per_line"][key] = {
            "n_photos": len(m),
            "false_contradiction_rate": _r(float(false)),
            "caught_when_declared_as": caught,
        }
    return out


SECTION_TITLE = "## Validated product lines"


def markdown_section(section: ProductLines) -> list[str]:
    """The report's section on product lines: coverage, false-pass and false-reject per line."""
    L = [
        "",
        SECTION_TITLE,
        "",
        f"A verdict uses the operating point of the line the item was registered as (category + brand + model "
        f"line). A line is validated with at least {section.min_items_per_class} item groups of each label in the "
        "training data; its temperature and thresholds are fitted on its own held-out photos (those the "
        "unfamiliar-photo gate lets through), with at most 1% of counterfeits passed and 5% of authentics "
        "rejected in every source of the line. Figures are nested (each fold decided with the operating point "
        "fitted on the line's other folds), per photo, gate applied; 95% intervals resample item groups. "
        + section.fallback,
        "",
        "| line | validated | items (a/c) | temperature | authentic above | counterfeit below | false-pass [95% CI] "
        "| false-reject [95% CI] | coverage [95% CI] | authentics called authentic | AUROC | with the global pair: "
        "false-pass / false-reject / coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for op in section.lines:
        f = op.figures
        g = f.get("with_global_pair") or {}
        t = op.thresholds
        n_auth = f.get("n_authentic") or 0
        called = f"{f.get('authentic_called_authentic', 0)}/{n_auth}" if n_auth else "–"
        L.append(
            f"| {op.line.label} | {'yes' if op.validated else 'no: ' + (op.why_not_validated or '')} "
            f"| {op.items.get('authentic', 0)}/{op.items.get('counterfeit', 0)} | {cell(op.temperature)} "
            f"| {cell(t.authentic_above if t else None)} | {cell(t.counterfeit_below if t else None)} "
            f"| {cell(f.get('false_pass_rate'))} {cell(f.get('false_pass_ci95'))} "
            f"| {cell(f.get('false_reject_rate'))} {cell(f.get('false_reject_ci95'))} "
            f"| {cell(f.get('coverage'))} {cell(f.get('coverage_ci95'))} | {called} | {cell(f.get('auroc'))} "
            f"| {cell(g.get('false_pass_rate'))} / {cell(g.get('false_reject_rate'))} / {cell(g.get('coverage'))} |"
        )
    L += ["", "Per source within each line (same nested decisions):", ""]
    L += ["| line | source | false-pass | false-reject | coverage | AUROC |", "|---|---|---|---|---|---|"]
    for op in section.lines:
        for src, v in (op.figures.get("per_source") or {}).items():
            L.append(
                f"| {op.line.label} | {src} | {cell(v.get('false_pass_rate'))} | {cell(v.get('false_reject_rate'))} "
                f"| {cell(v.get('coverage'))} | {cell(v.get('auroc'))} |"
            )
    c = section.contradiction
    if c.get("per_line"):
        L += [
            "",
            f"Photos that contradict the declared line ({c['method']}, k={c['k']}, at least "
            f"{c['min_share_other']:.0%}): the item is inconclusive (product_line_contradicted). Held out, per photo:",
            "",
            "| line | photos | false contradiction | caught when declared as |",
            "|---|---|---|---|",
        ]
        for key, v in c["per_line"].items():
            caught = ", ".join(f"{o}: {cell(r)}" for o, r in v["caught_when_declared_as"].items()) or "–"
            L.append(f"| {key} | {v['n_photos']} | {cell(v['false_contradiction_rate'])} | {caught} |")
    return L


def replace_section(markdown: str, section: list[str]) -> str:
    """``markdown`` with its product-line section (if any) replaced by ``section``, placed before
    the plots line."""
    lines = markdown.split("\n")
    if SECTION_TITLE in lines:
        start = lines.index(SECTION_TITLE)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "Plots:"))), len(lines))
        del lines[start:end]
    at = next((i for i, line in enumerate(lines) if line.startswith("Plots:")), len(lines))
    body = section[1:] if section and section[0] == "" else section
    return "\n".join([*lines[:at], *body, "", *lines[at:]])
