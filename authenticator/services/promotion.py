"""When a candidate model may replace the serving one (pure; the evaluation report is the input).

The report (``authenticator model evaluate``, written by ``training/lifecycle.py``) measures the
champion and the candidate on one frozen evaluation split, in parts (the development photos' CV
folds, and the held-back slice of lab-certified items), each per category. A candidate is promoted
only when, in every part:

- in every category where it gives verdicts, at most ``max_false_pass`` of the counterfeits pass;
- in every such category where the champion gives verdicts too, its false-pass rate is not higher
  than the champion's (plus ``tolerance``, 0 by default);
- its coverage (share of photos or items decided) is not lower than the champion's.

The same function runs when the report is written (its ``promotion`` section) and again at
``model promote``, so a report edited by hand cannot promote a model its numbers do not support.
"""

from __future__ import annotations

from typing import Any

from authenticator.contracts.models import PromotionCheck

MAX_FALSE_PASS = 0.01


def _rate(block: dict[str, Any] | None, key: str) -> float | None:
    value = None if block is None else block.get(key)
    return None if value is None else float(value)


def check_promotion(
    report: dict[str, Any], *, max_false_pass: float = MAX_FALSE_PASS, tolerance: float = 0.0
) -> list[PromotionCheck]:
    """Every check of the promotion rule on an evaluation report (see the module docstring).

    ``report`` is the report's JSON as written: free-form, as many parts and categories as it
    measured; only the numbers named above are read."""
    checks: list[PromotionCheck] = []
    parts: dict[str, Any] = report.get("parts") or {}
    if not parts:
        return [PromotionCheck(part="-", check="evaluated", ok=False, detail="the report measures nothing")]
    for part, both in parts.items():
        cand, champ = both.get("candidate") or {}, both.get("champion") or {}
        if not (cand.get("overall") or {}).get("n"):
            continue  # an empty part (no held-back certified item yet) decides nothing
        for category, c in sorted((cand.get("per_category") or {}).items()):
            coverage = _rate(c, "coverage") or 0.0
            if coverage <= 0:
                continue
            fp = _rate(c, "false_pass_rate")
            n_fake = int(c.get("n_counterfeit") or 0)
            if fp is None or n_fake == 0:
                checks.append(
                    PromotionCheck(
                        part=part,
                        check=f"{category}: false-pass measured",
                        ok=False,
                        detail="no counterfeit to measure it on",
                    )
                )
                continue
            checks.append(
                PromotionCheck(
                    part=part,
                    check=f"{category}: false-pass <= {max_false_pass:.0%}",
                    ok=fp <= max_false_pass,
                    detail=f"{fp:.4f} ({c.get('counterfeit_called_authentic', '?')} of {n_fake} counterfeits passed)",
                )
            )
            ch = (champ.get("per_category") or {}).get(category)
            ch_fp, ch_cov = _rate(ch, "false_pass_rate"), _rate(ch, "coverage") or 0.0
            if ch_fp is not None and ch_cov > 0:
                checks.append(
                    PromotionCheck(
                        part=part,
                        check=f"{category}: false-pass not worse than the champion",
                        ok=fp <= ch_fp + tolerance,
                        detail=f"candidate {fp:.4f}, champion {ch_fp:.4f}",
                    )
                )
        cov, ch_cov = _rate(cand.get("overall"), "coverage") or 0.0, _rate(champ.get("overall"), "coverage") or 0.0
        checks.append(
            PromotionCheck(
                part=part,
                check="coverage not lower than the champion's",
                ok=cov >= ch_cov,
                detail=f"candidate {cov:.4f}, champion {ch_cov:.4f}",
            )
        )
    if not checks:
        checks.append(
            PromotionCheck(part="-", check="evaluated", ok=False, detail="no part of the split holds any photo")
        )
    return checks


def eligible(checks: list[PromotionCheck]) -> bool:
    return bool(checks) and all(c.ok for c in checks)


def refusal_message(checks: list[PromotionCheck]) -> str:
    failed = [c for c in checks if not c.ok]
    return "; ".join(f"{c.part}: {c.check} fails ({c.detail})" for c in failed)
