"""Offline verification of an item's trace, as a buyer would do it. Pure: no I/O, no database.

Given the trace JSON (``GET /v1/items/{id}/trace``) and the log's verifier key obtained
independently, check that:

1. the checkpoint is signed by that key (C2SP signed note, Ed25519);
2. every event's leaf hash is SHA-256(0x00 || entry bytes) and its inclusion proof leads to
   the checkpoint's root (RFC 9162);
3. every entry is canonical, well-formed and about this item, and the item's hash chain is
   complete and in order: the first entry has ``prev = null`` and each next ``prev`` is the
   leaf hash of the one before, at increasing indexes;
4. the trace is complete: the checkpoint commits to every item's head (its ``item-map`` line,
   see ``authenticator/ledger/item_map.py``) and the trace's ``item_head`` proof shows that
   this item's committed head is the trace's last event, with as many events as shown; a
   trace cut before its newest events fails, saying how many are not shown;
5. with an older checkpoint the buyer kept: it verifies too, and the trace's consistency proof
   shows the current tree extends it (the log was not rewritten in between);
6. with a witness policy (``witnesses`` keys, at least ``min_witnesses`` of them): that many of
   those witnesses cosigned the checkpoint (C2SP tlog-cosignature), each having checked it is
   consistent with every earlier checkpoint it cosigned for this log.

What it cannot see: entries appended after the checkpoint; and without a witness policy, a log
that shows different buyers different trees (a split view).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authenticator.encoding import b64decode_strict
from authenticator.errors import AuthenticatorError
from authenticator.ledger.checkpoint import Checkpoint, verify_checkpoint
from authenticator.ledger.cosignature import Cosignature, CosignatureVerifier, verify_cosignatures
from authenticator.ledger.entries import parse_entry
from authenticator.ledger.item_map import MAP_EXTENSION_PREFIX, Head, MapProof, committed_head, item_key
from authenticator.ledger.merkle import hash_leaf, verify_consistency, verify_inclusion


@dataclass
class EventCheck:
    """The result for one event: ``ok`` with a short reason when it is not."""

    position: int
    index: int | None
    type: str | None = None
    ok: bool = True
    problems: list[str] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.ok = False
        self.problems.append(why)


@dataclass
class TraceReport:
    item_id: str | None
    checkpoint: Checkpoint | None = None
    events: list[EventCheck] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    witnessed_by: list[Cosignature] = field(default_factory=list)
    """Cosignatures of the checkpoint by the witness keys given (verified), in their order."""

    @property
    def ok(self) -> bool:
        return not self.failures and all(e.ok for e in self.events)

    def all_failures(self) -> list[str]:
        out = list(self.failures)
        for e in self.events:
            for p in e.problems:
                out.append(f"event {e.position} (index {e.index}): {p}")
        return out


def _hashes(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    out = [b64decode_strict(h, what) for h in value]
    if any(len(h) != 32 for h in out):
        raise ValueError(f"{what} holds a hash that is not 32 bytes")
    return out


def verify_trace(
    trace: Mapping[str, Any],
    verifier_key: str,
    old_checkpoint: str | None = None,
    *,
    witnesses: Sequence[str] = (),
    min_witnesses: int = 0,
) -> TraceReport:
    """Check a trace against the log key; the report names every check that failed.

    ``witnesses`` are witness verifier keys (type 0x04) obtained independently; the checkpoint
    must carry valid cosignatures of at least ``min_witnesses`` of them (default: no policy)."""
    item_id = trace.get("item_id") if isinstance(trace, Mapping) else None
    report = TraceReport(item_id=item_id if isinstance(item_id, str) else None)
    if report.item_id is None:
        report.failures.append("the trace has no item_id")
        return report
    note = trace.get("checkpoint")
    if not isinstance(note, str):
        report.failures.append("the trace has no checkpoint")
        return report
    try:
        cp = verify_checkpoint(note, verifier_key)
    except AuthenticatorError as exc:
        report.failures.append(f"checkpoint signature: {exc.message}")
        return report
    report.checkpoint = cp
    report.checked.append(f"checkpoint signed by {verifier_key.split('+')[0]} (tree size {cp.size})")
    shown_key = trace.get("verifier_key")
    if isinstance(shown_key, str) and shown_key != verifier_key:
        report.checked.append("note: the trace names another verifier key; only the one you gave was trusted")
    _check_witnesses(report, note, witnesses, min_witnesses)

    events = trace.get("events")
    if not isinstance(events, list) or not events:
        report.failures.append("the trace has no events")
        return report
    prev_leaf: bytes | None = None
    prev_index = -1
    for pos, raw_event in enumerate(events):
        check = EventCheck(position=pos, index=None)
        report.events.append(check)
        if not isinstance(raw_event, Mapping):
            check.fail("not an object")
            prev_leaf = None
            continue
        index = raw_event.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            check.fail("index is not a non-negative integer")
            continue
        check.index = index
        try:
            data = b64decode_strict(raw_event.get("entry"), "entry")
            claimed = b64decode_strict(raw_event.get("leaf_hash"), "leaf_hash")
            proof = _hashes(raw_event.get("inclusion_proof"), "inclusion_proof")
        except ValueError as exc:
            check.fail(str(exc))
            prev_leaf, prev_index = None, index
            continue
        leaf = hash_leaf(data)
        if leaf != claimed:
            check.fail("leaf hash does not match the entry bytes")
        if index >= cp.size:
            check.fail(f"index is beyond the checkpoint's tree size {cp.size}")
        else:
            try:
                verify_inclusion(index, cp.size, leaf, proof, cp.root_hash)
            except AuthenticatorError as exc:
                check.fail(f"inclusion proof: {exc.message}")
        try:
            entry = parse_entry(data)
        except AuthenticatorError as exc:
            check.fail(f"entry: {exc.message}")
            prev_leaf, prev_index = leaf, index
            continue
        check.type = entry.type
        if entry.item != report.item_id:
            check.fail(f"entry is about {entry.item}, not {report.item_id}")
        if index <= prev_index:
            check.fail("events are not in log order")
        expected = None if pos == 0 else prev_leaf
        if pos == 0 and entry.prev is not None:
            check.fail("hash chain: the first event is not the item's first entry (earlier entries are missing)")
        elif pos > 0 and (expected is None or entry.prev_hash != expected):
            check.fail("hash chain: prev is not the leaf hash of the event before (an entry is missing or altered)")
        prev_leaf, prev_index = leaf, index
    if all(e.ok for e in report.events):
        report.checked.append(
            f"{len(events)} events: leaf hashes, inclusion proofs, entries and the hash chain all hold"
        )
    _check_completeness(report, trace, cp)
    if old_checkpoint is not None:
        _check_consistency(report, trace, cp, old_checkpoint, verifier_key)
    return report


def _check_witnesses(report: TraceReport, note: str, witnesses: Sequence[str], min_witnesses: int) -> None:
    """At least ``min_witnesses`` of the ``witnesses`` keys cosigned the checkpoint."""
    if not witnesses and min_witnesses <= 0:
        return
    if min_witnesses > len(witnesses):
        report.failures.append(
            f"witnesses: the policy needs {min_witnesses} witness keys but {len(witnesses)} were given"
        )
        return
    try:
        verifiers = [CosignatureVerifier.from_verifier_key(k) for k in witnesses]
        report.witnessed_by = verify_cosignatures(note, verifiers)
    except AuthenticatorError as exc:
        report.failures.append(f"witnesses: {exc.message}")
        return
    who = ", ".join(f"{c.name} at {format_unix(c.timestamp)}" for c in report.witnessed_by)
    if len(report.witnessed_by) < min_witnesses:
        report.failures.append(
            f"witnesses: {len(report.witnessed_by)} of the required {min_witnesses} witnesses cosigned this "
            f"checkpoint{f' ({who})' if who else ''}; a checkpoint made moments ago may not be cosigned yet"
        )
    elif who:
        report.checked.append(f"witnessed by {who}: consistent with every checkpoint they cosigned before")


def format_unix(seconds: int) -> str:
    """POSIX seconds as an RFC 3339 UTC time (a cosignature's timestamp)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (Unix time)"


def map_root(cp: Checkpoint) -> bytes | None:
    """The item-map root a checkpoint commits to (its ``item-map`` extension line), if any."""
    roots = [line[len(MAP_EXTENSION_PREFIX) :] for line in cp.extensions if line.startswith(MAP_EXTENSION_PREFIX)]
    if len(roots) != 1:
        return None
    root = b64decode_strict(roots[0], "item-map root")
    return root if len(root) == 32 else None


def parse_item_head(raw: Any) -> MapProof:
    """The ``item_head`` proof of a trace (ValueError when malformed)."""
    if not isinstance(raw, Mapping):
        raise ValueError("the trace has no item-head proof")
    siblings = tuple(_hashes(raw.get("siblings"), "item-head siblings"))
    terminal = raw.get("terminal")
    if terminal is None:
        return MapProof(siblings, None)
    if not isinstance(terminal, Mapping):
        raise ValueError("malformed item-head terminal")
    index, count = terminal.get("index"), terminal.get("count")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (index, count)) or count == 0:
        raise ValueError("malformed item-head terminal")
    key = b64decode_strict(terminal.get("key"), "item-head key")
    leaf = b64decode_strict(terminal.get("leaf_hash"), "item-head leaf_hash")
    if len(key) != 32 or len(leaf) != 32:
        raise ValueError("item-head key and leaf_hash are 32 bytes")
    assert isinstance(index, int) and isinstance(count, int)
    return MapProof(siblings, (key, Head(index, leaf, count)))


