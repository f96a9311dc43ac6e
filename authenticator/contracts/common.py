"""Pieces every answer shares: a log receipt, a badge, a model reference, a reason."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from authenticator.contracts.examples import B64, CHECKPOINT, HASH, example

Level = Literal["lab_certified", "ai_verified", "inconclusive", "warning"]


class Receipt(BaseModel):
    """Proof that an entry is in the log: verify ``inclusion_proof`` against the checkpoint's root."""

    model_config = example(
        {
            "index": 41,
            "leaf_hash": HASH,
            "tree_size": 42,
            "checkpoint": CHECKPOINT,
            "inclusion_proof": [HASH],
            "entry": "eyJib2R5Ijp7fX0=",
        }
    )
    index: int
    leaf_hash: B64
    tree_size: int
    checkpoint: str
    inclusion_proof: list[B64]
    entry: B64 | None = Field(default=None, description="Standard base64 of the exact canonical entry bytes.")


class Badge(BaseModel):
    level: Level
    reason: str
    evidence: list[int] = Field(description="Log indexes of the entries the badge rests on.")


class ReasonOut(BaseModel):
    code: str
    message: str


class ModelRef(BaseModel):
    sha256: str
    name: str | None
    version: str


class Appended(BaseModel):
    """The answer of a command whose entry was appended but whose full answer could not be read
    back after the commit: the resource's id and the receipt, so the client still learns of it."""

    id: str
    receipt: Receipt
