"""Dates, scores, decisions and reasons as a buyer reads them (shared by the entry and standing words)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from authenticator.i18n import ENGLISH, N_, Translator
from authenticator.vision.reasons import MESSAGES

#: The words of a decision, as a title says it.
DECISION_WORDS = {
    "authentic": N_("authentic"),
    "counterfeit": N_("counterfeit"),
    "inconclusive": N_("inconclusive"),
}
CATEGORY_WORDS = {"bag": N_("bag"), "watch": N_("watch"), "sneaker": N_("sneaker")}


def human_time(stamp: str, tr: Translator = ENGLISH) -> str:
    """``2026-11-25T16:00:00.000000Z`` as ``25 Nov 2026, 16:00 UTC`` (``2026年11月25日 16:00 UTC``)."""
    try:
        t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return stamp
    if tr.locale == "zh-CN":
        return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M} UTC"
    return f"{t.day} {t:%b %Y, %H:%M} UTC"


def human_date(stamp: Any, tr: Translator = ENGLISH) -> str:
    """``2026-11-25T16:00:00.000000Z`` or ``2026-11-25`` as ``25 Nov 2026`` (``2026年11月25日``)."""
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d"):
        try:
            t = datetime.strptime(str(stamp), fmt)
        except ValueError:
            continue
        if tr.locale == "zh-CN":
            return f"{t.year}年{t.month}月{t.day}日"
        return f"{t.day} {t:%b %Y}"
    return str(stamp)


def percent(p: Any, tr: Translator = ENGLISH) -> str:
    """A probability as a whole percentage, or "no score" when there is none."""
    return f"{round(float(p) * 100)}%" if isinstance(p, int | float) else tr("no score")


#: Assessment-level reasons as a buyer reads them (the seller-facing advice is on the upload page).
PUBLIC_REASONS: dict[str, str] = {
    "uncertain_score": N_("the score fell in the uncertain band, where only a lab can decide"),
    "no_usable_photo": N_("no photo passed the quality checks"),
    "unsupported_object": N_("the photos did not show a bag, watch or sneaker that the model knows"),
    "unfamiliar_photo": N_("the photos were unlike those the model was validated on"),
    "category_not_validated": N_("the model has no validated accuracy for this kind of item yet"),
    "mixed_categories": N_("the photos seemed to show different kinds of items"),
    "photo_reused": N_("a photo had already been sent for another item, a common sign of a scam listing"),
    "missing_views": N_("some of the views the capture guide asks for were not photographed"),
}
#: ``category_not_validated`` for the category concerned, as a buyer reads it.
PUBLIC_NOT_VALIDATED: dict[str, str] = {
    "watch": N_("watches are not judged from photos yet: a lab must inspect the watch"),
}


def reason_words(codes: Any, tr: Translator = ENGLISH, category: str | None = None) -> list[str]:
    """An assessment's reason codes as a buyer reads them (``category``: the one the photos showed)."""
    if not isinstance(codes, list):
        return []
    out = []
    for c in codes:
        code = str(c)
        if code == "category_not_validated" and category in PUBLIC_NOT_VALIDATED:
            out.append(tr(PUBLIC_NOT_VALIDATED[category]))
        else:
            out.append(tr(PUBLIC_REASONS.get(code, MESSAGES.get(code, code.replace("_", " ")))))
    return out


def most_shown_category(per_photo: Any) -> str | None:
    """The category most of an assessment's photos showed, if any did."""
    cats = [str(p.get("category")) for p in per_photo if isinstance(p, Mapping) and p.get("category")]
    return max(set(cats), key=cats.count) if cats else None


def photos_phrase(n: int, tr: Translator) -> str:
    """``1 photo`` or ``{n} photos``, in the page's language."""
    return tr("1 photo") if n == 1 else tr("{n} photos", n=n)
