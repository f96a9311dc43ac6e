"""The log's hot read path on PostgreSQL: binary array parameters, the raw reader connections
(reused, pinged after idle, dropped when broken, bounded) and the cache of upper proof nodes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from authenticator import db
from authenticator.errors import StorageUnavailable
from authenticator.ledger.caches import UpperNodes
from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.ledger.log import Ledger
from authenticator.ledger.merkle import verify_inclusion
from authenticator.ledger.tree import root_nodes
from tests.ledger_samples import sample_entries
from tests.pg_scratch import PG_DSN, scratch_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with scratch_schema("t_hot") as url:
        yield url


def test_binary_arrays_round_trip() -> None:
    """Each array type reaches the server as the array it stands for, empty ones included."""
    with psycopg.connect(PG_DSN) as conn:
        db.register_arrays(conn)
        cur = conn.cursor(binary=True)
        for array, cast, values in [
            (db.Int4Array, "int4", [0, -1, 2**31 - 1, 7]),
            (db.Int8Array, "int8", [0, -(2**63), 2**63 - 1, 42]),
            (db.ByteaArray, "bytea", [b"", b"\x00\xff", bytes(range(256))]),
            (db.TextArray, "text", ["", "item-1", "Zürich ☃", "a,b{c}\"d'"]),
        ]:
            for sample in (values, []):
                got = cur.execute(f"SELECT %b::{cast}[]", (array.of(sample),)).fetchone()
                assert got is not None
                assert [bytes(v) if isinstance(v, memoryview) else v for v in got[0]] == sample


def _backend_pid(readers: db.HotReaders) -> int:
    with readers.cursor() as cur:
        row = cur.execute("SELECT pg_backend_pid()").fetchone()
        return int(row[0])


def test_hot_readers_reuse_one_connection_and_drop_a_broken_one(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = db.create_ledger_engine(pg_url)
    readers = db.HotReaders(db.read_engine(engine))
    try:
        first = _backend_pid(readers)
        assert _backend_pid(readers) == first  # checked in and out again, not reconnected
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        with pytest.raises(StorageUnavailable):  # the read that finds it dead fails cleanly
            _backend_pid(readers)
        second = _backend_pid(readers)  # and the broken connection was not kept
        assert second != first
        # After an idle spell a connection is pinged first: a dead one is replaced unnoticed.
        monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (second,))
        assert _backend_pid(readers) not in (first, second)
    finally:
        readers.close()
        engine.dispose()


def test_hot_readers_are_bounded_and_fall_back_to_the_pool(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers beyond ``MAX_OPEN`` at once use the engine's pool instead of opening more."""
    monkeypatch.setattr(db.HotReaders, "MAX_OPEN", 2)
    engine = db.create_ledger_engine(pg_url)
    readers = db.HotReaders(db.read_engine(engine))
    try:
        with ExitStack() as stack:
            cursors = [stack.enter_context(readers.cursor()) for _ in range(3)]
            pids = {c.execute("SELECT pg_backend_pid()").fetchone()[0] for c in cursors}
            assert len(pids) == 3
            assert engine.pool.checkedout() == 1  # the third came from the pool
        assert len(readers._idle) == 2  # the two hot ones are kept for the next readers
    finally:
        readers.close()
        engine.dispose()
    assert not readers._idle


