"""Group commit: concurrent appends share one transaction and one checkpoint, each caller gets
its own receipt once the group is durable, and one command's failed precondition or hook
rolls back that command alone (its neighbours, and their item chains, are unaffected)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, text

from authenticator.errors import Conflict, EntryValidationError
from authenticator.ledger.checkpoint import CheckpointSigner, verify_checkpoint
from authenticator.ledger.group_commit import GroupCommit
from authenticator.ledger.log import Ledger, NewEntry, Receipt, StoredEntry
from authenticator.ledger.merkle import verify_inclusion
from authenticator.ledger.verify import verify_ledger
from tests.ledger_samples import ORIGIN, sample_entry
from tests.pg_scratch import scratch_schema

SIGNER = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", SIGNER) as led:
            yield led
        return
    with scratch_schema("t_group") as url, Ledger.open(url, SIGNER) as led:
        yield led


def _checked(receipt: Receipt) -> None:
    cp = verify_checkpoint(receipt.checkpoint, SIGNER.verifier_key)
    assert cp.size == receipt.tree_size
    verify_inclusion(receipt.index, receipt.tree_size, receipt.leaf_hash, receipt.inclusion_proof, cp.root_hash)


def _checkpoints(led: Ledger) -> int:
    with led.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM log_checkpoints")).scalar_one())


def test_concurrent_single_appends_are_grouped(ledger: Ledger) -> None:
    n = 64
    barrier = threading.Barrier(n)
    receipts: list[Receipt] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    before = _checkpoints(ledger)

    def one(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            r = ledger.append(sample_entry(i, f"item-{i % 7}"))
        except BaseException as exc:  # pragma: no cover - reported below
            with lock:
                errors.append(exc)
            return
        with lock:
            receipts.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(r.index for r in receipts) == list(range(ledger.size() - n, ledger.size()))
    for r in receipts:
        _checked(r)
    assert _checkpoints(ledger) - before < n  # some appends shared a transaction and a checkpoint
    report = verify_ledger(ledger, workers=1)
    assert report.ok, report.problems


def _hold_writer_until(led: Ledger, waiting: int) -> threading.Thread:
    """Act as a leader that is busy until ``waiting`` commands are queued, so they form one group."""
    with led._group_commit._queue_mutex:
        led._group_commit._leading = True

    def release() -> None:
        deadline = time.monotonic() + 30
        while len(led._group_commit._pending) < waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        led._group_commit._lead()  # the busy leader comes back and takes them all as one group

    t = threading.Thread(target=release)
    t.start()
    return t


def _one_group(led: Ledger, calls: list[Callable[[], None]]) -> None:
    """Run each call (one append each) on its own thread, queued in this order behind a busy
    leader, so they form one group; returns once all are done."""
    holder = _hold_writer_until(led, len(calls))
    threads = []
    for call in calls:
        threads.append(threading.Thread(target=call))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while len(led._group_commit._pending) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.002)
    for t in [*threads, holder]:
        t.join(timeout=60)


def test_one_failing_command_leaves_its_group_intact(ledger: Ledger) -> None:
    ledger.append(
        NewEntry(
            "custody.transferred", "item-x", {"event": "consigned", "platform": "p", "counterparty_commitment": None}
        )
    )
    outcome: dict[str, Any] = {}

    def refuse(_conn: Connection) -> None:
        raise Conflict("refused by its precondition")

    def explode(_conn: Connection, _stored: list[StoredEntry]) -> None:
        raise RuntimeError("a hook that fails after writing")

    def run(name: str, entry: NewEntry, **hooks: Any) -> None:
        try:
            outcome[name] = ledger.append_batch([entry], **hooks)
        except Exception as exc:
            outcome[name] = exc

    body = {"event": "sold", "platform": "p", "counterparty_commitment": None}
    jobs: list[tuple[str, NewEntry, dict[str, Any]]] = [
        ("first", NewEntry("custody.transferred", "item-x", body), {}),
        ("refused", NewEntry("custody.transferred", "item-x", body), {"check": refuse}),
        ("exploded", NewEntry("custody.transferred", "item-x", body), {"after": explode}),
        ("last", NewEntry("custody.transferred", "item-x", {**body, "event": "bought_back"}), {}),
    ]
    size = ledger.size()
    _one_group(ledger, [functools.partial(run, name, entry, **hooks) for name, entry, hooks in jobs])
    assert isinstance(outcome["refused"], Conflict)
    assert isinstance(outcome["exploded"], RuntimeError)
    first, last = outcome["first"][0], outcome["last"][0]
    assert (first.index, last.index) == (size, size + 1)  # one group, one checkpoint
    assert first.tree_size == last.tree_size == size + 2
    for r in (first, last):
        _checked(r)
    history = ledger.history("item-x")
    assert [e.index for e in history][-2:] == [size, size + 1]
    report = verify_ledger(ledger, workers=1)  # the chain skips the rolled-back commands
    assert report.ok, report.problems


def test_an_invalid_entry_fails_its_caller_alone(ledger: Ledger) -> None:
    """The leader validates the group's entries: one caller's invalid entry is refused with its
    own error, and the callers queued around it append together as usual."""
    outcome: dict[str, Any] = {}

    def run(name: str, entry: NewEntry) -> None:
        try:
            outcome[name] = ledger.append(entry)
        except Exception as exc:
            outcome[name] = exc

    jobs = [
        ("before", sample_entry(1, "item-a")),
        ("invalid", NewEntry("item.registered", "item-b", {"category": "bag"})),  # brand, model missing
        ("after", sample_entry(2, "item-c")),
    ]
    size = ledger.size()
    _one_group(ledger, [functools.partial(run, name, entry) for name, entry in jobs])
    assert isinstance(outcome["invalid"], EntryValidationError)
    before, after = outcome["before"], outcome["after"]
    assert (before.index, after.index) == (size, size + 1)
    assert before.tree_size == after.tree_size == size + 2  # one group, one checkpoint
    for r in (before, after):
        _checked(r)
    assert ledger.history("item-b") == []


def test_an_entry_too_large_for_a_tile_bundle_is_refused(ledger: Ledger) -> None:
    """C2SP tlog-tiles entry bundles carry an entry in at most 65,535 bytes: larger bodies are
    refused before the writer lock, with a message that says why, and nothing is appended."""
    from authenticator.errors import EntryValidationError

    size = ledger.size()
    big = {
        "model_sha256": "ab" * 32,
        "name": "m",
        "version": "1",
        "card_sha256": "cd" * 32,
        "metrics": {"x": "y" * 70_000},
    }
    with pytest.raises(EntryValidationError, match="tlog-tiles"):
        ledger.append(NewEntry("model.registered", "model:" + "ab" * 32, big))
    assert ledger.size() == size


def test_after_a_bigger_group_the_leader_waits_for_its_siblings(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callers that just got their receipts append again a moment later: a leader that finds
    only some of them queued waits (bounded) for the rest, so they share one transaction
    instead of a lone command's and then the others'."""
    monkeypatch.setattr(GroupCommit, "MAX_LINGER_S", 60.0)  # generous: the test must not depend on timing
    monkeypatch.setattr(GroupCommit, "QUIET_S", 30.0)
    ledger._group_commit._last_group_ended = time.monotonic()  # as if a group of 4 had just ended
    ledger._group_commit._recent_size = 4
    receipts: list[Receipt] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        r = ledger.append(sample_entry(i, f"item-{i}"))
        with lock:
            receipts.append(r)

    threads = []
    for i in range(4):  # one after the other: the first to come leads, and waits for the rest
        threads.append(threading.Thread(target=one, args=(i,)))
        threads[-1].start()
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=60)
    assert len(receipts) == 4
    assert len({r.tree_size for r in receipts}) == 1  # one group, one checkpoint
    for r in receipts:
        _checked(r)