def _check_completeness(report: TraceReport, trace: Mapping[str, Any], cp: Checkpoint) -> None:
    """Does the trace end at the head the checkpoint commits to for its item?"""
    assert report.item_id is not None
    try:
        root = map_root(cp)
    except ValueError as exc:
        report.failures.append(f"completeness: {exc}")
        return
    if root is None:
        report.failures.append("this checkpoint does not commit to item heads, so the trace cannot be shown complete")
        return
    try:
        head = committed_head(item_key(report.item_id), parse_item_head(trace.get("item_head")), root)
    except ValueError as exc:
        report.failures.append(f"completeness: {exc}")
        return
    shown = report.events
    if head is None:
        report.failures.append(f"the log holds no events of this item, yet the trace shows {len(shown)}")
        return
    if head.count > len(shown):
        n = head.count - len(shown)
        report.failures.append(
            "1 newer event of this item is not shown" if n == 1 else f"{n} newer events of this item are not shown"
        )
        return
    last = shown[-1] if shown else None
    last_leaf = _event_leaf(trace, len(shown) - 1)
    if head.count != len(shown) or last is None or last.index != head.index or last_leaf != head.leaf_hash:
        report.failures.append(f"the trace does not end at the item's committed head (index {head.index})")
        return
    report.checked.append(f"complete: the checkpoint commits to this item's head; all {head.count} events are shown")


