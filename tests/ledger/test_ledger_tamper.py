"""Append-only is enforced by the database, and `ledger verify` finds what bypasses it."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import psycopg
import pytest
import sqlalchemy.exc
from sqlalchemy import text

from authenticator.db import db_errors
from authenticator.errors import AppendOnlyViolation, StorageUnavailable
from authenticator.ledger.checkpoint import CheckpointSigner
from authenticator.ledger.entries import canonical_bytes, make_entry
from authenticator.ledger.log import Ledger
from authenticator.ledger.verify import verify_ledger
from tests.ledger_samples import drop_triggers, is_postgres, run_cli, sample_entries, sample_entry
from tests.pg_scratch import PG_DSN

STATEMENTS = [
    "UPDATE log_entries SET item = 'x' WHERE idx = 3",
    "DELETE FROM log_entries WHERE idx = 3",
    "DELETE FROM log_entries",
    "UPDATE log_nodes SET hash = hash WHERE level = 1",
    "DELETE FROM log_nodes",
    "UPDATE log_checkpoints SET note = 'x'",
    "DELETE FROM log_checkpoints WHERE size = 0",
]


def _counts(led: Ledger) -> tuple[int, ...]:
    with led.engine.connect() as conn:
        return tuple(
            int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("log_entries", "log_nodes", "log_checkpoints")
        )


def test_database_refuses_update_delete_truncate(ledger: Ledger, db_url: str) -> None:
    ledger.append_batch(sample_entries(20))
    before = _counts(ledger)
    statements = list(STATEMENTS)
    if is_postgres(db_url):
        statements += [f"TRUNCATE {t}" for t in ("log_entries", "log_nodes", "log_checkpoints")]
    for sql in statements:
        with pytest.raises(sqlalchemy.exc.DatabaseError) as raw, ledger.engine.begin() as conn:
            conn.execute(text(sql))
        assert "append-only log" in str(raw.value), sql
        with pytest.raises(AppendOnlyViolation, match="append-only log"), db_errors(), ledger.engine.begin() as conn:
            conn.execute(text(sql))
    assert _counts(ledger) == before
    assert verify_ledger(ledger).ok


def _tampered(ledger: Ledger, sql: str, params: dict[str, object]) -> None:
    drop_triggers(ledger)
    with ledger.engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount == 1


def test_cli_verify_names_the_changed_entry(ledger: Ledger, db_url: str, key_path: Path, tmp_path: Path) -> None:
    for start in range(0, 60, 10):
        ledger.append_batch(sample_entries(10, items=5, start=start))
    ok = run_cli(["ledger", "verify", "--db", db_url], key_path, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    victim = ledger.entry(38)  # a listing: change its price and nothing else
    assert b'"price":"1250.00"' in victim.data
    forged = victim.data.replace(b'"price":"1250.00"', b'"price":"125.00"')
    _tampered(ledger, "UPDATE log_entries SET data = :d WHERE idx = 38", {"d": forged})
    for flags in ([], ["--hashes-only"]):
        bad = run_cli(["ledger", "verify", "--db", db_url, *flags], key_path, tmp_path)
        assert bad.returncode == 1, bad.stderr
        assert "first bad index 38" in bad.stderr
        report = json.loads(bad.stdout)
        assert (report["ok"], report["first_bad_index"]) == (False, 38)


def test_verify_finds_a_rewritten_leaf_hash_column(ledger: Ledger) -> None:
    ledger.append_batch(sample_entries(40))
    _tampered(ledger, "UPDATE log_entries SET leaf_hash = :h WHERE idx = 13", {"h": b"\x07" * 32})
    report = verify_ledger(ledger, semantic=False)
    assert report.first_bad_index == 13
    assert "does not hash to its stored leaf hash" in (report.first_problem.reason if report.first_problem else "")


def test_verify_finds_a_rewritten_subtree_hash(ledger: Ledger) -> None:
    ledger.append_batch(sample_entries(40))
    _tampered(ledger, "UPDATE log_nodes SET hash = :h WHERE level = 3 AND idx = 2", {"h": b"\x07" * 32})
    report = verify_ledger(ledger, semantic=False)
    assert report.first_bad_index == 16
    assert report.first_problem is not None and "level 3, index 2" in report.first_problem.reason


def test_packed_hashes_are_a_ranges_hashes_in_index_order(ledger: Ledger) -> None:
    """Verify compares each range's stored hashes packed into one value by the database with
    the computed ones: the packing is the rows' hashes in index order, on either database."""
    from authenticator import db
    from authenticator.ledger.verify import packed_hashes

    for start in range(0, 300, 100):
        ledger.append_batch(sample_entries(100, start=start))
    ph = ledger._ops.placeholder()
    dialect = ledger.engine.dialect.name
    with db.reader(ledger.engine) as cur:
        for level, lo, hi in ((1, 0, 150), (2, 10, 60), (3, 5, 6), (4, 0, 18)):
            rows = cur.execute(
                f"SELECT hash FROM log_nodes WHERE level = {ph} AND idx >= {ph} AND idx < {ph} ORDER BY idx",
                (level, lo, hi),
            ).fetchall()
            query = packed_hashes(dialect, "hash", "log_nodes", f"level = {ph} AND idx >= {ph} AND idx < {ph}")
            assert bytes(cur.execute(query, (level, lo, hi)).fetchone()[0]) == b"".join(bytes(h) for (h,) in rows)
        leaves = packed_hashes(dialect, "leaf_hash", "log_entries", f"idx >= {ph} AND idx < {ph}")
        assert bytes(cur.execute(leaves, (7, 300)).fetchone()[0]) == b"".join(
            ledger.entry(i).leaf_hash for i in range(7, 300)
        )
        assert cur.execute(leaves, (300, 400)).fetchone()[0] is None  # nothing there


