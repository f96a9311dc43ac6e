"""The item map (sparse Merkle tree of item heads): roots against a from-scratch reference,
membership and non-membership proofs, incremental updates, and proofs that must fail."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from authenticator.ledger.item_map import (
    ZERO,
    Head,
    ItemMap,
    MapProof,
    committed_head,
    hash_map_leaf,
    hash_map_node,
    item_key,
    root_from_proof,
)


def reference_root(heads: dict[str, Head]) -> bytes:
    """The definition, computed directly from the set of (key, head) pairs."""
    pairs = sorted((int.from_bytes(item_key(i), "big"), h) for i, h in heads.items())

    def subtree(depth: int, members: list[tuple[int, Head]]) -> bytes:
        if not members:
            return ZERO
        if len(members) == 1:
            return hash_map_leaf(members[0][0].to_bytes(32, "big"), members[0][1])
        left = [m for m in members if not (m[0] >> (255 - depth)) & 1]
        right = [m for m in members if (m[0] >> (255 - depth)) & 1]
        return hash_map_node(subtree(depth + 1, left), subtree(depth + 1, right))

    return subtree(0, pairs)


def head(i: int, count: int = 1) -> Head:
    return Head(i, hashlib.sha256(str(i).encode()).digest(), count)


def test_empty_and_single() -> None:
    m = ItemMap()
    assert m.root() == ZERO == reference_root({})
    assert committed_head(item_key("x"), m.prove("x"), m.root()) is None
    m.set("a", head(0))
    assert m.root() == hash_map_leaf(item_key("a"), head(0)) == reference_root({"a": head(0)})
    assert m.prove("a").siblings == ()
    assert committed_head(item_key("a"), m.prove("a"), m.root()) == head(0)
    assert committed_head(item_key("b"), m.prove("b"), m.root()) is None  # another item's leaf


def test_incremental_roots_and_proofs_match_the_reference() -> None:
    rng = random.Random(7)
    m = ItemMap()
    heads: dict[str, Head] = {}
    for step in range(400):
        item = f"itm_{rng.randrange(150)}"
        old = heads.get(item)
        heads[item] = head(step, (old.count if old else 0) + 1)
        m.set(item, heads[item])
        if step % 37 == 0 or step == 399:
            root = m.root()
            assert root == reference_root(heads)
            for probe in [*rng.sample(sorted(heads), min(10, len(heads))), "itm_absent_1", "itm_absent_2"]:
                proof = m.prove(probe)
                assert len(proof.siblings) <= 40  # O(log n), not 256
                assert committed_head(item_key(probe), proof, root) == heads.get(probe)


def _reference_root_of_keys(heads: dict[int, Head]) -> bytes:
    """The definition again, over raw keys (so a test can pick keys that share long prefixes)."""

    def subtree(depth: int, members: list[int]) -> bytes:
        if not members:
            return ZERO
        if len(members) == 1:
            return hash_map_leaf(members[0].to_bytes(32, "big"), heads[members[0]])
        left = [k for k in members if not (k >> (255 - depth)) & 1]
        right = [k for k in members if (k >> (255 - depth)) & 1]
        return hash_map_node(subtree(depth + 1, left), subtree(depth + 1, right))

    return subtree(0, sorted(heads))


@pytest.mark.parametrize("batch", [1, 3, 50])
def test_keys_sharing_long_prefixes_move_their_neighbours_deeper(batch: int) -> None:
    """A new key that shares a long prefix with an existing one pushes that key's leaf deeper
    (the incremental root places the neighbour again); roots are compared with the definition
    after every batch of ``batch`` updates, proofs for every key and for absent ones."""
    rng = random.Random(batch)
    base = rng.getrandbits(256)
    # Clusters of keys that differ only in their last few bits, plus scattered ones.
    pool = [base ^ rng.getrandbits(b) for b in (1, 2, 3, 5, 8, 13, 40, 100, 200) for _ in range(6)]
    pool += [rng.getrandbits(256) for _ in range(20)]
    pool = list(dict.fromkeys(pool))
    m = ItemMap()
    heads: dict[int, Head] = {}
    for step in range(300):
        key_int = rng.choice(pool)
        old = heads.get(key_int)
        heads[key_int] = head(step, (old.count if old else 0) + 1)
        m._set(key_int.to_bytes(32, "big"), key_int, heads[key_int])
        if step % batch == batch - 1:
            root = m.root()
            assert root == _reference_root_of_keys(heads)
    root = m.root()
    assert root == _reference_root_of_keys(heads)
    for key_int in [*heads, base ^ 1 << 7, rng.getrandbits(256)]:
        key = key_int.to_bytes(32, "big")
        m_proof = m.prove_key(key)
        assert committed_head(key, m_proof, root) == heads.get(key_int)


def test_a_head_that_is_not_the_committed_one_fails() -> None:
    m = ItemMap()
    for i in range(50):
        m.set(f"i{i}", head(i, 3))
    root = m.root()
    proof = m.prove("i7")
    assert proof.terminal is not None
    key, real = proof.terminal
    older = Head(real.index - 1, real.leaf_hash, real.count - 1)  # a trace cut before its newest event
    with pytest.raises(ValueError):
        committed_head(key, MapProof(proof.siblings, (key, older)), root)
    with pytest.raises(ValueError):  # claiming absence of a present item
        committed_head(key, MapProof(proof.siblings, None), root)
    if proof.siblings:
        bad = bytes(32) if proof.siblings[0] != bytes(32) else b"\x01" * 32
        with pytest.raises(ValueError):
            committed_head(key, MapProof((bad, *proof.siblings[1:]), proof.terminal), root)


def test_terminal_off_the_path_is_refused() -> None:
    m = ItemMap()
    for i in range(20):
        m.set(f"i{i}", head(i))
    proof = m.prove("absent-item")
    if proof.terminal is not None and proof.siblings:
        wrong_key = bytes(b ^ 0xFF for b in proof.terminal[0])
        with pytest.raises(ValueError):
            root_from_proof(item_key("absent-item"), MapProof(proof.siblings, (wrong_key, proof.terminal[1])))


def test_ledger_verify_rebuilds_the_map_and_catches_a_signed_lie(tmp_path: Path) -> None:
    """``ledger verify`` recomputes every item's head from the entries and compares the map
    root with the latest checkpoint's: a checkpoint that commits to another map (signed with
    the log's own key, as a compromised operator could) is reported."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from authenticator.ledger.checkpoint import Checkpoint, CheckpointSigner, verify_checkpoint
    from authenticator.ledger.item_map import map_extension
    from authenticator.ledger.log import Ledger
    from authenticator.ledger.verify import verify_ledger
    from tests.ledger_samples import ORIGIN, drop_triggers, sample_entries

    signer = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", signer) as led:
        led.append_batch(sample_entries(40, items=9))
        report = verify_ledger(led, workers=1)
        assert report.ok, report.problems
        assert report.items_checked == 9
        note = led.latest_checkpoint()
        cp = verify_checkpoint(note, signer.verifier_key)
        lie = signer.sign(Checkpoint(cp.origin, cp.size, cp.root_hash, (map_extension(b"\x07" * 32),)))
        drop_triggers(led)
        with led.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE log_checkpoints SET note = ? WHERE size = ?", (lie, cp.size))
        report = verify_ledger(led, workers=1)
        assert not report.ok
        assert any("item map" in p.reason for p in report.problems), report.problems


