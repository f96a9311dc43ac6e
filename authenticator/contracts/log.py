"""The log itself as the API serves it to auditors and witnesses: its key, proofs and raw entries."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from authenticator.contracts.examples import B64, HASH, example


class LogKey(BaseModel):
    model_config = example(
        {
            "origin": "authenticator.local/log",
            "verifier_key": "authenticator.local/log+1a2b3c4d+AdGhpcyBpcyBhbiBleGFtcGxlIGtleSBvZiAzMiBieXRlcyE=",
            "witnesses": ["witness.example.org/w1+5e6f7a8b+BHRoaXMgaXMgYW4gZXhhbXBsZSBrZXkgb2YgMzIgYnl0ZXMh"],
        }
    )
    origin: str
    verifier_key: str
    witnesses: list[str] = Field(
        default_factory=list,
        description="C2SP verifier keys (type 0x04, tlog-cosignature) of the witnesses the log submits its "
        "checkpoints to; their cosignatures come with the checkpoint. Get them from their operators too.",
    )


class InclusionProof(BaseModel):
    model_config = example({"index": 3, "size": 42, "leaf_hash": HASH, "hashes": [HASH, HASH]})
    index: int
    size: int
    leaf_hash: B64
    hashes: list[B64]


class ConsistencyProof(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True, json_schema_extra={"examples": [{"from": 10, "to": 42, "hashes": [HASH]}]}
    )
    from_: int = Field(alias="from")
    to: int
    hashes: list[B64]


class LogEntry(BaseModel):
    index: int
    entry: B64
    leaf_hash: B64


class LogEntries(BaseModel):
    model_config = example({"start": 0, "entries": [{"index": 0, "entry": "eyJib2R5Ijp7fX0=", "leaf_hash": HASH}]})
    start: int
    entries: list[LogEntry]