def test_the_leader_stops_waiting_once_nobody_comes(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a group of 64, a caller that comes alone (the others are gone) waits for siblings
    only until the queue has been quiet for ``QUIET_S``, not for the whole ``MAX_LINGER_S``."""
    monkeypatch.setattr(GroupCommit, "MAX_LINGER_S", 600.0)
    monkeypatch.setattr(GroupCommit, "QUIET_S", 0.05)
    ledger._group_commit._last_group_ended = time.monotonic()
    ledger._group_commit._recent_size = 64
    done: list[Receipt] = []
    t = threading.Thread(target=lambda: done.append(ledger.append(sample_entry(0, "item-alone"))))
    t.start()
    t.join(timeout=120)  # far below MAX_LINGER_S: only the quiet gap can have ended the wait
    assert not t.is_alive() and len(done) == 1
    _checked(done[0])
    assert ledger._group_commit._recent_size < 64  # a group of one: the expected concurrency decays


def test_a_finished_group_wakes_its_callers_in_a_chain(ledger: Ledger) -> None:
    """Each woken caller wakes the next (one or two threads runnable, not the whole group); a
    caller that stopped waiting is skipped, and one that leaves after the chain was built
    still passes it on."""
    from authenticator.ledger.log import _Command

    a, gone, b, c = (_Command([], None, None) for _ in range(4))
    for cmd in (a, gone, b, c):
        cmd.done = True
    gone.gone = True
    ledger._group_commit._wake([a, gone, b, c], None)
    assert a.next is b and b.next is c and c.next is None and gone.next is None
    assert a.finished.acquire(blocking=False)  # the first is woken by the leader ...
    assert not b.finished.acquire(blocking=False)  # ... the others only along the chain
    ledger._group_commit._pass_on(a, True)
    assert b.finished.acquire(blocking=False) and not c.finished.acquire(blocking=False)
    ledger._group_commit._pass_on(b, False)  # b leaves without waiting (interrupted): still wakes c
    assert c.finished.acquire(blocking=False)


def test_a_lone_caller_never_waits_for_siblings(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sequential appends (the last group had one command) go at once: no wait for others."""
    monkeypatch.setattr(GroupCommit, "MAX_LINGER_S", 60.0)
    waits: list[float | None] = []
    real_wait = ledger._group_commit._queue_cond.wait

    def spy(timeout: float | None = None) -> bool:
        waits.append(timeout)
        return real_wait(timeout)

    monkeypatch.setattr(ledger._group_commit._queue_cond, "wait", spy)
    for i in range(5):
        ledger.append(sample_entry(i, "item-lone"))
    assert waits == []
