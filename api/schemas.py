"""Request and response bodies of the HTTP API, with the examples shown at ``/docs``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authenticator.contracts.common import Badge, ModelRef, ReasonOut, Receipt
from authenticator.contracts.examples import B64
from authenticator.contracts.examples import CHECKPOINT as _CHECKPOINT
from authenticator.contracts.examples import HASH as _HASH
from authenticator.contracts.examples import example as _example
from authenticator.contracts.labs import Certificate as Certificate
from authenticator.text import FREE_TEXT, FreeText
from authenticator.vision.card import Thresholds
from authenticator.vision.category import Category
from authenticator.vision.decision import Decision

# Role, Decision, Category, badge Level and Thresholds are the core's types (one definition each).


class Problem(BaseModel):
    """RFC 9457 problem details: every error answer of this API."""

    model_config = _example(
        {
            "type": "https://authenticator.local/problems/not_found",
            "title": "Not Found",
            "status": 404,
            "detail": "no item itm_0123",
            "code": "not_found",
        }
    )
    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


# --- receipts, proofs, traces -------------------------------------------------------------------


class TraceEvent(BaseModel):
    index: int
    entry: B64 = Field(description="Standard base64 of the exact canonical entry bytes (RFC 8785 JSON).")
    leaf_hash: B64
    inclusion_proof: list[B64]


class Consistency(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: int = Field(alias="from")
    to: int
    hashes: list[B64]


class ItemHeadTerminal(BaseModel):
    key: str = Field(description="base64 SHA-256 of the item id of the one item in the proof's last subtree")
    index: int = Field(description="that item's latest leaf index")
    leaf_hash: str
    count: int = Field(description="how many entries that item has")


class ItemHeadProof(BaseModel):
    """Proof, against the checkpoint's ``item-map`` line, of what the log commits to for an item.

    ``siblings`` run from the root down; ``terminal`` is null (no such item), the item's own
    head, or another item's head on the same path (no such item either)."""

    siblings: list[str]
    terminal: ItemHeadTerminal | None


class ItemHead(BaseModel):
    """What the latest checkpoint commits to for an item id (its head, or its absence)."""

    model_config = _example(
        {
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "checkpoint": _CHECKPOINT,
            "verifier_key": "authenticator.local/log+1a2b3c4d+AdGhpcyBpcyBhbiBleGFtcGxlIGtleSBvZiAzMiBieXRlcyE=",
            "item_head": {
                "siblings": [_HASH, _HASH],
                "terminal": {"key": _HASH, "index": 7, "leaf_hash": _HASH, "count": 3},
            },
        }
    )

    item_id: str
    checkpoint: str
    verifier_key: str
    item_head: ItemHeadProof


class Trace(BaseModel):
    """An item's whole history, verifiable offline with ``authenticator trace verify``.

    ``item_head`` proves that the history is complete: the checkpoint commits to the item's
    latest entry and its count, so a trace cut before its newest events does not verify."""

    model_config = _example(
        {
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "checkpoint": _CHECKPOINT,
            "verifier_key": "authenticator.local/log+1a2b3c4d+AdGhpcyBpcyBhbiBleGFtcGxlIGtleSBvZiAzMiBieXRlcyE=",
            "events": [{"index": 7, "entry": "eyJib2R5Ijp7fX0=", "leaf_hash": _HASH, "inclusion_proof": [_HASH]}],
        }
    )
    item_id: str
    checkpoint: str
    verifier_key: str
    item_head: ItemHeadProof
    events: list[TraceEvent]
    consistency: Consistency | None = None


class Evidence(BaseModel):
    checkpoint: str
    verifier_key: str
    events: list[TraceEvent]


# --- items ------------------------------------------------------------------------------------


class ItemCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"category": "bag", "brand": "Hermès", "model": "Birkin 30", "serial_number": "X-1234-AB"}]
        },
    )
    category: Category
    brand: FreeText = Field(min_length=1, max_length=200)
    model: FreeText = Field(min_length=1, max_length=200)
    serial_number: Annotated[str, Field(min_length=1, max_length=200), FREE_TEXT] | None = Field(
        default=None,
        description="Stored only as a salted commitment; the salt is answered once, keep it to prove the serial.",
    )


class Item(BaseModel):
    model_config = _example(
        {
            "id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "category": "bag",
            "brand": "Hermès",
            "model": "Birkin 30",
            "serial_commitment": None,
            "platform": "plt_0a1b2c3d4e5f60718293a4b5",
            "registered_at": "2026-11-25T16:00:00.000000Z",
            "badge": {"level": "inconclusive", "reason": "This item has not been assessed yet.", "evidence": []},
            "trace_url": "/v1/items/itm_5b1f0c2a9d3e4f5a6b7c8d9e/trace",
        }
    )
    id: str
    category: str
    brand: str
    model: str
    serial_commitment: str | None
    platform: str
    registered_at: str
    badge: Badge
    trace_url: str


class ItemCreated(Item):
    receipt: Receipt
    serial_salt: str | None = Field(description="Hex salt of the serial commitment; shown once.")