def test_a_log_from_before_the_item_map_starts_one_when_opened(tmp_path: Path) -> None:
    """A log whose checkpoints do not commit to item heads (an older version wrote them) gets one
    ``log.item_map_started`` entry when the service opens it, so its next checkpoint does;
    ``ledger verify`` (which opens without the key check) reports it as it is and appends nothing."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from authenticator.ledger.checkpoint import Checkpoint, CheckpointSigner, verify_checkpoint
    from authenticator.ledger.log import Ledger
    from authenticator.ledger.verify import verify_ledger
    from tests.ledger_samples import ORIGIN, drop_triggers, sample_entries

    signer = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Ledger.open(url, signer) as led:
        led.append_batch(sample_entries(12, items=3))
        cp = verify_checkpoint(led.latest_checkpoint(), signer.verifier_key)
        old_style = signer.sign(Checkpoint(cp.origin, cp.size, cp.root_hash))  # no item-map line
        drop_triggers(led)
        with led.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE log_checkpoints SET note = ? WHERE size = ?", (old_style, cp.size))
    with Ledger.open(url, signer, check_key=False) as led:
        assert led.size() == 12
    with Ledger.open(url, signer) as led:
        assert led.size() == 13 and led.entry(12).type == "log.item_map_started"
        assert "\nitem-map " in led.latest_checkpoint()
        report = verify_ledger(led, workers=1)
        assert report.ok, report.problems