@pytest.mark.parametrize("table", ["log_entries", "log_nodes"])
def test_verify_finds_two_stored_hashes_swapped_each_at_its_index(ledger: Ledger, table: str) -> None:
    """The same hashes in another order pack to a value of the right length that is not the
    computed one: both rows are named, each at its own index."""
    ledger.append_batch(sample_entries(64))
    column, where = ("leaf_hash", "idx = :i") if table == "log_entries" else ("hash", "level = 2 AND idx = :i")
    read, write = f"SELECT {column} FROM {table} WHERE {where}", f"UPDATE {table} SET {column} = :h WHERE {where}"
    with ledger.engine.connect() as conn:
        a, b = (conn.execute(text(read), {"i": i}).scalar_one() for i in (5, 9))
    drop_triggers(ledger)
    with ledger.engine.begin() as conn:  # leaf hashes are unique: through a third value
        for h, i in ((b"\x00" * 32, 5), (a, 9), (b, 5)):
            assert conn.execute(text(write), {"h": h, "i": i}).rowcount == 1
    report = verify_ledger(ledger, semantic=False)
    first = {5: 5, 9: 9} if table == "log_entries" else {5: 20, 9: 36}  # level 2: 4 leaves a node
    assert sorted(p.index for p in report.problems) == sorted(first.values()), report.problems


def test_verify_finds_a_deleted_subtree_hash(ledger: Ledger) -> None:
    ledger.append_batch(sample_entries(40))
    _tampered(ledger, "DELETE FROM log_nodes WHERE level = 1 AND idx = :i", {"i": 7})
    report = verify_ledger(ledger, semantic=False)
    assert report.first_bad_index == 14
    assert report.first_problem is not None and "level 1, index 7) is missing" in report.first_problem.reason


def test_verify_finds_data_and_leaf_rewritten_together(ledger: Ledger) -> None:
    ledger.append_batch(sample_entries(40, items=4))
    victim = ledger.entry(22)
    forged = victim.data.replace(b'"price":"1250.00"', b'"price":"125.00"')
    assert forged != victim.data
    leaf = hashlib.sha256(b"\x00" + forged).digest()
    _tampered(ledger, "UPDATE log_entries SET data = :d, leaf_hash = :h WHERE idx = 22", {"d": forged, "h": leaf})
    report = verify_ledger(ledger)
    # The level-1 node over entries 22 and 23 no longer matches: the change is within it.
    assert report.first_bad_index == 22
    assert any("chain is broken" in p.reason and p.index == 26 for p in report.problems)


def test_verify_finds_a_forged_checkpoint(ledger: Ledger) -> None:
    ledger.append_batch(sample_entries(10))
    ledger.append_batch(sample_entries(10, start=10))
    note = ledger.checkpoint_at(10) or ""
    lines = note.split("\n")
    sig = bytearray(base64.b64decode(lines[-2].split(" ")[-1]))
    sig[-1] ^= 1
    lines[-2] = " ".join([*lines[-2].split(" ")[:-1], base64.b64encode(bytes(sig)).decode()])
    _tampered(ledger, "UPDATE log_checkpoints SET note = :n WHERE size = 10", {"n": "\n".join(lines)})
    report = verify_ledger(ledger)
    assert report.first_bad_index == 9
    assert report.first_problem is not None and "checkpoint of size 10 does not verify" in report.first_problem.reason


def test_verify_finds_a_deleted_entry(ledger: Ledger, db_url: str, key_path: Path, tmp_path: Path) -> None:
    ledger.append_batch(sample_entries(30, items=3))
    _tampered(ledger, "DELETE FROM log_entries WHERE idx = 17", {})
    bad = run_cli(["ledger", "verify", "--db", db_url], key_path, tmp_path)
    assert bad.returncode == 1
    assert "first bad index 17" in bad.stderr and "missing" in bad.stderr