# --- assessments ------------------------------------------------------------------------------


class ViewRef(BaseModel):
    """A view of the item's capture guide (``GET /v1/capture-guides/{category}``)."""

    id: str
    name: str
    instruction: str = Field(description="What the photo of this view should show.")


class PhotoVerdict(BaseModel):
    sha256: str
    probability_authentic: float | None = Field(description="Null for a photo that was set aside: no score at all.")
    category: str | None
    reasons: list[ReasonOut]
    set_aside: bool = Field(
        default=False, description="Left out of the verdict (unreadable, quality, not the item, unfamiliar)."
    )
    file: str | None = None
    heatmap_url: str | None = None
    reused_from: Any = None
    erased: bool = Field(default=False, description="The photo was taken back (`photos.erased`): its bytes are gone.")
    erased_at: str | None = None
    view: str | None = Field(
        default=None, description="The view the uploader declared (`unspecified`); null when the upload declared none."
    )


class Assessment(BaseModel):
    model_config = _example(
        {
            "id": "asm_9f8e7d6c5b4a392817161514",
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "decision": "authentic",
            "probability_authentic": 0.97,
            "category": "bag",
            "reasons": [],
            "thresholds": {"authentic_above": 0.9, "counterfeit_below": 0.1},
            "model": {"sha256": "ab" * 32, "name": "authenticator", "version": "1.0.0"},
            "photos": [
                {
                    "sha256": "cd" * 32,
                    "probability_authentic": 0.96,
                    "category": "bag",
                    "reasons": [],
                    "file": "front.jpg",
                    "heatmap_url": None,
                }
            ],
            "index": 41,
            "recorded_at": "2026-11-25T16:00:00.000000Z",
            "receipt": {
                "index": 41,
                "leaf_hash": _HASH,
                "tree_size": 42,
                "checkpoint": _CHECKPOINT,
                "inclusion_proof": [_HASH],
            },
        }
    )
    id: str
    item_id: str
    decision: Decision
    probability_authentic: float | None
    category: str | None
    reasons: list[ReasonOut]
    thresholds: Thresholds
    model: ModelRef
    photos: list[PhotoVerdict]
    missing_views: list[ViewRef] | None = Field(
        default=None,
        description="Required views of the item's capture guide no photo was declared as (reason `missing_views`); "
        "null when the upload declared no views.",
    )
    index: int
    recorded_at: str
    receipt: Receipt


class PhotoErasure(BaseModel):
    """A `photos.erased` record: which photos of an assessment were taken back, by whom, when."""

    model_config = _example(
        {
            "assessment_id": "asm_9f8e7d6c5b4a392817161514",
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "photo_sha256": ["cd" * 32],
            "by": "plt_0a1b2c3d4e5f60718293a4b5",
            "reason": "seller request",
            "erased_at": "2026-11-28T09:00:00.000000Z",
            "index": 57,
            "receipt": {
                "index": 57,
                "leaf_hash": _HASH,
                "tree_size": 58,
                "checkpoint": _CHECKPOINT,
                "inclusion_proof": [_HASH],
            },
        }
    )
    assessment_id: str
    item_id: str
    photo_sha256: list[str] = Field(description="The hashes this record erased.")
    by: str = Field(description="The principal id that erased them, or `operator` (retention).")
    reason: str | None
    erased_at: str = Field(description="The entry's own time.")
    index: int
    receipt: Receipt


# --- labs and certificates ---------------------------------------------------------------------


class LabCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Geneva Appraisal Lab",
                    "accreditation": "ISO/IEC 17025 #1234",
                    "public_key": "MCowBQYDK2VwAyEA...",
                }
            ]
        },
    )
    name: FreeText = Field(min_length=1, max_length=200)
    accreditation: FreeText = Field(min_length=1, max_length=500)
    public_key: str = Field(min_length=1, max_length=1000, description="Ed25519: PEM, or base64 of the raw 32 bytes.")


class DsseSignature(BaseModel):
    keyid: str | None = None
    sig: B64


