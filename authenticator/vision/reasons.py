"""Reason codes and the messages a person can act on.

Codes are stable strings for machines (the API, the ledger); messages tell the seller what to
do next. One table, so the CLI, the API and the web page all say the same thing.
"""

from __future__ import annotations

from pydantic import BaseModel


class Reason(BaseModel):
    """Why a photo or an assessment did not get (or did not fully get) a verdict."""

    code: str
    message: str


MESSAGES: dict[str, str] = {
    # quality gate
    "low_resolution": "The photo is too small to judge details: retake it closer or at full resolution.",
    "blurred": "The photo is blurred: hold the phone steady and tap the item to focus.",
    "underexposed": "The photo is too dark: add light or move next to a window, without flash glare.",
    "overexposed": "The photo is too bright: move out of direct light or lower the exposure.",
    "low_contrast": "The photo has too little contrast: use even light and a plain background.",
    "glare": "Strong glare hides part of the item: change the angle or switch the flash off.",
    "object_too_small": "The item fills too little of the frame: move closer so it fills most of the photo.",
    # decode (codes of authenticator.errors.ImageError subclasses)
    "unsupported_format": "The file is not a still JPEG, PNG, WebP or HEIC photo.",
    "corrupt_image": "The file is corrupt or truncated: upload the original photo again.",
    "image_too_large": "The file is larger than allowed: upload a smaller version of the photo.",
    "decompression_bomb": "The image announces far more pixels than allowed and was not decoded.",
    "image_too_small": "The image is too small to be assessed.",
    "invalid_image": "The file cannot be used as a photo.",
    # what is it?
    "unsupported_object": "This does not look like a bag, watch or sneaker: photograph the item itself.",
    "category_not_validated": "The model has no validated accuracy for this kind of item yet: a lab must check it.",
    "mixed_categories": "The photos seem to show different kinds of items: send photos of one item only.",
    "missing_views": "Photos of views the capture guide asks for are missing: take them and check the item again.",
    # product lines
    "product_line_not_validated": "The model has no validated accuracy for this product line yet: a lab must inspect "
    "the item (its certificate teaches the model this line).",
    "product_line_contradicted": "The photos do not show the product line the item was registered as: photograph the "
    "registered item, or correct its registration; a lab must inspect it.",
    # decision
    "unfamiliar_photo": "This photo is unlike the photos the model was validated on, so it was not used for the "
    "verdict: photograph the whole item or one of its labels, straight on, in plain light.",
    "uncertain_score": "The photos do not allow a confident verdict: a lab inspection is needed.",
    "no_usable_photo": "No photo passed the checks: retake the photos following the hints above.",
    "photo_reused": "This photo was already submitted for another item: a common sign of a scam listing.",
}


#: ``category_not_validated`` said for the category concerned: what the seller does next.
NOT_VALIDATED_MESSAGES: dict[str, str] = {
    "watch": "Watches cannot be judged from photos yet: for now every watch needs an inspection by an appraisal lab.",
    "bag": "Bags cannot be judged from photos yet: for now a bag needs an inspection by an appraisal lab.",
    "sneaker": "Sneakers cannot be judged from photos yet: for now a pair needs an inspection by an appraisal lab.",
}


def reason(code: str, detail: str | None = None, *, category: str | None = None) -> Reason:
    """The standard message for ``code``, optionally followed by a detail sentence. ``category``
    words ``category_not_validated`` for the kind of item concerned (a watch needs a lab)."""
    base = MESSAGES.get(code, code.replace("_", " ").capitalize() + ".")
    if code == "category_not_validated" and category in NOT_VALIDATED_MESSAGES:
        base = NOT_VALIDATED_MESSAGES[category]
    return Reason(code=code, message=f"{base} ({detail})" if detail else base)


#: Per-photo reasons that still let the photo count towards the verdict; any other per-photo
#: reason means the photo was set aside (unreadable, failed the quality gate, not the item, or
#: unlike the validated photos) and its score, if it has one, means nothing.
KEPT_PHOTO_CODES = frozenset({"photo_reused"})

#: What a retake should show, per reason a photo was set aside for (the upload page and the
#: preview answer show it next to the reason).
RETAKE: dict[str, str] = {
    "low_resolution": "the item at the camera's full resolution, close enough that stitching and stamps are sharp",
    "blurred": "sharp edges and readable stamps: hold the phone steady and tap the item to focus",
    "underexposed": "the item in bright, even light, with detail visible in its dark parts",
    "overexposed": "the item with no washed-out areas: out of direct sunlight, exposure lowered",
    "low_contrast": "the item against a plain, contrasting background in even light",
    "glare": "the item without bright reflections: another angle, flash off",
    "object_too_small": "the item filling most of the frame",
    "unsupported_object": "the bag, watch or sneaker itself: the whole item, then its logo, stamps, labels, hardware",
    "unfamiliar_photo": "the whole item or one of its labels, straight on, in plain light",
    "unsupported_format": "the original photo from the camera, as JPEG, PNG, WebP or HEIC",
    "corrupt_image": "the original photo from the camera, uploaded again",
    "image_too_large": "the same photo saved smaller",
    "decompression_bomb": "the original photo from the camera",
    "image_too_small": "the item at the camera's full resolution",
    "invalid_image": "the original photo from the camera, as JPEG, PNG, WebP or HEIC",
}


def set_aside(codes: list[str]) -> bool:
    """Whether a photo with these per-photo reason codes was left out of the verdict."""
    return any(c not in KEPT_PHOTO_CODES for c in codes)


def retake_hint(codes: list[str]) -> str | None:
    """What a retake of a set-aside photo should show (for its first reason that has a hint)."""
    return next((RETAKE[c] for c in codes if c in RETAKE), None)
