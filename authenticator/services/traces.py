"""Traces and log reads: everything a buyer, auditor or witness needs to check the log offline."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from authenticator.errors import InvalidInput, NotFound
from authenticator.ledger.checkpoint import Checkpoint
from authenticator.ledger.item_map import MapProof
from authenticator.services.context import ServiceContext, b64
from authenticator.services.witnessing import CosignatureStore, configured_witnesses, cosigned_note

MAX_ENTRIES_PER_READ = 1000


def _checkpoint_size(note: str) -> int:
    # Our own note: its text is everything before the blank line that precedes the signatures.
    return Checkpoint.parse(note.split("\n\n", 1)[0] + "\n").size


def served_checkpoint(ctx: ServiceContext, note: str | None = None) -> str:
    """A signed checkpoint as served (the latest by default): with the configured witnesses'
    cosignatures of its size appended as extra signature lines, once they have cosigned it."""
    note = ctx.ledger.latest_checkpoint() if note is None else note
    return cosigned_note(note, CosignatureStore(ctx.engine), configured_witnesses(ctx.settings))


def proved_events(ctx: ServiceContext, indexes: Iterable[int], size: int) -> list[dict[str, Any]]:
    """Entries with their inclusion proofs against the tree of ``size``."""
    out = []
    for index in sorted(set(indexes)):
        stored = ctx.ledger.entry(index)
        out.append(
            {
                "index": stored.index,
                "entry": b64(stored.data),
                "leaf_hash": b64(stored.leaf_hash),
                "inclusion_proof": [b64(h) for h in ctx.ledger.inclusion_proof(stored.index, size)],
            }
        )
    return out


def evidence(ctx: ServiceContext, indexes: Iterable[int]) -> dict[str, Any]:
    """Entries behind a badge, with the latest checkpoint and proofs against it."""
    note = ctx.ledger.latest_checkpoint()
    size = _checkpoint_size(note)
    return {
        "checkpoint": served_checkpoint(ctx, note),
        "verifier_key": ctx.ledger.verifier_key,
        "events": proved_events(ctx, [i for i in indexes if i < size], size),
    }


def item_trace(ctx: ServiceContext, item_id: str, since: int | None = None) -> dict[str, Any]:
    """The item's whole history in log order, each entry proved against one signed checkpoint.

    With ``since`` (the size of a checkpoint the buyer already holds) the answer also carries
    the consistency proof from that size to this checkpoint's.
    """
    note, size, head = ctx.ledger.item_head(item_id)
    history = [e for e in ctx.ledger.history(item_id) if e.index < size]
    if not history:
        raise NotFound(f"no item {item_id}", item_id=item_id)
    out: dict[str, Any] = {
        "item_id": item_id,
        "checkpoint": served_checkpoint(ctx, note),
        "verifier_key": ctx.ledger.verifier_key,
        "item_head": item_head_json(head),
        "events": [
            {
                "index": e.index,
                "entry": b64(e.data),
                "leaf_hash": b64(e.leaf_hash),
                "inclusion_proof": [b64(h) for h in ctx.ledger.inclusion_proof(e.index, size)],
            }
            for e in history
        ],
    }
    if since is not None:
        if not 0 <= since <= size:
            raise InvalidInput(f"since must be between 0 and the checkpoint size {size}")
        out["consistency"] = {
            "from": since,
            "to": size,
            "hashes": [b64(h) for h in ctx.ledger.consistency_proof(since, size)],
        }
    return out


def item_head_json(proof: MapProof) -> dict[str, Any]:
    """An item-map proof as the API answers it (see ``authenticator/ledger/item_map.py``)."""
    terminal: dict[str, Any] | None = None
    if proof.terminal is not None:
        key, head = proof.terminal
        terminal = {"key": b64(key), "index": head.index, "leaf_hash": b64(head.leaf_hash), "count": head.count}
    return {"siblings": [b64(h) for h in proof.siblings], "terminal": terminal}


def item_head(ctx: ServiceContext, item_id: str) -> dict[str, Any]:
    """The latest checkpoint and the proof of what it commits to for ``item_id``: its head, or
    (for an id the log has never seen) that it holds no such item."""
    note, _size, proof = ctx.ledger.item_head(item_id)
    return {
        "item_id": item_id,
        "checkpoint": served_checkpoint(ctx, note),
        "verifier_key": ctx.ledger.verifier_key,
        "item_head": item_head_json(proof),
    }


# --- /v1/log ----------------------------------------------------------------------------------


def log_key(ctx: ServiceContext) -> dict[str, Any]:
    return {
        "origin": ctx.ledger.origin,
        "verifier_key": ctx.ledger.verifier_key,
        "witnesses": [w.verifier_key for w in configured_witnesses(ctx.settings)],
    }


def _tree_size(ctx: ServiceContext, size: int | None) -> int:
    current = ctx.ledger.size()
    if size is None:
        return current
    if size < 1 or size > current:
        raise NotFound(f"the log has {current} entries; there is no tree of size {size}", size=size)
    return size


def inclusion(ctx: ServiceContext, *, index: int | None, leaf_hash: str | None, size: int | None) -> dict[str, Any]:
    """Inclusion proof by index or by base64 leaf hash, against the tree of ``size``."""
    if (index is None) == (leaf_hash is None):
        raise InvalidInput("give exactly one of index and leaf_hash")
    if leaf_hash is not None:
        try:
            raw = base64.b64decode(leaf_hash, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("leaf_hash must be standard base64") from exc
        if len(raw) != 32:
            raise InvalidInput("leaf_hash must be the base64 of 32 bytes")
        index = ctx.ledger.index_of(raw)
    assert index is not None
    n = _tree_size(ctx, size)
    if not 0 <= index < n:
        raise NotFound(f"no entry {index} in the tree of size {n}", index=index)
    stored = ctx.ledger.entry(index)
    return {
        "index": index,
        "size": n,
        "leaf_hash": b64(stored.leaf_hash),
        "hashes": [b64(h) for h in ctx.ledger.inclusion_proof(index, n)],
    }


def consistency(ctx: ServiceContext, first: int, second: int) -> dict[str, Any]:
    current = ctx.ledger.size()
    if not 0 <= first <= second:
        raise InvalidInput("need 0 <= from <= to")
    if second > current:
        raise NotFound(f"the log has {current} entries; there is no tree of size {second}", size=second)
    return {"from": first, "to": second, "hashes": [b64(h) for h in ctx.ledger.consistency_proof(first, second)]}


def entries(ctx: ServiceContext, start: int, end: int) -> dict[str, Any]:
    if start < 0 or end <= start:
        raise InvalidInput("need 0 <= start < end")
    if end - start > MAX_ENTRIES_PER_READ:
        raise InvalidInput(f"at most {MAX_ENTRIES_PER_READ} entries per read")
    rows = ctx.ledger.entries(start, end)
    return {
        "start": start,
        "entries": [{"index": e.index, "entry": b64(e.data), "leaf_hash": b64(e.leaf_hash)} for e in rows],
    }
