"""Pure decision logic: per-photo logits -> one calibrated probability -> a decision.

No I/O and no model here, so the rules are tested directly and the API, CLI, training and
evaluation scripts all decide the same way (:func:`decide_codes` on arrays, :func:`decide` on one
probability).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

Decision = Literal["authentic", "counterfeit", "inconclusive"]

#: The integer codes of :func:`decide_codes` (training's arrays of decisions).
AUTHENTIC, COUNTERFEIT, INCONCLUSIVE = 1, 0, -1
_DECISION_OF_CODE: dict[int, Decision] = {
    AUTHENTIC: "authentic",
    COUNTERFEIT: "counterfeit",
    INCONCLUSIVE: "inconclusive",
}

#: Aggregation rules measured in docs/vision-aggregation.md.
AGGREGATIONS = ("mean_logit", "min_logit", "mean_prob", "median_logit")


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def logit(p: float, eps: float = 1e-7) -> float:
    p = min(max(p, eps), 1.0 - eps)
    return math.log(p / (1.0 - p))


def aggregate_logits(logits: Sequence[float], rule: str = "mean_logit") -> float:
    """Combine the raw (uncalibrated) logits of one item's photos into one logit.

    ``mean_logit`` adds the evidence of every photo; ``min_logit`` trusts the most suspicious
    photo (one fake detail is enough); ``mean_prob`` averages probabilities (at temperature 1).
    """
    if not logits:
        raise ValueError("no logits to aggregate")
    xs = [float(x) for x in logits]
    if rule == "mean_logit":
        return sum(xs) / len(xs)
    if rule == "min_logit":
        return min(xs)
    if rule == "median_logit":
        s = sorted(xs)
        n = len(s)
        return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    if rule == "mean_prob":
        return logit(sum(sigmoid(x) for x in xs) / len(xs))
    raise ValueError(f"unknown aggregation rule {rule!r}; known: {', '.join(AGGREGATIONS)}")


def calibrate(z: float, temperature: float) -> float:
    """Temperature scaling (Guo et al. 2017): P(authentic) = sigmoid(z / T)."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    return sigmoid(z / temperature)


def decide_codes(
    p_authentic: npt.ArrayLike, authentic_above: float, counterfeit_below: float
) -> npt.NDArray[np.int64]:
    """The card's two thresholds on an array of calibrated P(authentic): 1 (``AUTHENTIC``) strictly
    above ``authentic_above``, 0 (``COUNTERFEIT``) strictly below ``counterfeit_below``, -1
    (``INCONCLUSIVE``, the band between them, and NaN) otherwise."""
    if counterfeit_below > authentic_above:
        raise ValueError("counterfeit_below must not exceed authentic_above")
    p = np.asarray(p_authentic)
    out = np.full(p.shape, INCONCLUSIVE, dtype=np.int64)
    out[p > authentic_above] = AUTHENTIC
    out[p < counterfeit_below] = COUNTERFEIT
    return out


def decide(p_authentic: float, authentic_above: float, counterfeit_below: float) -> Decision:
    """:func:`decide_codes` for one probability, as the decision's name."""
    code = decide_codes(np.array([p_authentic], dtype=np.float64), authentic_above, counterfeit_below)
    return _DECISION_OF_CODE[int(code[0])]