def test_proofs_read_one_block_of_leaves_and_stay_correct(pg_url: str, tmp_path: Path) -> None:
    """A proof reads the 16 leaves around its leaf as one range and takes the nodes above from
    memory (all of them, loaded once, for a reader that has not written the tree); a node the
    memory lacks (written by another process since, or a low part of the right border) is read
    in the same statement, and so is the tree's last leaf the first time (after that the tree is
    known to exist). Every proof
    verifies against the signed root, and a tree larger than the log is still refused."""
    from authenticator.errors import NotFound
    from authenticator.ledger.checkpoint import verify_checkpoint
    from tests.ledger_samples import ORIGIN

    signer = CheckpointSigner.load_or_create(tmp_path / "log.key", ORIGIN)
    with Ledger.open(pg_url, signer) as writer:
        for k in range(3):
            writer.append_batch(sample_entries(600, items=40, start=600 * k))
        with Ledger.open(pg_url, signer) as led:  # a reader that has not written this tree
            size = led.size()
            asked: list[tuple[int, int, list[tuple[int, int]]]] = []
            real_get_block = led._ops.get_block

            def spy(cur: object, lo: int, hi: int, ids: list[tuple[int, int]]) -> object:
                asked.append((lo, hi, list(ids)))
                return real_get_block(cur, lo, hi, ids)

            led._ops.get_block = spy  # type: ignore[method-assign,assignment]

            def check(index: int, tree_size: int) -> None:
                root = verify_checkpoint(led.latest_checkpoint(), signer.verifier_key).root_hash
                assert tree_size == verify_checkpoint(led.latest_checkpoint(), signer.verifier_key).size
                proof = led.inclusion_proof(index, tree_size)
                verify_inclusion(index, tree_size, led.entry(index).leaf_hash, proof, root)

            check(5, size)
            lo, hi, ids = asked[-1]
            assert (lo, hi) == (0, 16) and (0, size - 1) in ids  # the block, and the last leaf once
            assert set(ids) <= {(0, size - 1), *root_nodes(size)}  # and the low parts of the border
            check(700, size)
            check(1500, size)
            assert asked[-1] == (1488, 1504, [])  # one range, nothing else
            writer.append_batch(sample_entries(37, items=40, start=5_000))  # another writer's nodes
            check(1500, size + 37)
            assert asked[-1][:2] == (1488, 1504) and asked[-1][2]  # new upper nodes read along
            check(size + 36, size + 37)  # the last leaf, in a block cut short by the tree's end
            with pytest.raises(NotFound):
                led.inclusion_proof(5, size + 38)


def test_upper_nodes_are_kept_per_level_in_order() -> None:
    """Nodes that extend a level in index order go into its byte string; others (out of order,
    or the low parts of a tree's right border) into a bounded dict; lower levels are not kept."""
    cache = UpperNodes()
    cache.load([(4, 0, b"a" * 32), (4, 1, b"b" * 32), (5, 0, b"c" * 32)], 4)
    cache.keep({(4, 2): b"d" * 32, (4, 9): b"e" * 32, (3, 7): b"f" * 32, (0, 5): b"g" * 32}, 48)
    known, missing = cache.split([(4, 1), (4, 2), (4, 9), (5, 0), (3, 7), (0, 5), (4, 3)])
    assert known == {(4, 1): b"b" * 32, (4, 2): b"d" * 32, (4, 9): b"e" * 32, (5, 0): b"c" * 32}
    assert missing == [(3, 7), (0, 5), (4, 3)]  # 48 = 32 + 16: its border is (5, 0) and (4, 2)
    assert cache.seen_size == 48
    cache.keep({(2, 10): b"h" * 32}, 46)  # 46 = 32 + 8 + 4 + 2: (2, 10) is on its border
    assert cache.split([(2, 10)])[0] == {(2, 10): b"h" * 32}
    cache.MAX_EXTRA = 1
    cache.keep({(4, 20): b"i" * 32}, 48)
    assert cache.split([(4, 9), (4, 20)]) == ({(4, 20): b"i" * 32}, [(4, 9)])  # the dict started over


def test_concurrent_proofs_share_the_hot_connections(pg_url: str, tmp_path: Path) -> None:
    from tests.ledger_samples import ORIGIN

    signer = CheckpointSigner.load_or_create(tmp_path / "log.key", ORIGIN)
    with Ledger.open(pg_url, signer) as led:
        led.append_batch(sample_entries(300, items=10))
        size = led.size()
        errors: list[BaseException] = []

        def prove() -> None:
            try:
                for i in range(50):
                    assert len(led.inclusion_proof((i * 7) % size, size)) > 0
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=prove) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert 1 <= len(led._readers._idle) <= 8
