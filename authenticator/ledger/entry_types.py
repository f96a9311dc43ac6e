"""The entry types of the log and the schema of each one's body (pydantic, ``extra="forbid"``).

Bodies hold hashes and commitments only, never photos or personal data; a body is checked
against its type's schema before an entry is made and again when one is parsed.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, model_validator

HASH_SIZE = 32

# --- Field types shared by the schemas ----------------------------------------------------------

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""Lower-case hex SHA-256 of some content (a photo, a model file, a payload)."""
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]
"""An opaque id (item, assessment, certificate, lab, listing, platform key): no spaces, ASCII."""
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:\-]{0,63}$")]
"""A machine-readable reason code such as ``blurry`` or ``low_resolution``."""
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
"""A short single-line label (brand, model name, version) with no control characters."""
ReasonText = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")]
KeyId = Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Base64Text = Annotated[
    str,
    StringConstraints(max_length=16384, pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"),
]
DecimalText = Annotated[str, StringConstraints(pattern=r"^(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,6})?$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
DateText = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]

_ITEM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_PREV_RE = re.compile(r"[A-Za-z0-9+/]{43}=")
_MODEL_ITEM_PREFIX = "model:"


class _Body(BaseModel):
    """Base of every body schema: unknown fields refused, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class ItemRegistered(_Body):
    category: ShortText
    brand: ShortText
    model: ShortText
    serial_commitment: Sha256Hex | None
    """SHA-256 of salt || serial number: proves the serial later without publishing it."""
    platform: Identifier
    """Key id of the platform that registered the item."""


class PerPhoto(_Body):
    sha256: Sha256Hex
    probability_authentic: Probability | None
    category: ShortText | None
    reasons: list[Code] = Field(max_length=64)
    view: Code | None = None
    """The capture guide's view the uploader declared (``unspecified`` when the upload declared views
    but not this photo's); absent from entries of uploads that declared none (and older entries)."""


# One definition for the log (each ``assessment.recorded`` names the pair it was decided with), the
# model card that carries the pair (vision/card.py imports it) and the API's answers. The docstring
# is the description /docs shows.
class Thresholds(_Body):
    """Calibrated P(authentic) above ``authentic_above`` -> authentic; below
    ``counterfeit_below`` -> counterfeit; between -> inconclusive."""

    authentic_above: Probability
    counterfeit_below: Probability

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.counterfeit_below > self.authentic_above:
            raise ValueError("counterfeit_below must not exceed authentic_above")
        return self


class AssessmentRecorded(_Body):
    assessment_id: Identifier
    photo_sha256: list[Sha256Hex] = Field(min_length=1, max_length=64)
    model_sha256: Sha256Hex
    model_version: ShortText
    decision: Literal["authentic", "counterfeit", "inconclusive"]
    probability_authentic: Probability | None
    per_photo: list[PerPhoto] = Field(max_length=64)
    thresholds: Thresholds
    reasons: list[Code] = Field(max_length=64)
    missing_views: list[Code] | None = Field(default=None, max_length=64)
    """Required views of the item's capture guide that no photo was declared as (with reason
    ``missing_views``); absent when the upload declared no views (and from older entries)."""


class CertificateAttached(_Body):
    certificate_id: Identifier
    lab_id: Identifier
    outcome: Literal["authentic", "counterfeit"]
    payload_sha256: Sha256Hex
    envelope_sha256: Sha256Hex
    signature: Base64Text
    keyid: KeyId | None
    """The DSSE signature's keyid as the lab sent it (DSSE allows an empty one)."""
    inspection_date: DateText

    @model_validator(mode="after")
    def _real_date(self) -> CertificateAttached:
        try:
            date.fromisoformat(self.inspection_date)
        except ValueError as exc:
            raise ValueError(f"inspection_date is not a calendar date: {exc}") from None
        return self


class CertificateRevoked(_Body):
    certificate_id: Identifier
    lab_id: Identifier
    reason: ReasonText


class ListingPublished(_Body):
    listing_id: Identifier
    platform: Identifier
    title_sha256: Sha256Hex
    price: DecimalText
    """A decimal string, never a float: money must not round."""
    currency: CurrencyCode


class ListingClosed(_Body):
    listing_id: Identifier
    reason: ReasonText


class CustodyTransferred(_Body):
    event: Literal["received_for_consignment", "bought_back", "consigned", "sold"]
    platform: Identifier
    counterparty_commitment: Sha256Hex | None
    """SHA-256 of salt || counterparty id: the party is provable later, never published."""


class ModelRegistered(_Body):
    model_sha256: Sha256Hex
    name: ShortText
    version: ShortText
    card_sha256: Sha256Hex
    metrics: dict[str, JsonValue]


class ModelPromoted(_Body):
    """The model that serves verdicts from now on (every worker of every server switches to it
    before its next assessment): a promotion after an evaluation against the model it replaces, or a
    rollback to the model the current one replaced. Item ``model:lineage``: the promotions form
    one hash chain."""

    model_sha256: Sha256Hex
    card_sha256: Sha256Hex
    evaluation_sha256: Sha256Hex | None
    """SHA-256 of the evaluation report (report.json, kept in the blob store); None for a rollback to a
    model that was never evaluated (the shipped one)."""
    replaces: Sha256Hex
    """The model that served until this entry."""
    action: Literal["promotion", "rollback"]
    name: ShortText
    version: ShortText


class ModelShadowed(_Body):
    """A candidate starts (``active``) or stops scoring live assessments in the background; its
    decisions never reach a verdict. Item ``model:lineage``."""

    model_sha256: Sha256Hex
    card_sha256: Sha256Hex
    evaluation_sha256: Sha256Hex | None
    active: bool
    name: ShortText
    version: ShortText


class PhotosErased(_Body):
    """Photos of an assessment taken back (a seller's request, or the retention period): their
    bytes and heat maps left the blob store. The verdict and its photo hashes stay in the log."""

    assessment_id: Identifier
    photo_sha256: list[Sha256Hex] = Field(min_length=1, max_length=64)
    """The hashes erased by this entry (photos of ``assessment_id`` not erased before)."""
    by: Identifier
    """Who erased them: the platform's or operator's principal id, or ``operator`` (retention)."""
    reason: ShortText | None


class ItemMapStarted(_Body):
    """From this entry on, every checkpoint commits to every item's head (the item map, see
    ``authenticator/ledger/item_map.py``). Appended once, when a log from an older version
    (whose checkpoints did not) is opened; a new log commits to the map from its first checkpoint."""

    map: Literal["item-heads/v1"]


BODY_SCHEMAS: dict[str, type[BaseModel]] = {
    "item.registered": ItemRegistered,
    "assessment.recorded": AssessmentRecorded,
    "certificate.attached": CertificateAttached,
    "certificate.revoked": CertificateRevoked,
    "listing.published": ListingPublished,
    "listing.closed": ListingClosed,
    "custody.transferred": CustodyTransferred,
    "model.registered": ModelRegistered,
    "model.promoted": ModelPromoted,
    "model.shadowed": ModelShadowed,
    "photos.erased": PhotosErased,
    "log.item_map_started": ItemMapStarted,
}
"""Entry type -> body schema. Add a type here (and to the docs) to extend the log."""

ENTRY_TYPES: frozenset[str] = frozenset(BODY_SCHEMAS)
