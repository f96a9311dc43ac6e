"""The ledger's storage and proofs, on SQLite and on the real PostgreSQL server.

Proofs read from storage are checked against a naive recursive RFC 9162 root computed here
from the entries' bytes, and with the verifiers of ``merkle.py``.
"""

from __future__ import annotations

import base64
import hashlib
import random
from functools import cache
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from authenticator.errors import EntryValidationError, NotFound, ProofError
from authenticator.ledger import sql
from authenticator.ledger.checkpoint import CheckpointSigner, verify_checkpoint
from authenticator.ledger.entries import canonical_bytes, make_entry, parse_entry
from authenticator.ledger.log import Ledger, NewEntry
from authenticator.ledger.merkle import EMPTY_ROOT, hash_children, hash_leaf, verify_consistency, verify_inclusion
from authenticator.ledger.proofplan import inclusion_plan
from authenticator.ledger.tree import inclusion_proof_ranges, range_nodes
from authenticator.ledger.verify import verify_ledger
from tests.ledger_samples import ORIGIN, sample_entries, sample_entry


def naive_root(leaves: list[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) straight from RFC 9162 §2.1.1."""
    if hi == lo:
        return EMPTY_ROOT
    if hi - lo == 1:
        return leaves[lo]
    k = 1 << ((hi - lo - 1).bit_length() - 1)
    return hash_children(naive_root(leaves, lo, lo + k), naive_root(leaves, lo + k, hi))


def fast_root(leaves: list[bytes]) -> bytes:
    """The same root level by level (for 100,000 leaves); checked against naive_root below."""
    if not leaves:
        return EMPTY_ROOT
    parts: list[bytes] = []
    start = 0
    n = len(leaves)
    while start < n:  # perfect parts, largest first, folded from the right
        k = 1 << ((n - start).bit_length() - 1)
        level = leaves[start : start + k]
        while len(level) > 1:
            level = [hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        parts.append(level[0])
        start += k
    root = parts[-1]
    for left in reversed(parts[:-1]):
        root = hash_children(left, root)
    return root


def test_inclusion_plan_matches_rfc_ranges() -> None:
    for size in range(1, 130):
        for index in range(size):
            plan = inclusion_plan(index, size)
            ranges = inclusion_proof_ranges(index, size)
            assert [tuple(range_nodes(lo, hi)) for lo, hi in ranges] == plan


def test_migrations_head_and_version_table(ledger: Ledger) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(sql.MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(cfg).get_current_head() == sql.LEDGER_HEAD
    tables = set(inspect(ledger.engine).get_table_names())
    assert {"log_entries", "log_nodes", "log_checkpoints", "alembic_version_ledger"} <= tables
    assert "alembic_version" not in tables  # the API keeps its own Alembic environment
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version_ledger").scalar() == sql.LEDGER_HEAD


def test_first_open_signs_the_empty_tree_and_reopen_is_idempotent(db_url: str, signer: CheckpointSigner) -> None:
    first = Ledger.open(db_url, signer)
    try:
        assert first.size() == 0
        cp = verify_checkpoint(first.latest_checkpoint(), signer.verifier_key, ORIGIN)
        assert (cp.size, cp.root_hash) == (0, EMPTY_ROOT)
        first.append(sample_entry(0, "item-a"))
    finally:
        first.close()
    again = Ledger.open(db_url, signer)
    try:
        assert again.size() == 1
        assert again.checkpoint_at(0) is not None and again.checkpoint_at(1) == again.latest_checkpoint()
    finally:
        again.close()


def test_open_refuses_another_key(db_url: str, signer: CheckpointSigner, tmp_path: Path) -> None:
    from authenticator.errors import ConfigurationError

    Ledger.open(db_url, signer).close()
    other = CheckpointSigner.load_or_create(tmp_path / "other.key", ORIGIN)
    with pytest.raises(ConfigurationError):
        Ledger.open(db_url, other)


def test_proofs_for_every_index_of_every_size_up_to_100(ledger: Ledger) -> None:
    receipts = []
    for i in range(100):  # one batch per entry: a signed checkpoint for every size 1..100
        receipts.append(ledger.append(sample_entry(i, f"item-{i % 7}")))
    entries = ledger.entries(0, 100)
    assert [e.index for e in entries] == list(range(100))
    leaves = [hash_leaf(e.data) for e in entries]
    assert leaves == [e.leaf_hash for e in entries]

    @cache
    def root(size: int) -> bytes:
        return naive_root(leaves, 0, size)

    for size in range(1, 101):
        assert ledger.root_at(size) == root(size)
        cp = verify_checkpoint(ledger.checkpoint_at(size) or "", ledger.verifier_key, ORIGIN)
        assert (cp.size, cp.root_hash) == (size, root(size))
        for index in range(size):
            proof = ledger.inclusion_proof(index, size)
            verify_inclusion(index, size, leaves[index], proof, root(size))
    for r in receipts:  # every receipt proves its entry against the checkpoint it carries
        cp = verify_checkpoint(r.checkpoint, ledger.verifier_key, ORIGIN)
        assert (cp.size, r.tree_size) == (r.index + 1, r.index + 1)
        verify_inclusion(r.index, r.tree_size, r.leaf_hash, r.inclusion_proof, cp.root_hash)
    for size1 in range(1, 65):
        for size2 in range(size1, 65):
            verify_consistency(size1, size2, ledger.consistency_proof(size1, size2), root(size1), root(size2))
    assert ledger.consistency_proof(0, 10) == []
    assert ledger.inclusion_proof(99) == ledger.inclusion_proof(99, 100)


def test_batches_fill_each_items_chain(ledger: Ledger) -> None:
    first = ledger.append_batch(sample_entries(10, items=3))
    second = ledger.append_batch(sample_entries(7, items=3, start=10))
    assert [r.index for r in first + second] == list(range(17))
    assert {r.checkpoint for r in first} == {ledger.checkpoint_at(10)}
    assert {r.checkpoint for r in second} == {ledger.latest_checkpoint()}
    for r in first + second:
        cp = verify_checkpoint(r.checkpoint, ledger.verifier_key, ORIGIN)
        verify_inclusion(r.index, cp.size, r.leaf_hash, r.inclusion_proof, cp.root_hash)
    for item in ("item-0", "item-1", "item-2"):
        history = ledger.history(item)
        assert [e.index for e in history] == sorted(e.index for e in history)
        prev = None
        for e in history:
            entry = parse_entry(e.data)
            assert (entry.item, entry.type, entry.prev_hash) == (item, e.type, prev)
            prev = e.leaf_hash
        assert ledger.last_leaf_hash(item) == prev
    assert ledger.last_leaf_hash("never-seen") is None
    assert ledger.history("never-seen") == []
    for r in second:
        assert ledger.index_of(r.leaf_hash) == r.index
        assert ledger.entry(r.index).leaf_hash == r.leaf_hash
    assert verify_ledger(ledger).ok


def test_invalid_entry_appends_nothing(ledger: Ledger) -> None:
    ledger.append(sample_entry(0, "item-a"))
    bad = NewEntry("listing.published", "item-a", {"listing_id": "x", "price": 12.5})
    with pytest.raises(EntryValidationError):
        ledger.append_batch([sample_entry(1, "item-a"), bad])
    with pytest.raises(EntryValidationError):
        ledger.append(NewEntry("no.such.type", "item-a", {}))
    assert ledger.size() == 1
    assert ledger.append_batch([]) == []
    assert ledger.size() == 1


def test_reads_beyond_the_log(ledger: Ledger) -> None:
    ledger.append_batch(sample_entries(5))
    with pytest.raises(NotFound):
        ledger.entry(5)
    with pytest.raises(NotFound):
        ledger.index_of(b"\x00" * 32)
    with pytest.raises(NotFound):
        ledger.inclusion_proof(5)
    with pytest.raises(NotFound):
        ledger.inclusion_proof(0, 6)
    with pytest.raises(ProofError):
        ledger.inclusion_proof(4, 3)
    with pytest.raises(NotFound):
        ledger.root_at(6)
    with pytest.raises(NotFound):
        ledger.consistency_proof(2, 6)
    with pytest.raises(ProofError):
        ledger.consistency_proof(4, 3)
    assert ledger.checkpoint_at(3) is None  # one batch of 5: no tree of size 3 was signed
    assert ledger.root_at(0) == EMPTY_ROOT
    assert [e.index for e in ledger.entries(3, 100)] == [3, 4]
    assert ledger.entries(5, 5) == []


def test_random_spot_checks_on_a_100000_entry_log(ledger: Ledger, db_url: str) -> None:
    n = 100_000
    batch = 5_000
    for start in range(0, n, batch):
        ledger.append_batch(sample_entries(batch, items=2_000, start=start))
    assert ledger.size() == n
    leaves = [e.leaf_hash for e in ledger.entries(0, n)]
    assert len(leaves) == n
    assert fast_root(leaves[:1000]) == naive_root(leaves, 0, 1000)
    rng = random.Random(2)
    sizes = [n, 65_536, 65_537, 99_999, *(rng.randrange(1, n + 1) for _ in range(6))]
    roots = {size: fast_root(leaves[:size]) for size in sizes}
    for size, root in roots.items():
        assert ledger.root_at(size) == root
    for _ in range(300):
        size = rng.choice(sizes)
        index = rng.randrange(size)
        verify_inclusion(index, size, leaves[index], ledger.inclusion_proof(index, size), roots[size])
    for _ in range(100):
        size1, size2 = sorted(rng.sample(sizes, 2))
        verify_consistency(size1, size2, ledger.consistency_proof(size1, size2), roots[size1], roots[size2])
    for index in rng.sample(range(n), 50):
        assert hashlib.sha256(b"\x00" + ledger.entry(index).data).digest() == leaves[index]
    entry = parse_entry(ledger.entry(n - 1).data)
    assert entry.prev is not None
    assert ledger.index_of(base64.b64decode(entry.prev)) < n - 1
    report = verify_ledger(ledger, workers=2)  # large enough for the worker processes
    assert report.ok, report.problems
    assert (report.entries_checked, report.checkpoints_checked, report.items_checked) == (n, n // batch + 1, 2_000)
    # The worker processes report a broken chain at its index too.
    forged = make_entry("listing.closed", "item-7", {"listing_id": "li-7", "reason": "sold"}, None)
    ledger._append_prebuilt([("item-7", "listing.closed", canonical_bytes(forged))])
    assert verify_ledger(ledger, workers=2).first_bad_index == n


def test_two_writers_on_one_log_keep_every_items_chain(db_url: str, signer: CheckpointSigner) -> None:
    """Each Ledger caches item heads; a writer that did not see the other's batches must catch
    up (or start over, past its catch-up limit) before chaining."""
    first, second = Ledger.open(db_url, signer), Ledger.open(db_url, signer)
    try:
        second._heads.MAX_CATCH_UP = 6  # force the start-over path too
        for round_ in range(6):
            writer = first if round_ % 2 == 0 else second
            n = 3 if round_ < 4 else 10  # the last rounds outgrow the catch-up limit
            writer.append_batch(sample_entries(n, items=2, start=100 * round_))
        for item in ("item-0", "item-1"):
            prev = None
            for e in first.history(item):
                assert parse_entry(e.data).prev_hash == prev
                prev = e.leaf_hash
        assert verify_ledger(second).ok
    finally:
        first.close()
        second.close()
