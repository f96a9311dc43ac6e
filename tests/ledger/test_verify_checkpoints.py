"""`ledger verify` checks every stored checkpoint: its signature, its row, and the root it signs
against the stored tree (authenticator/ledger/verify_checkpoints.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from authenticator.ledger import verify_checkpoints
from authenticator.ledger.checkpoint import Checkpoint, CheckpointSigner
from authenticator.ledger.log import Ledger
from authenticator.ledger.verify import verify_ledger
from tests.ledger_samples import drop_triggers, sample_entries


def _log(ledger: Ledger, batches: int = 4) -> None:
    """``batches`` batches of 5 entries: checkpoints of sizes 5, 10, 15, ..."""
    for start in range(0, 5 * batches, 5):
        ledger.append_batch(sample_entries(5, items=3, start=start))


def _run(ledger: Ledger, sql: str, **params: object) -> None:
    drop_triggers(ledger)
    with ledger.engine.begin() as conn:
        assert conn.execute(text(sql), params).rowcount == 1


def _forge_root(ledger: Ledger, signer: CheckpointSigner) -> None:
    """A checkpoint of size 10 signed with the log's own key, over a root the tree does not have."""
    forged = signer.sign(Checkpoint(ledger.origin, 10, b"\x07" * 32))
    _run(ledger, "UPDATE log_checkpoints SET note = :n, root_hash = :r WHERE size = 10", n=forged, r=b"\x07" * 32)


def _wrong_row(ledger: Ledger, signer: CheckpointSigner) -> None:
    _run(ledger, "UPDATE log_checkpoints SET root_hash = :r WHERE size = 10", r=b"\x00" * 32)


def _beyond(ledger: Ledger, signer: CheckpointSigner) -> None:
    note = signer.sign(Checkpoint(ledger.origin, 99, b"\x01" * 32))
    _run(ledger, "INSERT INTO log_checkpoints (size, root_hash, note) VALUES (99, :r, :n)", r=b"\x01" * 32, n=note)


def _latest_deleted(ledger: Ledger, signer: CheckpointSigner) -> None:
    _run(ledger, "DELETE FROM log_checkpoints WHERE size = 20")


def _node_deleted(ledger: Ledger, signer: CheckpointSigner) -> None:
    # the root of size 10 is hash(node (3, 0), node (1, 4)): delete the second
    _run(ledger, "DELETE FROM log_nodes WHERE level = 1 AND idx = 4")


@pytest.mark.parametrize(
    ("tamper", "index", "problem"),
    [
        (_forge_root, 9, "checkpoint of size 10 signs a root that the stored tree does not have"),
        (_wrong_row, 9, "checkpoint of size 10: the stored size or root differs from the signed note"),
        (_beyond, 98, "checkpoint of size 99 is beyond the log of 20 entries"),
        (_latest_deleted, 19, "the latest checkpoint is of size 15 but the log has 20 entries"),
        (_node_deleted, 9, "checkpoint of size 10: cannot compute the root: stored subtree hash (1, 4) is missing"),
    ],
    ids=["root-not-the-tree's", "row-differs-from-note", "beyond-the-log", "latest-missing", "root-node-missing"],
)
def test_verify_reports_each_bad_checkpoint(
    ledger: Ledger,
    signer: CheckpointSigner,
    tamper: Callable[[Ledger, CheckpointSigner], None],
    index: int,
    problem: str,
) -> None:
    _log(ledger)
    assert verify_ledger(ledger, semantic=False).ok
    tamper(ledger, signer)
    for semantic in (False, True):
        report = verify_ledger(ledger, semantic=semantic)
        assert not report.ok
        assert any(p.index == index and p.reason.startswith(problem) for p in report.problems), report.problems


@pytest.mark.parametrize(("step", "ahead"), [(3, 4), (2, 1)], ids=["all-pages-read-ahead", "pages-read-after"])
def test_every_page_of_checkpoints_is_checked(
    ledger: Ledger, signer: CheckpointSigner, monkeypatch: pytest.MonkeyPatch, step: int, ahead: int
) -> None:
    """Checkpoints are read and checked in pages, signatures on a thread: the pages read before
    the hash pass and those read after it are all checked, a bad one in a later page is found,
    and every checkpoint is counted once."""
    monkeypatch.setattr(verify_checkpoints, "STEP", step)
    monkeypatch.setattr(verify_checkpoints, "AHEAD", ahead)
    _log(ledger, batches=8)
    report = verify_ledger(ledger, semantic=False)
    assert report.ok and report.checkpoints_checked == 9  # sizes 0, 5, ..., 40
    _run(ledger, "UPDATE log_checkpoints SET note = :n WHERE size = 35", n="not a note")
    report = verify_ledger(ledger, semantic=False)
    assert report.checkpoints_checked == 9
    assert [(p.index, p.reason.split(":")[0]) for p in report.problems] == [
        (34, "checkpoint of size 35 does not verify")
    ]


def test_a_gap_stops_verify_and_its_signature_thread(ledger: Ledger, signer: CheckpointSigner) -> None:
    import threading

    _log(ledger)
    _run(ledger, "DELETE FROM log_entries WHERE idx = 7")
    report = verify_ledger(ledger, semantic=False)
    assert report.first_bad_index == 7 and report.checkpoints_checked == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("verify-signatures")]
