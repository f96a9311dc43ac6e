"""What a marketplace sees of a listing and of a custody transfer it recorded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from authenticator.contracts.common import Badge, Receipt
from authenticator.contracts.examples import CHECKPOINT, HASH, example
from authenticator.contracts.items import Evidence


class Listing(BaseModel):
    model_config = example(
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
                "checkpoint": CHECKPOINT,
                "verifier_key": "authenticator.local/log+1a2b3c4d+AdGhpcw==",
                "events": [{"index": 43, "entry": "eyJib2R5Ijp7fX0=", "leaf_hash": HASH, "inclusion_proof": [HASH]}],
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


class CustodyRecorded(BaseModel):
    model_config = example(
        {
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "event": "sold",
            "counterparty_commitment": None,
            "counterparty_salt": None,
            "receipt": {
                "index": 44,
                "leaf_hash": HASH,
                "tree_size": 45,
                "checkpoint": CHECKPOINT,
                "inclusion_proof": [],
            },
        }
    )
    item_id: str
    event: str
    counterparty_commitment: str | None
    counterparty_salt: str | None
    receipt: Receipt
