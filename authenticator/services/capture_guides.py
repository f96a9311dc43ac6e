"""A category's capture guide as the API answers it and the upload page shows it.

The guides themselves (views, framings, what the gate asks of each) are vision's data
(:mod:`authenticator.vision.capture_guides`); this puts them in a page's language, with the
limits the service's gate applies and whether the served model gives verdicts for the category.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from authenticator.contracts.capture import CaptureGuideOut, CaptureView, ViewQuality
from authenticator.i18n import Translator
from authenticator.vision.capture_guides import FRAMING_GATES, GUIDES, View, gate_thresholds
from authenticator.vision.category import Category
from authenticator.vision.quality_thresholds import QualityThresholds
from authenticator.vision.reasons import reason

Outline = Callable[[str, str], str | None]
"""Where the outline drawing of ``(category, view)`` is served, if there is one (the web layer knows)."""


def capture_guide(
    category: Category,
    base: QualityThresholds,
    tr: Translator,
    *,
    validated: Collection[str],
    outline: Outline = lambda _category, _view: None,
) -> CaptureGuideOut:
    """``category``'s guide in ``tr``'s language: required and optional views, each with what the
    gate asks of it (``base``: the service's calibrated limits); ``validated``: the categories the
    served model gives verdicts for (the others need a lab, which ``note`` says)."""
    guide = GUIDES[category]

    def view(v: View) -> CaptureView:
        limits = gate_thresholds(base, v.framing)
        return CaptureView(
            id=v.id,
            name=tr.gettext(v.name),
            instruction=tr.gettext(v.instruction),
            required=v.required,
            quality=ViewQuality(
                framing=v.framing,
                checks=tr.gettext(FRAMING_GATES[v.framing].checks),
                min_sharpness=round(limits.min_sharpness, 2),
                min_short_side=limits.min_short_side,
            ),
            outline=outline(guide.category, v.id),
        )

    verdicts = category in validated
    return CaptureGuideOut(
        category=category,
        lang=tr.locale,
        required=[view(v) for v in guide.required],
        optional=[view(v) for v in guide.optional],
        verdicts=verdicts,
        note=None if verdicts else tr(reason("category_not_validated", category=category).message),
    )