def _event_leaf(trace: Mapping[str, Any], pos: int) -> bytes | None:
    events = trace.get("events")
    try:
        raw = events[pos] if isinstance(events, list) and pos >= 0 else None
        return hash_leaf(b64decode_strict(raw.get("entry"), "entry")) if isinstance(raw, Mapping) else None
    except ValueError:
        return None


def _check_consistency(
    report: TraceReport, trace: Mapping[str, Any], cp: Checkpoint, old_note: str, verifier_key: str
) -> None:
    try:
        old = verify_checkpoint(old_note, verifier_key)
    except AuthenticatorError as exc:
        report.failures.append(f"old checkpoint: {exc.message}")
        return
    if old.size > cp.size:
        report.failures.append(f"the old checkpoint (size {old.size}) is newer than the trace's ({cp.size})")
        return
    proof_obj = trace.get("consistency")
    if old.size == cp.size:
        if old.root_hash != cp.root_hash:
            report.failures.append("consistency: same tree size, different root (the log forked)")
        else:
            report.checked.append("consistent with the old checkpoint (same tree)")
        return
    if not isinstance(proof_obj, Mapping) or proof_obj.get("from") != old.size or proof_obj.get("to") != cp.size:
        report.failures.append(f"consistency: the trace has no consistency proof from size {old.size} to {cp.size}")
        return
    try:
        hashes = _hashes(proof_obj.get("hashes"), "consistency hashes")
        verify_consistency(old.size, cp.size, hashes, old.root_hash, cp.root_hash)
    except ValueError as exc:
        report.failures.append(f"consistency: {exc}")
        return
    except AuthenticatorError as exc:
        report.failures.append(f"consistency: {exc.message}")
        return
    report.checked.append(f"consistent with the old checkpoint (size {old.size} -> {cp.size})")
