"""The rule for repeated events: the first entry wins.

Older versions could append the same event twice under concurrency (two ``certificate.attached``
of one certificate, two revocations, two closes). The log cannot change, so everything that
reads it agrees on one rule: an entry whose natural key an earlier entry already had is a
duplicate, ignored by the projections, badges and pages, and reported by ``ledger verify`` as a
warning with its index. Pure functions: the verifier, the projections and the pages share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_KEYED_BY_BODY = {
    "assessment.recorded": "assessment_id",
    "certificate.attached": "certificate_id",
    "certificate.revoked": "certificate_id",
    "listing.published": "listing_id",
    "listing.closed": "listing_id",
    "model.registered": "model_sha256",
}


def natural_key(type_: str, item: str, body: Mapping[str, Any]) -> str | None:
    """What makes this event happen at most once (None: an event that may repeat, a transfer)."""
    if type_ == "item.registered":
        return f"item.registered:{item}"
    if type_ == "photos.erased":  # the same photos of one assessment erased again
        photos = body.get("photo_sha256")
        if body.get("assessment_id") is None or not isinstance(photos, list):
            return None
        return f"photos.erased:{body['assessment_id']}:{','.join(sorted({str(p) for p in photos}))}"
    field = _KEYED_BY_BODY.get(type_)
    if field is None:
        return None
    value = body.get(field)
    return None if value is None else f"{type_}:{value}"


def first_of_each(indexed: Iterable[tuple[int, str | None]]) -> dict[int, int]:
    """``{index of a duplicate: index of the entry it repeats}`` for ``(index, natural key)`` in log order."""
    first: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for index, key in indexed:
        if key is None:
            continue
        if key in first:
            repeats[index] = first[key]
        else:
            first[key] = index
    return repeats