def test_verify_finds_an_entry_left_out_of_an_items_chain(
    ledger: Ledger, db_url: str, key_path: Path, tmp_path: Path
) -> None:
    """A writer that skips an item's latest entry when chaining makes a valid tree whose item
    history has a hole: the hash pass accepts it, the semantic pass names the entry."""
    ledger.append_batch(sample_entries(20, items=2))  # item-0: entries 0, 2, 4, ..., 18
    history = ledger.history("item-0")
    skip_to = history[-2].leaf_hash  # pretend entry 18 never happened
    forged = make_entry("listing.closed", "item-0", {"listing_id": "li-1", "reason": "sold"}, skip_to)
    assert ledger._append_prebuilt([("item-0", "listing.closed", canonical_bytes(forged))]) == 21
    ledger.append_batch(sample_entries(3, items=2, start=21))
    assert verify_ledger(ledger, semantic=False).ok
    report = verify_ledger(ledger)
    assert report.first_bad_index == 20
    assert report.first_problem is not None and "chain is broken" in report.first_problem.reason
    bad = run_cli(["ledger", "verify", "--db", db_url], key_path, tmp_path)
    assert bad.returncode == 1 and "first bad index 20" in bad.stderr


def test_verify_finds_a_first_entry_with_a_prev_and_a_non_canonical_entry(ledger: Ledger) -> None:
    ledger.append_batch(sample_entries(4))
    orphan = make_entry("listing.closed", "item-new", {"listing_id": "li-1", "reason": "sold"}, b"\x01" * 32)
    spaced = canonical_bytes(make_entry("listing.closed", "item-x", {"listing_id": "li-2", "reason": "sold"}, None))
    spaced = spaced.replace(b'"v":1', b'"v": 1')
    ledger._append_prebuilt([("item-new", "listing.closed", canonical_bytes(orphan))])
    ledger._append_prebuilt([("item-x", "listing.closed", spaced)])
    report = verify_ledger(ledger)
    assert [p.index for p in sorted(report.problems)] == [4, 5]
    assert "first entry" in sorted(report.problems)[0].reason
    assert "canonical" in sorted(report.problems)[1].reason


def test_verify_finds_stored_columns_that_lie(ledger: Ledger) -> None:
    ledger.append_batch(sample_entries(8))
    _tampered(ledger, "UPDATE log_entries SET item = 'item-forged' WHERE idx = 5", {})
    report = verify_ledger(ledger)
    assert report.first_bad_index == 5
    assert ledger.history("item-forged")[0].index == 5  # the query trusts the column; verify does not


def test_unreachable_database_is_storage_unavailable(signer: CheckpointSigner) -> None:
    with pytest.raises(StorageUnavailable):
        Ledger.open("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2", signer)


def test_dropped_tables_are_storage_unavailable(db_url: str, signer: CheckpointSigner) -> None:
    led = Ledger.open(db_url, signer)
    try:
        led.append(sample_entry(0, "item-a"))
        if is_postgres(db_url):
            schema = db_url.rsplit("%3D", 1)[1]
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
                conn.execute(f"CREATE SCHEMA {schema}")
        else:
            drop_triggers(led)
            with led.engine.begin() as conn:
                for table in ("log_entries", "log_nodes", "log_checkpoints"):
                    conn.exec_driver_sql(f"DROP TABLE {table}")
        with pytest.raises(StorageUnavailable):
            led.size()
        with pytest.raises(StorageUnavailable):
            led.append(sample_entry(1, "item-a"))
    finally:
        led.close()


@pytest.mark.parametrize("readers", [0, 1, 2, 3])
def test_verify_across_chunks_read_ahead_by_several_readers(ledger: Ledger, readers: int) -> None:
    """Chunks read ahead on several connections still arrive in order: a multi-chunk log
    verifies, and tampering in its third chunk and a missing entry in its fourth are found at
    their exact indexes, whatever the number of readers (PostgreSQL uses two)."""
    from authenticator.ledger import verify as verify_module

    size = 3 * verify_module.CHUNK + 1_000
    for start in range(0, size, 5_000):
        ledger.append_batch(sample_entries(min(5_000, size - start), start=start))
    ledger.engine.dispose()
    saved = dict(verify_module.PREFETCH_READERS)
    verify_module.PREFETCH_READERS[ledger.engine.dialect.name] = readers
    try:
        clean = verify_ledger(ledger, semantic=False)
        assert clean.ok and clean.entries_checked == size
        victim = 2 * verify_module.CHUNK + 77
        _tampered(ledger, "UPDATE log_entries SET leaf_hash = :h WHERE idx = :i", {"h": b"\x07" * 32, "i": victim})
        gap = 3 * verify_module.CHUNK + 5
        with ledger.engine.begin() as conn:
            assert conn.execute(text("DELETE FROM log_entries WHERE idx = :i"), {"i": gap}).rowcount == 1
        report = verify_ledger(ledger, semantic=False)
        assert report.first_bad_index == victim
        assert any(p.index == gap and "missing" in p.reason for p in report.problems)
    finally:
        verify_module.PREFETCH_READERS.clear()
        verify_module.PREFETCH_READERS.update(saved)
