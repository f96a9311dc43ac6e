"""What each page's template is given: the item, its badge, its trace in words, the upload page's guides."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.pages.entry_words import trace_story
from api.pages.namer import Namer
from api.pages.plain_words import CATEGORY_WORDS, human_date
from api.pages.rendering import STATIC_DIR
from api.pages.standing_words import standing_words
from authenticator.contracts.common import Badge
from authenticator.i18n import ENGLISH, N_, Translator
from authenticator.services import items, labs, listings, traces
from authenticator.services.capture_guides import capture_guide
from authenticator.services.context import ServiceContext
from authenticator.vision.category import CATEGORIES
from authenticator.vision.reasons import MESSAGES, NOT_VALIDATED_MESSAGES

BADGES: dict[str, tuple[str, str]] = {
    "lab_certified": (N_("Lab certified"), "✓"),
    "ai_verified": (N_("AI-verified authentic"), "✓"),
    "inconclusive": (N_("Inconclusive"), "?"),
    "warning": (N_("Warning"), "!"),
}

#: The badge's reasons (:func:`authenticator.services.badges.derive_badge`), for the catalogue.
BADGE_REASONS = (
    N_("A lab found this item counterfeit."),
    N_("A lab revoked its certificate for this item."),
    N_("An independent lab inspected and certified this item."),
    N_("The photo assessment found signs of a counterfeit."),
    N_("The photo assessment found this item authentic."),
    N_("The photos did not allow a verdict; a lab inspection is needed."),
    N_("This item has not been assessed yet."),
)


def _badge(badge: Badge, tr: Translator = ENGLISH) -> dict[str, Any]:
    """The badge as the pages show it: its label and icon, the reason in the page's language."""
    label, icon = BADGES.get(badge.level, (badge.level, "?"))
    return {**badge.model_dump(), "label": tr(label), "icon": icon, "reason": tr(badge.reason)}


#: Most labs a page lists by name (the rest are counted).
LABS_SHOWN = 8


def _labs_context(ctx: ServiceContext) -> dict[str, Any]:
    registered = labs.list_labs(ctx).labs
    return {"labs": registered[:LABS_SHOWN], "more_labs": max(0, len(registered) - LABS_SHOWN)}


def _category_words(category: Any, tr: Translator) -> str:
    text = str(category)
    return tr(CATEGORY_WORDS[text]) if text in CATEGORY_WORDS else text


def trace_context(ctx: ServiceContext, item_id: str, tr: Translator = ENGLISH) -> dict[str, Any]:
    """The trace page's template context: the item, its badge, its events and standing in words, the labs."""
    item = items.get_item(ctx, item_id)
    trace = traces.item_trace(ctx, item_id)
    words, standing, namer = trace_story(ctx, trace, tr)
    return {
        "item": item,
        "category_words": _category_words(item.category, tr),
        "badge": _badge(item.badge, tr),
        "trace": trace,
        "words": words,
        "standing": standing_words(standing, namer),
        "platform_name": namer.platform(item.platform),
        "registered_words": human_date(item.registered_at, tr),
        "witness_keys": traces.log_key(ctx).witnesses,
        **_labs_context(ctx),
    }


def listing_context(ctx: ServiceContext, listing_id: str, tr: Translator = ENGLISH) -> dict[str, Any]:
    """The listing page's template context: the listing, its item and the badge derived from the log."""
    listing = listings.get_listing(ctx, listing_id)
    item = items.get_item(ctx, listing.item_id)
    return {
        "listing": listing,
        "item": item,
        "category_words": _category_words(item.category, tr),
        "badge": _badge(listing.badge, tr),
        "platform_name": Namer(ctx, tr).platform(listing.platform or item.platform),
        "listed_words": human_date(listing.published_at, tr),
    }


def upload_page_words(tr: Translator, base: Any, validated: Iterable[str] = ()) -> dict[str, Any]:
    """What the upload page's script needs in the page's language: every category's capture guide
    (slots: view id, name, instruction, outline drawing, what the gate asks), the reasons' messages
    and retake hints by code."""
    validated = list(validated)
    shown = {"category", "required", "optional"}  # the slots; the page says itself what a lab is for
    guides = {
        c: capture_guide(c, base, tr, validated=validated, outline=outline_url).model_dump(include=shown)
        for c in CATEGORIES
    }
    messages = {code: tr(m) for code, m in MESSAGES.items()}
    not_validated = {c: tr(m) for c, m in NOT_VALIDATED_MESSAGES.items()}
    return {
        "guides": guides,
        "messages": messages,
        # the API answers in English: a message's detail after the base text is kept as it is
        "messages_en": dict(MESSAGES),
        "not_validated": not_validated,
        "validated": list(validated),
    }


def outline_url(category: str, view: str) -> str | None:
    """The outline drawing of a view (``api/static/outlines/<category>-<view>.svg``), when there is one."""
    name = f"{category}-{view}.svg"
    return f"/static/outlines/{name}" if (STATIC_DIR / "outlines" / name).is_file() else None
