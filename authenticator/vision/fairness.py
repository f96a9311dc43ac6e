"""A fair share of the vision workers for every principal (issue 11).

Without it the assessor's pool served photos first come, first served: a platform sending two
requests of 12 large PNGs held every worker for seconds and another platform's 4-photo
assessment waited behind all 24 photos (0.2 s -> 10-22 s). Here each principal (platform, API
key; ``None`` is one shared anonymous principal) has its own queue:

- **at most ``per_principal`` of its jobs run at once**, out of ``slots`` in all (the assessor
  uses ``per_principal = vision_threads`` and ``slots = 2 x vision_threads``): one principal
  alone keeps every core busy, as before, and whoever comes next finds idle workers at once
  instead of waiting for the flood's long decodes to end (they cannot be interrupted);
- **the queues are served by deficit round robin** (Shreedhar & Varghese, 1995) on each job's
  cost, the megapixels it decodes: when the slots are short, every principal with queued work
  gets the same number of megapixels per round, whatever the size or number of its photos.

- **expensive jobs run at a lower CPU priority** (``low_priority_above``, nice +10, on a thread
  of their own: :func:`run_at_low_priority`): a decode that has started cannot be interrupted, so
  while it shares the cores with a newcomer's cheap photos the operating system gives those ~90 %.

:class:`FairQueue` is the pure policy (no threads, no clock; its tests need no images).
:class:`FairExecutor` runs jobs on worker threads in the queue's order; :class:`FairGate`
lets the calling thread run its job itself once its turn comes (``vision_threads`` 1).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "ANONYMOUS",
    "LOW_PRIORITY_NICE",
    "FairExecutor",
    "FairGate",
    "FairQueue",
    "lower_thread_priority",
    "run_at_low_priority",
]

T = TypeVar("T")
R = TypeVar("R")

#: The principal of jobs submitted without one (the CLI, library callers).
ANONYMOUS = ""
#: How much lower (in nice steps) expensive jobs run: nice 10 weighs ~1/9 of nice 0 in Linux's
#: scheduler, so a cheap job sharing a core with an expensive one gets ~90 % of it.
LOW_PRIORITY_NICE = 10


@dataclass
class _Lane(Generic[T]):
    jobs: deque[tuple[float, T]] = field(default_factory=deque)
    deficit: float = 0.0
    running: int = 0


class FairQueue(Generic[T]):
    """Per-principal FIFO queues served by deficit round robin, with a per-principal cap on jobs
    running at once. Not thread-safe: the callers hold their own lock.

    ``push(principal, cost, item)`` queues a job (its cost is clamped to ``(0, quantum]``, so a
    principal's turn always affords at least one job); ``pop()`` hands out the next job whose
    principal is under ``per_principal`` running jobs, or None; ``done(principal)`` ends one of
    its running jobs.
    """

    def __init__(self, *, quantum: float, per_principal: int | None = None) -> None:
        if quantum <= 0:
            raise ValueError("quantum must be positive")
        if per_principal is not None and per_principal < 1:
            raise ValueError("per_principal must be at least 1")
        self.quantum = float(quantum)
        self.per_principal = per_principal
        self._lanes: dict[str, _Lane[T]] = {}
        self._ring: list[str] = []  # principals with queued jobs, in the order they became active
        self._pos = 0
        self._topped = False  # whether the lane at _pos has had its quantum for this visit

    def __len__(self) -> int:
        return sum(len(lane.jobs) for lane in self._lanes.values())

    def queued(self, principal: str) -> int:
        lane = self._lanes.get(principal)
        return len(lane.jobs) if lane else 0

    def running(self, principal: str) -> int:
        lane = self._lanes.get(principal)
        return lane.running if lane else 0

    def push(self, principal: str, cost: float, item: T) -> None:
        cost = min(max(float(cost), 1e-9), self.quantum)
        lane = self._lanes.setdefault(principal, _Lane())
        if not lane.jobs:
            self._ring.append(principal)  # joins the round at its end
        lane.jobs.append((cost, item))

    def pop(self) -> tuple[str, T] | None:
        """The next job to start, as ``(principal, item)``; None when every queued job's
        principal is at its cap (or nothing is queued)."""
        for _ in range(len(self._ring) + 1):  # every eligible lane affords a job on a fresh visit
            if not self._ring:
                return None
            principal = self._ring[self._pos]
            lane = self._lanes[principal]
            if self.per_principal is None or lane.running < self.per_principal:
                if not self._topped:
                    lane.deficit += self.quantum
                    self._topped = True
                cost, item = lane.jobs[0]
                if lane.deficit >= cost:
                    lane.jobs.popleft()
                    lane.deficit -= cost
                    lane.running += 1
                    if not lane.jobs:  # leaves the round; an idle lane keeps no credit
                        lane.deficit = 0.0
                        self._ring.pop(self._pos)
                        self._topped = False
                        if self._pos >= len(self._ring):
                            self._pos = 0
                    return principal, item
            self._pos = (self._pos + 1) % len(self._ring)
            self._topped = False
        return None

    def done(self, principal: str) -> None:
        lane = self._lanes.get(principal)
        if lane is None or lane.running <= 0:
            raise ValueError(f"no running job of {principal!r}")
        lane.running -= 1
        if lane.running == 0 and not lane.jobs:
            del self._lanes[principal]


def lower_thread_priority(nice: int, *, idle: bool = False) -> None:
    """Lower the calling thread's priority by ``nice`` for the rest of its life (Linux keeps one per
    thread; elsewhere, or where it may not be changed, the thread keeps normal priority). ``idle``:
    also SCHED_IDLE, for work that must only take spare CPU (the shadow models' thread): a thread
    that wakes takes the core from it at once."""
    if not sys.platform.startswith("linux"):  # elsewhere a thread id is no PRIO_PROCESS target
        return
    with contextlib.suppress(OSError):
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + nice))
        if idle:
            os.sched_setscheduler(me, os.SCHED_IDLE, os.sched_param(0))


def run_at_low_priority(nice: int, fn: Callable[..., R], /, *args: Any) -> R:
    """``fn(*args)`` on a fresh thread whose scheduling priority is lowered by ``nice`` (Linux
    keeps a nice value per thread; an unprivileged thread can raise its own but never lower it
    back, hence a thread per call, ~0.1 ms, for jobs that take hundreds). Where the platform has
    no per-thread priority the job simply runs at normal priority. (A thread that runs only
    such work lowers its own priority once: :func:`lower_thread_priority`.)"""
    outcome: list[Any] = []

    def body() -> None:
        lower_thread_priority(nice)
        try:
            outcome.append((True, fn(*args)))
        except BaseException as exc:
            outcome.append((False, exc))

    t = threading.Thread(target=body, name=f"{threading.current_thread().name}.low", daemon=True)
    t.start()
    t.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


@dataclass
class _Job:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    cost: float


class FairExecutor:
    """``workers`` threads (named ``<prefix>_<n>``, started on first use) that run submitted jobs
    in :class:`FairQueue` order, at most ``per_principal`` of one principal's jobs at once; a job
    costing more than ``low_priority_above`` runs through :func:`run_at_low_priority`."""

    def __init__(
        self,
        workers: int,
        *,
        per_principal: int,
        quantum: float,
        thread_name_prefix: str = "fair",
        low_priority_above: float | None = None,
        nice: int = LOW_PRIORITY_NICE,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.low_priority_above = low_priority_above
        self.nice = nice
        self.per_principal = min(per_principal, workers)
        self._queue: FairQueue[_Job] = FairQueue(quantum=quantum, per_principal=self.per_principal)
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._shutdown = False
        self._prefix = thread_name_prefix

    def submit(self, principal: str | None, cost: float, fn: Callable[..., R], /, *args: Any) -> Future[R]:
        future: Future[R] = Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            self._queue.push(principal or ANONYMOUS, cost, _Job(future, fn, args, cost))
            if not self._threads:  # all at once: a lazily grown pool can miss a wake-up
                for n in range(self.workers):
                    t = threading.Thread(target=self._work, name=f"{self._prefix}_{n}", daemon=True)
                    self._threads.append(t)
                    t.start()
            self._cond.notify()
        return future

    def map(self, principal: str | None, cost: float, fn: Callable[[Any], R], items: Iterable[Any]) -> Iterator[R]:
        """Like :meth:`concurrent.futures.Executor.map`: results in order; on an error the jobs
        not started yet are cancelled."""
        futures = [self.submit(principal, cost, fn, x) for x in items]

        def results() -> Iterator[R]:
            try:
                for f in futures:
                    yield f.result()
            finally:
                for f in futures:
                    f.cancel()

        return results()

    def shutdown(self) -> None:
        """Stop the workers once the queue is empty (queued jobs still run)."""
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while (got := self._queue.pop()) is None:
                    if self._shutdown and not len(self._queue):
                        return
                    self._cond.wait()
            principal, job = got
            try:
                if job.future.set_running_or_notify_cancel():
                    try:
                        if self.low_priority_above is not None and job.cost > self.low_priority_above:
                            job.future.set_result(run_at_low_priority(self.nice, job.fn, *job.args))
                        else:
                            job.future.set_result(job.fn(*job.args))
                    except BaseException as exc:  # delivered to the caller, like ThreadPoolExecutor
                        job.future.set_exception(exc)
            finally:
                with self._cond:
                    self._queue.done(principal)
                    self._cond.notify_all()  # a capped principal's next job may start now


@dataclass
class _Ticket:
    granted: bool = False
    abandoned: bool = False  # its caller stopped waiting (an exception in wait())


class FairGate:
    """At most ``slots`` holders at once, ``per_principal`` of one principal's; the waiting
    callers are let in by :class:`FairQueue` order. ``with gate.turn(principal, cost): ...``."""

    def __init__(self, slots: int, *, per_principal: int, quantum: float) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self._queue: FairQueue[_Ticket] = FairQueue(quantum=quantum, per_principal=min(per_principal, slots))
        self._cond = threading.Condition()
        self._in_use = 0

    @contextmanager
    def turn(self, principal: str | None, cost: float) -> Iterator[None]:
        who = principal or ANONYMOUS
        ticket = _Ticket()
        with self._cond:
            self._queue.push(who, cost, ticket)
            self._grant()
            try:
                while not ticket.granted:
                    self._cond.wait()
            except BaseException:
                if ticket.granted:
                    self._release(who)
                else:
                    ticket.abandoned = True
                raise
        try:
            yield
        finally:
            with self._cond:
                self._release(who)

    def _release(self, principal: str) -> None:
        self._queue.done(principal)
        self._in_use -= 1
        self._grant()

    def _grant(self) -> None:
        granted = False
        while self._in_use < self.slots and (got := self._queue.pop()) is not None:
            principal, ticket = got
            if ticket.abandoned:
                self._queue.done(principal)
                continue
            ticket.granted = True
            self._in_use += 1
            granted = True
        if granted:
            self._cond.notify_all()
