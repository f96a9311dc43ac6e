"""Request and response bodies of the HTTP API, with the examples shown at ``/docs``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authenticator.contracts.assessments import Assessment as Assessment
from authenticator.contracts.assessments import AssessmentPreview as AssessmentPreview
from authenticator.contracts.assessments import PhotoErasure as PhotoErasure
from authenticator.contracts.assessments import PhotoVerdict as PhotoVerdict
from authenticator.contracts.assessments import PreviewPhoto as PreviewPhoto
from authenticator.contracts.assessments import ViewRef as ViewRef
from authenticator.contracts.examples import B64
from authenticator.contracts.examples import example as _example
from authenticator.contracts.items import Consistency as Consistency
from authenticator.contracts.items import Evidence as Evidence
from authenticator.contracts.items import Item as Item
from authenticator.contracts.items import ItemCreated as ItemCreated
from authenticator.contracts.items import ItemHead as ItemHead
from authenticator.contracts.items import ItemHeadProof as ItemHeadProof
from authenticator.contracts.items import ItemHeadTerminal as ItemHeadTerminal
from authenticator.contracts.items import Trace as Trace
from authenticator.contracts.items import TraceEvent as TraceEvent
from authenticator.contracts.labs import Certificate as Certificate
from authenticator.contracts.listings import CustodyRecorded as CustodyRecorded
from authenticator.contracts.listings import Listing as Listing
from authenticator.text import FREE_TEXT, FreeText
from authenticator.vision.category import Category

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


class CustodyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"event": "received_for_consignment", "counterparty": "seller-8841"}]},
    )
    event: Literal["received_for_consignment", "bought_back", "consigned", "sold"]
    counterparty: Annotated[str, Field(min_length=1, max_length=200), FREE_TEXT] | None = Field(
        default=None, description="Kept out of the log: only a salted commitment."
    )


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "platform", "name": "Acme Resale"}]}
    )
    role: Literal["admin", "platform"]
    name: FreeText = Field(min_length=1, max_length=200)
