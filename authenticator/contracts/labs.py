"""Labs and their certificates: who may certify an item, and what a lab certified."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from authenticator.contracts.common import Receipt
from authenticator.contracts.examples import B64, example


class Lab(BaseModel):
    model_config = example(
        {
            "id": "lab_0a1b2c3d4e5f60718293a4b5",
            "name": "Geneva Appraisal Lab",
            "accreditation": "ISO/IEC 17025 #1234",
            "public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            "keyid": "ef" * 32,
            "created_at": "2026-11-25T16:00:00.000000Z",
        }
    )
    id: str
    name: str
    accreditation: str
    public_key: str
    keyid: str
    created_at: str


class LabCreated(Lab):
    api_key: str = Field(description="The lab's API key: shown once, store it safely.")
    key_id: str


class LabList(BaseModel):
    """Every registered lab: where to send an item for a physical inspection."""

    model_config = example(
        {
            "labs": [
                {
                    "id": "lab_0a1b2c3d4e5f60718293a4b5",
                    "name": "Geneva Appraisal Lab",
                    "accreditation": "ISO/IEC 17025 #1234",
                    "public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
                    "keyid": "ef" * 32,
                    "created_at": "2026-11-25T16:00:00.000000Z",
                }
            ]
        }
    )
    labs: list[Lab]


class Certificate(BaseModel):
    model_config = example(
        {
            "id": "crt_0123456789abcdef01234567",
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "lab_id": "lab_0a1b2c3d4e5f60718293a4b5",
            "outcome": "authentic",
            "inspection_date": "2026-11-25",
            "method": "physical inspection, UV, stitching",
            "status": "active",
            "revocation_reason": None,
            "attached_index": 43,
            "revoked_index": None,
            "payload_sha256": "12" * 32,
            "envelope": "eyJwYXlsb2FkIjoiLi4uIn0=",
        }
    )
    id: str
    item_id: str
    lab_id: str
    outcome: Literal["authentic", "counterfeit"]
    inspection_date: str
    method: str | None
    status: Literal["active", "revoked"]
    revocation_reason: str | None
    attached_index: int
    revoked_index: int | None
    payload_sha256: str
    envelope: B64 | None = Field(description="Base64 of the envelope as the lab sent it (null if deleted).")
    receipt: Receipt | None = None
