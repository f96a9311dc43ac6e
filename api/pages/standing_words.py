"""What is known about the item (the buyer's first question), in plain words: facts, history, next step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.pages.namer import Namer
from api.pages.plain_words import (
    DECISION_WORDS,
    human_date,
    most_shown_category,
    percent,
    photos_phrase,
    reason_words,
)
from authenticator.i18n import ENGLISH, N_, Translator
from authenticator.services.standing import Fact, Standing


def _photo_count(body: Mapping[str, Any], tr: Translator = ENGLISH) -> str:
    return photos_phrase(len(body.get("photo_sha256") or []), tr)


def fact_words(fact: Fact, namer: Namer) -> dict[str, str]:
    """A fact of the item's standing as a title and one sentence, in plain words (the namer's language)."""
    tr = namer.tr
    body: Mapping[str, Any] = fact.body or {}
    lab_id = str(body.get("lab_id"))
    inspected = human_date(body.get("inspection_date"), tr)
    when = human_date(fact.time, tr)
    score = percent(body.get("probability_authentic"), tr)
    thresholds = body.get("thresholds") if isinstance(body.get("thresholds"), Mapping) else {}
    assert isinstance(thresholds, Mapping)
    revocation: Mapping[str, Any] = fact.revocation or {}
    title, detail = "", ""
    if fact.kind == "lab_counterfeit":
        title = tr("A lab found this item counterfeit")
        detail = tr(
            "{lab} inspected it in person on {date} and signed a counterfeit finding.",
            lab=namer.lab_accredited(lab_id),
            date=inspected,
        )
    elif fact.kind == "revoked":
        outcome = str(body.get("outcome"))
        title = tr("A lab withdrew its certificate for this item")
        detail = tr(
            "On {date}, {lab} revoked the certificate of its inspection of {inspected} (which had found the item "
            "{outcome}), saying: “{reason}”. No lab certificate is in force for this item now.",
            date=human_date(fact.revoked_time, tr),
            lab=namer.lab(lab_id),
            inspected=inspected,
            outcome=tr(DECISION_WORDS.get(outcome, outcome)),
            reason=revocation.get("reason"),
        )
    elif fact.kind == "lab_certified":
        title = tr("Certified authentic by {lab}", lab=namer.lab(lab_id))
        detail = tr(
            "{lab} inspected the item in person on {date} and signed its certificate, which is in force.",
            lab=namer.lab_accredited(lab_id),
            date=inspected,
        )
    elif fact.kind == "photo_counterfeit":
        title = tr("The photo check found signs of a counterfeit")
        detail = tr(
            "A model looked at {photos} on {date}: score {score}, below the {below} under which it calls an item "
            "counterfeit. No lab certificate is in force for this item.",
            photos=_photo_count(body, tr),
            date=when,
            score=score,
            below=percent(thresholds.get("counterfeit_below"), tr),
        )
    elif fact.kind == "photo_authentic":
        title = tr("Photo check only: no sign of a counterfeit")
        detail = tr(
            "A model looked at {photos} on {date} and found them consistent with an authentic item (score {score}). "
            "No lab certificate is in force for this item.",
            photos=_photo_count(body, tr),
            date=when,
            score=score,
        )
    elif fact.kind == "photo_inconclusive":
        category = most_shown_category(body.get("per_photo") or [])
        why = tr("; ").join(reason_words(body.get("reasons"), tr, category)) or tr(
            "the score fell in the uncertain band"
        )
        title = tr("Photo check only: no verdict")
        detail = tr(
            "The photos sent on {date} did not allow a verdict: {why}. No lab certificate is in force for this item.",
            date=when,
            why=why,
        )
    elif fact.kind == "nothing":
        title = tr("Nothing is known about this item yet")
        detail = tr("It is registered, but no photo check and no lab inspection has been recorded.")
    elif fact.kind == "revocation_replaced":
        new: Mapping[str, Any] = fact.replaced_by or {}
        title = tr("An earlier certificate was withdrawn and replaced")
        new_lab = str(new.get("lab_id"))
        detail = tr(
            "On {date}, {lab} revoked its certificate of {inspected} (“{reason}”); {who} then issued a new one, of "
            "its inspection of {new_date}, which is in force.",
            date=human_date(fact.revoked_time, tr),
            lab=namer.lab(lab_id),
            inspected=inspected,
            reason=revocation.get("reason"),
            who=tr("it") if new_lab == lab_id else namer.lab(new_lab),
            new_date=human_date(new.get("inspection_date"), tr),
        )
    elif fact.kind == "photo_outranked":
        decision = str(body.get("decision"))
        title = tr("An earlier photo check")
        detail = tr(
            "On {date} the photo check said “{decision}”; a lab's inspection in person outranks it.",
            date=when,
            decision=tr(DECISION_WORDS.get(decision, decision)),
        )
    return {"kind": fact.kind, "level": fact.level, "title": title, "detail": detail}


#: The next step a buyer can take, by the first (most serious) fact.
BUYER_NEXT: dict[str, str] = {
    "photo_inconclusive": N_(
        "Only an inspection in person can settle it: ask the seller to send the item to a registered lab."
    ),
    "nothing": N_("Ask the seller for a photo check or, better, an inspection by a registered lab."),
    "photo_counterfeit": N_(
        "The seller can contest this result by having a registered lab inspect the item in person: a lab's "
        "certificate replaces the photo check here and on the badge."
    ),
    "photo_authentic": N_("A photo check is not an inspection: for certainty, ask for one by a registered lab."),
    "revoked": N_("Ask the seller why, and for a new inspection by a registered lab."),
}


def standing_words(standing: Standing, namer: Namer) -> dict[str, Any]:
    """The standing as the trace page shows it: current facts, history, the next step."""
    first = standing.facts[0].kind
    step = BUYER_NEXT.get(first)
    return {
        "level": standing.level,
        "facts": [fact_words(f, namer) for f in standing.facts],
        "history": [fact_words(f, namer) for f in standing.history],
        "next_step": namer.tr(step) if step else None,
    }
