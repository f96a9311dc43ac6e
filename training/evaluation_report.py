"""The champion-vs-candidate evaluation as people and the API read it: the summary ``GET
/v1/models`` shows, report.md and the plot. Kept apart from :mod:`training.lifecycle`, which
computes the numbers; this only lays them out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.table_format import cell


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """What ``GET /v1/models`` shows of an evaluation."""
    out: dict[str, Any] = {
        "against": report["champion"]["sha256"],
        "eligible": report["promotion"]["eligible"],
    }
    for part, both in report["parts"].items():
        c = both["candidate"].get("overall") or {}
        ch = both["champion"].get("overall") or {}
        out[part] = {
            "n": c.get("n", 0),
            "candidate": {k: c.get(k) for k in ("false_pass_rate", "false_pass_ci95", "coverage", "auroc")},
            "champion": {k: ch.get(k) for k in ("false_pass_rate", "false_pass_ci95", "coverage", "auroc")},
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    ch, ca = report["champion"], report["candidate"]
    sp = report["split"]
    L = [
        f"# Evaluation: candidate {ca['name']} {ca['version']} vs champion {ch['name']} {ch['version']}",
        "",
        f"Candidate `{ca['sha256']}`, champion (serving) `{ch['sha256']}`.",
        "",
        f"Frozen split: {sp['development_photos']} development photos scored out of fold (the same item-grouped "
        f"folds for both models) and {sp['held_back_items']} lab-certified items held back (never trained on; "
        f"{(sp.get('rules') or {}).get('held_back_rule', '')}). Development part per photo, nested per-line "
        "operating points; held-back part per item, as served. 95% intervals resample item groups.",
        "",
        f"**Promotion: {'eligible' if report['promotion']['eligible'] else 'refused'}**",
        "",
        "| part | check | ok | detail |",
        "|---|---|---|---|",
    ]
    L += [
        f"| {c['part']} | {c['check']} | {'yes' if c['ok'] else 'NO'} | {c['detail']} |"
        for c in report["promotion"]["checks"]
    ]
    for part, both in report["parts"].items():
        L += [
            "",
            f"## {part}",
            "",
            "| group | model | n | false-pass [95% CI] | false-reject | coverage [95% CI] | AUROC [95% CI] |",
            "|---|---|---|---|---|---|---|",
        ]
        for level in ("overall", "per_category", "per_source"):
            names = ["all"] if level == "overall" else sorted(both["candidate"].get(level) or {})
            for name in names:
                for role in ("champion", "candidate"):
                    b = both[role].get(level) if level == "overall" else (both[role].get(level) or {}).get(name)
                    if not b or not b.get("n"):
                        continue
                    fp = f"{cell(b.get('false_pass_rate'))} {cell(b.get('false_pass_ci95'))}"
                    cov = f"{cell(b.get('coverage'))} {cell(b.get('coverage_ci95'))}"
                    auc = f"{cell(b.get('auroc'))} {cell(b.get('auroc_ci95'))}"
                    L.append(
                        f"| {name} | {role} | {b['n']} | {fp} | {cell(b.get('false_reject_rate'))} | {cov} | {auc} |"
                    )
    L += ["", "Plots: false_pass_coverage.png.", ""]
    return "\n".join(L)


def plots(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [p for p, both in report["parts"].items() if (both["candidate"].get("overall") or {}).get("n")]
    fig, axes = plt.subplots(len(parts) or 1, 2, figsize=(9, 3 * max(1, len(parts))), squeeze=False)
    for row, part in enumerate(parts):
        both = report["parts"][part]
        groups = ["all", *sorted(both["candidate"].get("per_category") or {})]
        for col, metric in enumerate(("false_pass_rate", "coverage")):
            ax = axes[row][col]
            for j, role in enumerate(("champion", "candidate")):
                vals = []
                for g in groups:
                    b = both[role]["overall"] if g == "all" else (both[role].get("per_category") or {}).get(g, {})
                    vals.append(b.get(metric) or 0.0)
                ax.bar(np.arange(len(groups)) + 0.4 * j, vals, width=0.4, label=role)
            ax.set_xticks(np.arange(len(groups)) + 0.2, groups)
            ax.set_title(f"{part}: {metric.replace('_', ' ')}")
            if metric == "false_pass_rate":
                ax.axhline(0.01, color="k", lw=0.8, ls=":")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "false_pass_coverage.png", dpi=70)
    plt.close(fig)
