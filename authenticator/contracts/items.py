"""An item as the API answers it, and the proofs of its history: trace, item head, evidence."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from authenticator.contracts.common import Badge, Receipt
from authenticator.contracts.examples import B64, CHECKPOINT, HASH, example


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

    model_config = example(
        {
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "checkpoint": CHECKPOINT,
            "verifier_key": "authenticator.local/log+1a2b3c4d+AdGhpcyBpcyBhbiBleGFtcGxlIGtleSBvZiAzMiBieXRlcyE=",
            "item_head": {
                "siblings": [HASH, HASH],
                "terminal": {"key": HASH, "index": 7, "leaf_hash": HASH, "count": 3},
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

    model_config = example(
        {
            "item_id": "itm_5b1f0c2a9d3e4f5a6b7c8d9e",
            "checkpoint": CHECKPOINT,
            "verifier_key": "authenticator.local/log+1a2b3c4d+AdGhpcyBpcyBhbiBleGFtcGxlIGtleSBvZiAzMiBieXRlcyE=",
            "events": [{"index": 7, "entry": "eyJib2R5Ijp7fX0=", "leaf_hash": HASH, "inclusion_proof": [HASH]}],
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


class Item(BaseModel):
    model_config = example(
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
