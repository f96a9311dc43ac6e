"""The quality gate's limits, with their calibrated defaults: the one place they are written.

Kept apart from :mod:`authenticator.vision.quality` (OpenCV) so that
:class:`~authenticator.config.Settings` takes its ``gate_*`` defaults from here without importing
OpenCV. ``python -m training.calibrate_gate`` recomputes them (docs/vision-thresholds.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the gate; the defaults are the calibrated values in docs/vision-thresholds.md.

    Each field ``f`` is also the setting ``gate_<f>`` (environment ``AUTHENTICATOR_GATE_<F>``)."""

    min_short_side: int = 160
    min_sharpness: float = 227.0
    max_dark_fraction: float = 0.728
    max_centre_bright_fraction: float = 0.446
    min_luma_p90: float = 43.0
    max_luma_p10: float = 227.0
    min_contrast: float = 15.8
    max_glare_fraction: float = 0.0479
    min_object_fraction: float = 0.168
