"""Traces and log reads: everything a buyer, auditor or witness needs to check the log offline."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from authenticator.contracts.items import (
    Consistency,
    Evidence,
    ItemHead,
    ItemHeadProof,
    ItemHeadTerminal,
    Trace,
    TraceEvent,
)
from authenticator.contracts.log import ConsistencyProof, InclusionProof, LogEntries, LogEntry, LogKey
from authenticator.errors import InvalidInput, NotFound
from authenticator.ledger.item_map import MapProof
from authenticator.ledger.log import StoredEntry
from authenticator.services.context import ServiceContext, b64
from authenticator.services.witnessing import CosignatureStore, configured_witnesses, cosigned_note

MAX_ENTRIES_PER_READ = 1000


def served_checkpoint(ctx: ServiceContext, note: str | None = None) -> str:
    """A signed checkpoint as served (the latest by default): with the configured witnesses'
    cosignatures of its size appended as extra signature lines, once they have cosigned it."""
    note = ctx.ledger.latest_checkpoint() if note is None else note
    return cosigned_note(note, CosignatureStore(ctx.engine), configured_witnesses(ctx.settings))


def proved_events(ctx: ServiceContext, entries: Iterable[StoredEntry], size: int) -> list[TraceEvent]:
    """Entries with their inclusion proofs against the tree of ``size``."""
    return [
        TraceEvent(
            index=e.index,
            entry=b64(e.data),
            leaf_hash=b64(e.leaf_hash),
            inclusion_proof=[b64(h) for h in proof],
        )
        for e, proof in ctx.ledger.proved(list(entries), size)
    ]


def evidence(ctx: ServiceContext, indexes: Iterable[int]) -> Evidence:
    """Entries behind a badge, with the latest checkpoint and proofs against it."""
    note, size = ctx.ledger.latest()
    return Evidence(
        checkpoint=served_checkpoint(ctx, note),
        verifier_key=ctx.ledger.verifier_key,
        events=proved_events(ctx, [ctx.ledger.entry(i) for i in sorted(set(indexes)) if i < size], size),
    )


def item_trace(ctx: ServiceContext, item_id: str, since: int | None = None) -> Trace:
    """The item's whole history in log order, each entry proved against one signed checkpoint.

    With ``since`` (the size of a checkpoint the buyer already holds) the answer also carries
    the consistency proof from that size to this checkpoint's.
    """
    note, size, head = ctx.ledger.item_head(item_id)
    history = [e for e in ctx.ledger.history(item_id) if e.index < size]
    if not history:
        raise NotFound(f"no item {item_id}", item_id=item_id)
    consistency = None
    if since is not None:
        if not 0 <= since <= size:
            raise InvalidInput(f"since must be between 0 and the checkpoint size {size}")
        hashes = [b64(h) for h in ctx.ledger.consistency_proof(since, size)]
        consistency = Consistency.model_validate({"from": since, "to": size, "hashes": hashes})
    return Trace(
        item_id=item_id,
        checkpoint=served_checkpoint(ctx, note),
        verifier_key=ctx.ledger.verifier_key,
        item_head=item_head_proof(head),
        events=proved_events(ctx, history, size),
        consistency=consistency,
    )


def item_head_proof(proof: MapProof) -> ItemHeadProof:
    """An item-map proof as the API answers it (see ``authenticator/ledger/item_map.py``)."""
    terminal = None
    if proof.terminal is not None:
        key, head = proof.terminal
        terminal = ItemHeadTerminal(key=b64(key), index=head.index, leaf_hash=b64(head.leaf_hash), count=head.count)
    return ItemHeadProof(siblings=[b64(h) for h in proof.siblings], terminal=terminal)


def item_head(ctx: ServiceContext, item_id: str) -> ItemHead:
    """The latest checkpoint and the proof of what it commits to for ``item_id``: its head, or
    (for an id the log has never seen) that it holds no such item."""
    note, _size, proof = ctx.ledger.item_head(item_id)
    return ItemHead(
        item_id=item_id,
        checkpoint=served_checkpoint(ctx, note),
        verifier_key=ctx.ledger.verifier_key,
        item_head=item_head_proof(proof),
    )


# --- /v1/log ----------------------------------------------------------------------------------


def log_key(ctx: ServiceContext) -> LogKey:
    return LogKey(
        origin=ctx.ledger.origin,
        verifier_key=ctx.ledger.verifier_key,
        witnesses=[w.verifier_key for w in configured_witnesses(ctx.settings)],
    )


def _tree_size(ctx: ServiceContext, size: int | None) -> int:
    current = ctx.ledger.size()
    if size is None:
        return current
    if size < 1 or size > current:
        raise NotFound(f"the log has {current} entries; there is no tree of size {size}", size=size)
    return size


def inclusion(ctx: ServiceContext, *, index: int | None, leaf_hash: str | None, size: int | None) -> InclusionProof:
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
    return InclusionProof(
        index=index,
        size=n,
        leaf_hash=b64(stored.leaf_hash),
        hashes=[b64(h) for h in ctx.ledger.inclusion_proof(index, n)],
    )


def consistency(ctx: ServiceContext, first: int, second: int) -> ConsistencyProof:
    current = ctx.ledger.size()
    if not 0 <= first <= second:
        raise InvalidInput("need 0 <= from <= to")
    if second > current:
        raise NotFound(f"the log has {current} entries; there is no tree of size {second}", size=second)
    hashes = [b64(h) for h in ctx.ledger.consistency_proof(first, second)]
    return ConsistencyProof.model_validate({"from": first, "to": second, "hashes": hashes})


def entries(ctx: ServiceContext, start: int, end: int) -> LogEntries:
    if start < 0 or end <= start:
        raise InvalidInput("need 0 <= start < end")
    if end - start > MAX_ENTRIES_PER_READ:
        raise InvalidInput(f"at most {MAX_ENTRIES_PER_READ} entries per read")
    rows = ctx.ledger.entries(start, end)
    return LogEntries(
        start=start, entries=[LogEntry(index=e.index, entry=b64(e.data), leaf_hash=b64(e.leaf_hash)) for e in rows]
    )
