"""Each event of an item's trace in plain words, in the page's language, keyed by its leaf hash."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from api.pages.namer import Namer
from api.pages.plain_words import (
    CATEGORY_WORDS,
    DECISION_WORDS,
    human_date,
    human_time,
    most_shown_category,
    percent,
    photos_phrase,
    reason_words,
)
from authenticator.contracts.items import Trace
from authenticator.i18n import ENGLISH, N_, Translator
from authenticator.ledger.duplicates import first_of_each, natural_key
from authenticator.services.context import ServiceContext
from authenticator.services.standing import Standing, item_standing
from authenticator.vision.reasons import set_aside

CUSTODY_WORDS = {
    "received_for_consignment": N_("Received for consignment"),
    "bought_back": N_("Bought back"),
    "consigned": N_("Consigned"),
    "sold": N_("Sold"),
}
TYPE_WORDS = {
    "item.registered": N_("Registered"),
    "assessment.recorded": N_("Photo assessment"),
    "certificate.attached": N_("Lab certificate"),
    "certificate.revoked": N_("Certificate revoked"),
    "listing.published": N_("Listed for sale"),
    "listing.closed": N_("Listing closed"),
    "custody.transferred": N_("Custody transfer"),
    "model.registered": N_("Model registered"),
    "photos.erased": N_("Photos erased"),
}
#: Why a photo was set aside, in a few words.
SET_ASIDE_WORDS: dict[str, str] = {
    "low_resolution": N_("too small"),
    "blurred": N_("blurred"),
    "underexposed": N_("too dark"),
    "overexposed": N_("too bright"),
    "low_contrast": N_("too little contrast"),
    "glare": N_("glare"),
    "object_too_small": N_("item too small in the frame"),
    "unsupported_object": N_("not a bag, watch or sneaker"),
    "unfamiliar_photo": N_("unlike the validated photos"),
    "category_not_validated": N_("a kind of item not judged from photos"),
}


def _set_aside_summary(per_photo: Any, tr: Translator = ENGLISH) -> tuple[int, list[str]]:
    """How many photos of an assessment were set aside, and why (a few words each, once)."""
    why: list[str] = []
    count = 0
    for p in per_photo if isinstance(per_photo, list) else []:
        codes = [str(c) for c in (p.get("reasons") or [])] if isinstance(p, Mapping) else []
        if not set_aside(codes):
            continue
        count += 1
        for c in codes:
            words = tr(SET_ASIDE_WORDS.get(c, N_("file could not be read"))) if c != "photo_reused" else ""
            if words and words not in why:
                why.append(words)
    return count, why


def describe_entry(entry: Mapping[str, Any], namer: Namer, revoked: set[str]) -> dict[str, Any]:
    """Title and detail lines, in plain words (the namer's language), for one log entry (already parsed)."""
    tr = namer.tr
    kind = str(entry.get("type"))
    body = entry.get("body") if isinstance(entry.get("body"), Mapping) else {}
    assert isinstance(body, Mapping)
    title = tr(TYPE_WORDS[kind]) if kind in TYPE_WORDS else kind
    lines: list[str] = []
    tech: list[str] = []  # ids, hashes and versions: shown one click away
    if kind == "item.registered":
        category = str(body.get("category"))
        title = tr(
            "Registered: {brand} {model} ({category})",
            brand=body.get("brand"),
            model=body.get("model"),
            category=tr(CATEGORY_WORDS[category]) if category in CATEGORY_WORDS else category,
        )
        lines.append(tr("by {name}", name=namer.platform(str(body.get("platform")))))
        if body.get("serial_commitment"):
            lines.append(tr("serial number recorded as a private commitment"))
        tech.append(tr("platform {id}", id=body.get("platform")))
    elif kind == "assessment.recorded":
        decision = str(body.get("decision"))
        title = tr("Photo assessment: {decision}", decision=tr(DECISION_WORDS.get(decision, decision)))
        photos = body.get("photo_sha256") or []
        p = body.get("probability_authentic")
        thresholds = body.get("thresholds") if isinstance(body.get("thresholds"), Mapping) else {}
        assert isinstance(thresholds, Mapping)
        if isinstance(p, int | float):
            lines.append(
                tr(
                    "score {score} (authentic above {above}, counterfeit below {below})",
                    score=percent(p, tr),
                    above=percent(thresholds.get("authentic_above"), tr),
                    below=percent(thresholds.get("counterfeit_below"), tr),
                )
            )
        aside, why = _set_aside_summary(body.get("per_photo"), tr)
        used = tr("from {photos}", photos=photos_phrase(len(photos), tr))
        if aside:
            used = tr("{used}, {n} set aside ({why})", used=used, n=aside, why=tr(", ").join(why))
        lines.append(used)
        lines.extend(reason_words(body.get("reasons"), tr, most_shown_category(body.get("per_photo") or [])))
        tech.append(tr("assessment {id}", id=body.get("assessment_id")))
        tech.append(
            tr(
                "model version {version} (sha256 {sha}…)",
                version=body.get("model_version"),
                sha=str(body.get("model_sha256"))[:12],
            )
        )
    elif kind == "certificate.attached":
        outcome = str(body.get("outcome"))
        title = tr("Lab certificate: {outcome}", outcome=tr(DECISION_WORDS.get(outcome, outcome)))
        status = tr("revoked later") if body.get("certificate_id") in revoked else tr("in force")
        lab = namer.lab_accredited(str(body.get("lab_id")))
        lines.append(tr("by {lab}, inspected on {date}", lab=lab, date=human_date(body.get("inspection_date"), tr)))
        lines.append(tr("{status}; signed with the lab's own key", status=status))
        tech.append(tr("certificate {id}, lab {lab}", id=body.get("certificate_id"), lab=body.get("lab_id")))
    elif kind == "certificate.revoked":
        title = tr("Lab certificate revoked")
        lines.append(tr("by {lab}: {reason}", lab=namer.lab(str(body.get("lab_id"))), reason=body.get("reason")))
        tech.append(tr("certificate {id}", id=body.get("certificate_id")))
    elif kind == "listing.published":
        name = namer.listing_title(str(body.get("listing_id")), str(body.get("title_sha256")))
        title = tr("Listed for sale at {price} {currency}", price=body.get("price"), currency=body.get("currency"))
        if name:
            lines.append(f"“{name}”")
        lines.append(tr("by {name}", name=namer.platform(str(body.get("platform")))))
        tech.append(tr("listing {id}", id=body.get("listing_id")))
    elif kind == "listing.closed":
        title = tr("Listing closed")
        lines.append(str(body.get("reason")))
        tech.append(tr("listing {id}", id=body.get("listing_id")))
    elif kind == "custody.transferred":
        event = str(body.get("event"))
        title = tr("Custody: {event}", event=tr(CUSTODY_WORDS[event]) if event in CUSTODY_WORDS else event)
        lines.append(tr("by {name}", name=namer.platform(str(body.get("platform")))))
    elif kind == "photos.erased":
        photos = body.get("photo_sha256") or []
        by = str(body.get("by"))
        title = tr("Photos erased on {date}", date=human_date(entry.get("time"), tr))
        count = tr("{photos} of a photo assessment", photos=photos_phrase(len(photos), tr))
        who = tr("the operator") if by == "operator" else namer.platform(by)
        line = tr("{count}, by {who}", count=count, who=who)
        if body.get("reason"):
            line = tr("{line}: {reason}", line=line, reason=body.get("reason"))
        lines.append(line)
        lines.append(tr("the files are deleted; the verdict, its photo hashes and every proof still stand"))
        tech.append(tr("assessment {id}, by {by}", id=body.get("assessment_id"), by=by))
    time = str(entry.get("time", ""))
    return {
        "type": kind,
        "title": title,
        "lines": lines,
        "tech": tech,
        "time": time,
        "time_words": human_time(time, tr),
    }


def trace_words(ctx: ServiceContext, trace: Trace) -> list[dict[str, Any]]:
    """One description per event of a trace, with its index and leaf hash."""
    return trace_story(ctx, trace)[0]


def trace_story(
    ctx: ServiceContext, trace: Trace, tr: Translator = ENGLISH
) -> tuple[list[dict[str, Any]], Standing, Namer]:
    """The words for every event, the item's standing from the events that count, and the namer."""
    parsed = [json.loads(base64.b64decode(e.entry)) for e in trace.events]
    revoked = {str(p["body"].get("certificate_id")) for p in parsed if p.get("type") == "certificate.revoked"}
    namer = Namer(ctx, tr)
    repeats = first_of_each(
        (e.index, natural_key(str(p.get("type")), str(p.get("item")), p.get("body") or {}))
        for e, p in zip(trace.events, parsed, strict=True)
    )
    out = []
    for event, entry in zip(trace.events, parsed, strict=True):
        words = describe_entry(entry, namer, revoked)
        first = repeats.get(event.index)
        if first is not None:  # the first one counts (see authenticator.ledger.duplicates)
            words["title"] = tr("{title} (repeated, ignored)", title=words["title"])
            words["lines"].append(
                tr("the same event was already recorded as entry #{first}; only that one counts", first=first)
            )
        words.update(index=event.index, leaf_hash=event.leaf_hash)
        out.append(words)
    counted = [
        (e.index, p)
        for e, p in zip(trace.events, parsed, strict=True)
        if repeats.get(e.index) is None and isinstance(p, Mapping)
    ]
    return out, item_standing(counted), namer