class DsseEnvelope(BaseModel):
    """A DSSE envelope; see docs/certificates.md for the payload and how to sign it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payloadType": "application/vnd.authenticator.certificate+json",
                    "payload": "eyJpbnNwZWN0aW9uX2RhdGUiOiIyMDI2LTExLTI1Ii4uLn0=",
                    "signatures": [{"keyid": "ef" * 32, "sig": "c2lnbmF0dXJl"}],
                }
            ]
        }
    )
    payloadType: str
    payload: B64
    signatures: list[DsseSignature]


class Revocation(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "Stitching re-examined: replica."}]}
    )
    reason: FreeText = Field(min_length=1, max_length=500)


# --- listings, custody, models, keys -----------------------------------------------------------


class ListingCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
                    "title": "Hermès Birkin 30 Himalaya",
                    "price": "45000.00",
                    "currency": "EUR",
                }
            ]
        },
    )
    item_id: str = Field(min_length=1, max_length=128)
    title: FreeText = Field(min_length=1, max_length=500)
    price: str = Field(pattern=r"^(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,6})?$", description="Decimal text, never a float.")
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class ListingClose(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "sold"}]})
    reason: FreeText = Field(min_length=1, max_length=500)


class Listing(BaseModel):
    model_config = _example(
        {
            "id": "lst_0a1b2c3d4e5f60718293a4b5",
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "platform": "plt_0a1b2c3d4e5f60718293a4b5",
            "title": "Hermès Birkin 30 Himalaya",
            "price": "45000.00",
            "currency": "EUR",
            "status": "open",
            "closed_reason": None,
            "published_at": "2026-11-25T16:00:00.000000Z",
            "badge": {
                "level": "lab_certified",
                "reason": "An independent lab inspected and certified this item.",
                "evidence": [43],
            },
            "proof": {
                "checkpoint": _CHECKPOINT,
                "verifier_key": "authenticator.local/log+1a2b3c4d+AdGhpcw==",
                "events": [{"index": 43, "entry": "eyJib2R5Ijp7fX0=", "leaf_hash": _HASH, "inclusion_proof": [_HASH]}],
            },
            "trace_url": "/v1/items/itm_5b1f0c2a9d3e4f5a6b7c8d9e/trace",
        }
    )
    id: str
    item_id: str
    platform: str
    title: str | None
    price: str
    currency: str
    status: Literal["open", "closed"]
    closed_reason: str | None
    published_at: str
    badge: Badge
    proof: Evidence
    trace_url: str
    receipt: Receipt | None = None


class CustodyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"event": "received_for_consignment", "counterparty": "seller-8841"}]},
    )
    event: Literal["received_for_consignment", "bought_back", "consigned", "sold"]
    counterparty: Annotated[str, Field(min_length=1, max_length=200), FREE_TEXT] | None = Field(
        default=None, description="Kept out of the log: only a salted commitment."
    )


class CustodyRecorded(BaseModel):
    model_config = _example(
        {
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "event": "sold",
            "counterparty_commitment": None,
            "counterparty_salt": None,
            "receipt": {
                "index": 44,
                "leaf_hash": _HASH,
                "tree_size": 45,
                "checkpoint": _CHECKPOINT,
                "inclusion_proof": [],
            },
        }
    )
    item_id: str
    event: str
    counterparty_commitment: str | None
    counterparty_salt: str | None
    receipt: Receipt


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "platform", "name": "Acme Resale"}]}
    )
    role: Literal["admin", "platform"]
    name: FreeText = Field(min_length=1, max_length=200)


class PreviewPhoto(BaseModel):
    file: str | None
    sha256: str
    probability_authentic: float | None = Field(description="Null for a photo that was set aside: no score at all.")
    category: str | None
    reasons: list[ReasonOut]
    set_aside: bool = Field(description="Left out of the verdict (unreadable, quality, not the item, unfamiliar).")
    usable: bool = Field(description="Counts towards recording: at least one usable photo is needed.")
    retake: str | None = Field(description="For a set-aside photo: what a retake should show.")
    reused_from: Any = None
    view: str | None = Field(default=None, description="The declared view; null when the upload declared none.")


class AssessmentPreview(BaseModel):
    """What recording these photos would give, with nothing stored or appended."""

    model_config = _example(
        {
            "recorded": False,
            "item_id": None,
            "decision": "inconclusive",
            "probability_authentic": 0.55,
            "category": "bag",
            "reasons": [{"code": "uncertain_score", "message": "The photos do not allow a confident verdict."}],
            "thresholds": {"authentic_above": 0.9, "counterfeit_below": 0.1},
            "model": {"sha256": "ab" * 32, "name": "authenticator", "version": "1.0.0"},
            "photos": [
                {
                    "file": "front.jpg",
                    "sha256": "cd" * 32,
                    "probability_authentic": 0.55,
                    "category": "bag",
                    "reasons": [],
                    "set_aside": False,
                    "usable": True,
                    "retake": None,
                },
                {
                    "file": "blurred.jpg",
                    "sha256": "ef" * 32,
                    "probability_authentic": None,
                    "category": None,
                    "reasons": [{"code": "blurred", "message": "The photo is blurred: hold the phone steady."}],
                    "set_aside": True,
                    "usable": False,
                    "retake": "sharp edges and readable stamps: hold the phone steady and tap the item to focus",
                },
            ],
            "recordable": True,
            "refusal": None,
        }
    )
    recorded: Literal[False] = False
    item_id: str | None
    decision: Decision = Field(description="Provisional: what recording these photos now would give.")
    probability_authentic: float | None
    category: str | None
    reasons: list[ReasonOut]
    thresholds: Thresholds
    model: ModelRef
    photos: list[PreviewPhoto]
    missing_views: list[ViewRef] | None = Field(
        default=None, description="Required views no photo was declared as; null when the upload declared no views."
    )
    recordable: bool = Field(description="Whether recording these photos would be accepted.")
    refusal: str | None = Field(description="Why recording them would be refused (no usable photo).")
