"""The evaluation's layout (``model evaluate``'s summary, report.md and plot) from a report of the
shape :func:`training.lifecycle.evaluate_candidate` builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from training.evaluation_report import markdown, plots, summary


def _block(n: int, fp: float, cov: float, auroc: float | None) -> dict[str, Any]:
    return {
        "n": n,
        "false_pass_rate": fp,
        "false_pass_ci95": [0.0, fp + 0.01],
        "false_reject_rate": 0.05,
        "coverage": cov,
        "coverage_ci95": [cov - 0.05, cov + 0.05],
        "auroc": auroc,
        "auroc_ci95": None if auroc is None else [auroc - 0.04, auroc + 0.03],
    }


def _report() -> dict[str, Any]:
    def model(fp: float, cov: float) -> dict[str, Any]:
        return {
            "overall": _block(120, fp, cov, 0.83),
            "per_category": {"sneaker": _block(100, fp, cov, 0.84), "bag": _block(20, 0.0, cov / 2, None)},
            "per_source": {"zhengwu123-aj1": _block(60, fp, cov, 0.87)},
        }

    return {
        "champion": {"sha256": "c" * 64, "name": "authenticator", "version": "1"},
        "candidate": {"sha256": "d" * 64, "name": "authenticator", "version": "2"},
        "split": {"development_photos": 120, "held_back_items": 0, "rules": {"held_back_rule": "1 in 5 items"}},
        "parts": {
            "development_cv": {"champion": model(0.008, 0.13), "candidate": model(0.02, 0.20)},
            "certified_held_back": {"champion": {"overall": {"n": 0}}, "candidate": {"overall": {"n": 0}}},
        },
        "promotion": {
            "eligible": False,
            "checks": [
                {"part": "development_cv", "check": "false-pass <= 1% (sneaker)", "ok": False, "detail": "0.020"},
                {"part": "development_cv", "check": "coverage not lower", "ok": True, "detail": "0.20 >= 0.13"},
            ],
        },
    }


def test_summary_markdown_and_plot(tmp_path: Path) -> None:
    report = _report()
    s = summary(report)
    assert s["against"] == "c" * 64 and s["eligible"] is False
    assert s["development_cv"]["n"] == 120
    assert s["development_cv"]["candidate"]["false_pass_rate"] == 0.02
    assert s["development_cv"]["champion"]["coverage"] == 0.13
    assert s["certified_held_back"]["n"] == 0

    md = markdown(report)
    assert "**Promotion: refused**" in md
    assert "| development_cv | false-pass <= 1% (sneaker) | NO | 0.020 |" in md
    assert "| sneaker | candidate | 100 | 0.020 [0.000, 0.030] |" in md
    assert "| bag | champion | 20 | 0.000 [0.000, 0.010] | 0.050 | 0.065 [0.015, 0.115] | – – |" in md  # no AUROC
    assert "## certified_held_back" in md  # a part with no items gets its heading and no rows
    assert "| all | champion | 120 | 0.008" in md

    plots(report, tmp_path)
    png = cv2.imread(str(tmp_path / "false_pass_coverage.png"))
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 300
