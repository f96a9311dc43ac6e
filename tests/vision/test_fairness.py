"""Issue 11, point 4: a fair share of the vision workers per principal.

The policy (:class:`FairQueue`) is pure and tested without threads or images: one principal
floods, the other's jobs are interleaved with the flood's, and never wait for a running job of
the flood to end when slots are free. The executor, the gate and :meth:`Assessor.assess` are then
tested with events (a flood that cannot finish until released), never with a clock: today's
first-come, first-served pool made the second principal wait for the whole flood.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authenticator.config import Settings
from authenticator.vision.fairness import (
    ANONYMOUS,
    LOW_PRIORITY_NICE,
    FairExecutor,
    FairGate,
    FairQueue,
    run_at_low_priority,
)
from authenticator.vision.service import Assessor, PhotoInput
from tests.api_helpers import real_photos
from tests.vision_tiny_model import write_tiny_model

T = TypeVar("T")

GUARD = 60.0  # seconds: only so that a broken scheduler fails instead of hanging, never a measurement


def _drain(q: FairQueue[T]) -> list[T]:
    """Pop everything, finishing each job at once (slots never short)."""
    out = []
    while (got := q.pop()) is not None:
        principal, item = got
        out.append(item)
        q.done(principal)
    return out


# --- the pure policy ----------------------------------------------------------------------------
def test_equal_costs_alternate_between_a_flood_and_a_newcomer() -> None:
    q: FairQueue[str] = FairQueue(quantum=1.0)
    for i in range(20):
        q.push("A", 1.0, f"A{i}")
    for i in range(4):
        q.push("B", 1.0, f"B{i}")
    order = _drain(q)
    assert order[:8] == ["A0", "B0", "A1", "B1", "A2", "B2", "A3", "B3"]
    assert order[8:] == [f"A{i}" for i in range(4, 20)]
    assert len(q) == 0


def test_a_newcomer_joins_the_round_at_once() -> None:
    """B arrives after A has been served for a while: its first job is next but one at most."""
    q: FairQueue[str] = FairQueue(quantum=50.0)
    for i in range(24):
        q.push("A", 49.0, f"A{i}")
    first = [q.pop() for _ in range(3)]
    for p in first:
        assert p is not None
        q.done(p[0])
    for i in range(4):
        q.push("B", 1.75, f"B{i}")
    order = _drain(q)
    assert order.index("B0") <= 1
    assert order.index("B3") <= 4  # all of B's small photos fit one quantum


def test_costs_are_shared_by_megapixels_not_by_photo_count() -> None:
    """A sends 49 MP photos, B 1 MP photos, both backlogged: B gets ~49 jobs per A job."""
    q: FairQueue[str] = FairQueue(quantum=50.0)
    for i in range(10):
        q.push("A", 49.0, f"A{i}")
    for i in range(200):
        q.push("B", 1.0, f"B{i}")
    order = _drain(q)
    a_positions = [i for i, x in enumerate(order) if x.startswith("A")]
    gaps = np.diff(a_positions)
    assert all(45 <= g <= 52 for g in gaps[:3]), gaps


@settings(max_examples=60, deadline=None)
@given(
    a_costs=st.lists(st.floats(0.1, 60.0), min_size=1, max_size=40),
    b_costs=st.lists(st.floats(0.1, 60.0), min_size=1, max_size=40),
    quantum=st.floats(1.0, 60.0),
)
def test_served_megapixels_stay_within_a_quantum_while_both_wait(
    a_costs: list[float], b_costs: list[float], quantum: float
) -> None:
    """Deficit round robin's guarantee: while both principals have queued jobs, the cost served to
    each differs by at most a couple of quanta (costs are clamped to one quantum)."""
    q: FairQueue[tuple[str, float]] = FairQueue(quantum=quantum)
    for c in a_costs:
        q.push("A", c, ("A", min(c, quantum)))
    for c in b_costs:
        q.push("B", c, ("B", min(c, quantum)))
    served = {"A": 0.0, "B": 0.0}
    popped = 0
    while q.queued("A") and q.queued("B"):
        got = q.pop()
        assert got is not None
        principal, (who, cost) = got
        assert principal == who
        served[who] += cost
        popped += 1
        q.done(principal)
        assert abs(served["A"] - served["B"]) <= 2 * quantum + 1e-6
    rest = _drain(q)  # the other principal alone is then served to the end
    assert popped + len(rest) == len(a_costs) + len(b_costs) and len(q) == 0


def test_the_per_principal_cap_leaves_room_for_others() -> None:
    q: FairQueue[str] = FairQueue(quantum=1.0, per_principal=2)
    for i in range(10):
        q.push("A", 1.0, f"A{i}")
    assert q.pop() == ("A", "A0") and q.pop() == ("A", "A1")
    assert q.pop() is None  # A is at its cap: its queued jobs wait, nothing else to run
    assert q.running("A") == 2 and q.queued("A") == 8
    q.push("B", 1.0, "B0")
    q.push("B", 1.0, "B1")
    q.push("B", 1.0, "B2")
    # B starts at once, without any of A's running jobs ending
    assert q.pop() == ("B", "B0") and q.pop() == ("B", "B1") and q.pop() is None
    q.done("A")
    assert q.pop() == ("A", "A2")
    q.done("B")
    assert q.pop() == ("B", "B2")


def test_an_idle_principal_keeps_no_credit() -> None:
    q: FairQueue[str] = FairQueue(quantum=10.0)
    q.push("B", 1.0, "B0")
    assert _drain(q) == ["B0"]  # B leaves with 9 unused
    for i in range(5):
        q.push("A", 10.0, f"A{i}")
    for i in range(3):
        q.push("B", 10.0, f"B{i}")
    assert _drain(q)[:4] == ["A0", "B0", "A1", "B1"]


def test_costs_are_clamped_and_done_is_checked() -> None:
    q: FairQueue[str] = FairQueue(quantum=5.0)
    q.push("A", 1e9, "huge")  # larger than a quantum: still served on A's first turn
    q.push("B", 0.0, "free")
    assert _drain(q) == ["huge", "free"]
    with pytest.raises(ValueError):
        q.done("A")
    with pytest.raises(ValueError):
        FairQueue(quantum=0.0)
    with pytest.raises(ValueError):
        FairQueue(quantum=1.0, per_principal=0)


# --- the executor and the gate (threads; events, no clock) --------------------------------------
class Flood:
    """Jobs that block until released; counts how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.started = threading.Semaphore(0)

    def job(self, x: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.release()
        try:
            assert self.release.wait(GUARD)
            return x
        finally:
            with self.lock:
                self.running -= 1

    def wait_started(self, n: int) -> None:
        for _ in range(n):
            assert self.started.acquire(timeout=GUARD)


@pytest.fixture
def executor() -> Iterator[FairExecutor]:
    ex = FairExecutor(4, per_principal=2, quantum=50.0, thread_name_prefix="fairtest")
    yield ex
    ex.shutdown()


def test_executor_serves_a_newcomer_while_a_flood_runs(executor: FairExecutor) -> None:
    flood = Flood()
    a: list[Future[int]] = [executor.submit("A", 49.0, flood.job, i) for i in range(24)]
    flood.wait_started(2)
    b = [executor.submit("B", 1.75, lambda x: x * 10, i) for i in range(4)]
    # B's photos finish while every one of A's is still blocked
    assert [f.result(timeout=GUARD) for f in b] == [0, 10, 20, 30]
    assert flood.running == 2 and not any(f.done() for f in a)
    flood.release.set()
    assert [f.result(timeout=GUARD) for f in a] == list(range(24))
    assert flood.most == 2  # never more than its share at once


def test_executor_map_keeps_order_and_propagates_errors(executor: FairExecutor) -> None:
    assert list(executor.map("A", 1.0, lambda x: x * x, range(10))) == [x * x for x in range(10)]

    def boom(x: int) -> int:
        if x == 3:
            raise RuntimeError("boom")
        return x

    with pytest.raises(RuntimeError, match="boom"):
        list(executor.map(None, 1.0, boom, range(6)))
    assert executor.submit(None, 1.0, lambda: 7).result(timeout=GUARD) == 7  # the workers survive
    assert threading.current_thread().name not in {t.name for t in executor._threads}
    assert all(t.name.startswith("fairtest_") for t in executor._threads)


def _my_nice() -> tuple[str, int]:
    return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_expensive_jobs_run_at_a_lower_priority_on_a_thread_of_their_own() -> None:
    base = _my_nice()[1]
    if base + LOW_PRIORITY_NICE > 19:
        pytest.skip("already at the lowest priority")
    ex = FairExecutor(2, per_principal=2, quantum=50.0, thread_name_prefix="prio", low_priority_above=5.0)
    try:
        cheap = ex.submit("A", 5.0, _my_nice).result(timeout=GUARD)
        dear = ex.submit("A", 5.1, _my_nice).result(timeout=GUARD)
        again = ex.submit("A", 1.0, _my_nice).result(timeout=GUARD)
    finally:
        ex.shutdown()
    assert cheap[0].startswith("prio_") and cheap[1] == base
    assert dear[0].startswith("prio_") and dear[0].endswith(".low") and dear[1] == base + LOW_PRIORITY_NICE
    assert again[1] == base  # the worker itself kept its priority
    assert _my_nice()[1] == base


def test_run_at_low_priority_returns_and_raises() -> None:
    assert run_at_low_priority(LOW_PRIORITY_NICE, lambda x: x + 1, 41) == 42

    def boom() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        run_at_low_priority(LOW_PRIORITY_NICE, boom)


def test_gate_lets_a_newcomer_in_while_a_flood_holds_its_share() -> None:
    gate = FairGate(2, per_principal=1, quantum=50.0)
    flood = Flood()

    def a_request() -> None:
        with gate.turn("A", 49.0):
            flood.job(0)

    threads = [threading.Thread(target=a_request) for _ in range(4)]
    for t in threads:
        t.start()
    flood.wait_started(1)
    done = threading.Event()

    def b_request() -> None:
        with gate.turn("B", 1.75):
            done.set()

    tb = threading.Thread(target=b_request)
    tb.start()
    assert done.wait(GUARD)
    assert flood.running == 1
    flood.release.set()
    for t in [*threads, tb]:
        t.join(GUARD)
    assert flood.most == 1


def test_gate_grants_in_fair_order() -> None:
    gate = FairGate(1, per_principal=1, quantum=1.0)
    order: list[str] = []
    hold = threading.Event()
    holder_in = threading.Event()

    def holder() -> None:
        with gate.turn("X", 1.0):
            holder_in.set()
            assert hold.wait(GUARD)

    tx = threading.Thread(target=holder)
    tx.start()
    assert holder_in.wait(GUARD)
    waiters: list[threading.Thread] = []
    queued = threading.Semaphore(0)

    def request(who: str) -> None:
        queued.release()
        with gate.turn(who, 1.0):
            order.append(who)

    # three of A's requests queue first, then one of B's: B is served second, not fourth
    for who in ["A", "A", "A", "B"]:
        t = threading.Thread(target=request, args=(who,))
        t.start()
        assert queued.acquire(timeout=GUARD)
        _wait_queued(gate, len(waiters) + 1)
        waiters.append(t)
    hold.set()
    for t in [tx, *waiters]:
        t.join(GUARD)
    assert order == ["A", "B", "A", "A"]


def _wait_queued(gate: FairGate, n: int) -> None:
    """Until ``n`` tickets wait in the gate (a condition, polled; not a timing assertion)."""
    ready = threading.Event()
    for _ in range(int(GUARD * 100)):
        with gate._cond:
            if len(gate._queue) >= n:
                ready.set()
                break
        threading.Event().wait(0.01)
    assert ready.is_set()


def test_anonymous_is_one_principal() -> None:
    q: FairQueue[str] = FairQueue(quantum=1.0, per_principal=1)
    ex = FairExecutor(2, per_principal=1, quantum=1.0)
    try:
        assert ex.submit(None, 1.0, lambda: ANONYMOUS).result(timeout=GUARD) == ""
    finally:
        ex.shutdown()
    q.push(ANONYMOUS, 1.0, "x")
    assert q.pop() == ("", "x")


# --- the assessor -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-fair")
    rng = np.random.default_rng(1)
    write_tiny_model(folder, bank=(rng.normal(size=(20, 16)), ["sneaker"] * 15 + ["bag"] * 5))
    return folder


@pytest.mark.parametrize("threads", [1, 2])
def test_one_platforms_flood_does_not_hold_back_anothers_assessment(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """Platform A has two requests of 6 photos in flight whose decodes cannot finish; platform B's
    4-photo assessment completes meanwhile, and A never holds more than its share of workers.
    Before the fair scheduler B's photos queued behind all of A's (and ``principal`` did not exist)."""
    a = Assessor.from_settings(Settings(weights_dir=tiny, vision_threads=threads))
    flood = Flood()
    inner = a._decode_and_gate

    def spy(photo: PhotoInput) -> object:
        if photo.filename.startswith("a-"):
            flood.job(0)
        return inner(photo)

    monkeypatch.setattr(a, "_decode_and_gate", spy)
    files = real_photos(4)
    mine = [PhotoInput(p.name, p.read_bytes()) for p in files]
    floods = [[PhotoInput(f"a-{r}-{i}-{p.name}", p.read_bytes()) for i, p in enumerate(files * 2)] for r in range(2)]
    expected = a.assess(mine).model_dump_json()
    a_threads = [threading.Thread(target=a.assess, args=(f,), kwargs={"principal": "platform-a"}) for f in floods]
    for t in a_threads:
        t.start()
    flood.wait_started(threads)  # A holds its whole share of the workers
    got: list[str] = []
    tb = threading.Thread(target=lambda: got.append(a.assess(mine, principal="platform-b").model_dump_json()))
    tb.start()
    tb.join(GUARD)
    assert got == [expected], "platform B waited for platform A's photos"
    assert flood.running == threads  # A's blocked photos: its share, no more
    flood.release.set()
    for t in a_threads:
        t.join(GUARD)
        assert not t.is_alive()
    assert flood.most == threads


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
@pytest.mark.parametrize("threads", [1, 2])
def test_the_assessor_decodes_large_photos_at_a_lower_priority(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    import io

    from PIL import Image

    base = _my_nice()[1]
    if base + LOW_PRIORITY_NICE > 19:
        pytest.skip("already at the lowest priority")
    a = Assessor.from_settings(Settings(weights_dir=tiny, vision_threads=threads))
    seen: dict[str, tuple[str, int]] = {}
    inner = a._decode_and_gate

    def spy(photo: PhotoInput) -> object:
        seen[photo.filename] = _my_nice()
        return inner(photo)

    monkeypatch.setattr(a, "_decode_and_gate", spy)
    buf = io.BytesIO()
    Image.new("RGB", (2500, 2000), (90, 120, 150)).save(buf, "PNG")  # 5 MP decoded: over 4
    small = real_photos(1)[0]
    r = a.assess([PhotoInput("large.png", buf.getvalue()), PhotoInput(small.name, small.read_bytes())])
    assert r.photos[0].width == 2500
    assert seen["large.png"][1] == base + LOW_PRIORITY_NICE and seen["large.png"][0].endswith(".low")
    assert seen[small.name][1] == base and not seen[small.name][0].endswith(".low")
