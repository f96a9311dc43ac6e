"""Where the photos of requests run: the process's vision workers, each principal in its fair turn.

Kept apart from the assessor (:mod:`authenticator.vision.service`), which says what is done to a
photo; this says on which thread, when, and at what CPU priority (see
:mod:`authenticator.vision.fairness` for the scheduling itself).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from authenticator.vision.fairness import LOW_PRIORITY_NICE, FairExecutor, FairGate, run_at_low_priority
from authenticator.vision.heatmap import MapChunks

T = TypeVar("T")
R = TypeVar("R")


def photo_cost(decode_megapixels: float) -> float:
    """A photo's share of the workers: the megapixels it decodes plus about one megapixel's worth
    for the quality gate, preprocessing and one forward pass."""
    return decode_megapixels + 1.0


#: Photos that decode more than 4 megapixels (a PNG, WebP or HEIC of a 12 MP camera; never a JPEG,
#: decoded at reduced scale) run at a lower CPU priority: when the cores are short, an ordinary
#: photo is not slowed by expensive ones; on an idle machine they run at full speed.
LOW_PRIORITY_ABOVE = photo_cost(4.0)


class PhotoScheduler:
    """The pool of one assessor (or, with one thread, a gate for the requests' own threads)."""

    def __init__(self, threads: int, max_photo_megapixels: float) -> None:
        self.threads = threads
        # Deficit round robin quantum: the cost of the largest photo a request may hold.
        self._quantum = photo_cost(max_photo_megapixels)
        self._pool: FairExecutor | None = None
        self._gate: FairGate | None = None
        self._pool_pid = 0
        self._gate_pid = 0
        self._lock = threading.Lock()

    def executor(self) -> FairExecutor | None:
        """The pool (created on first use; None with ``threads`` 1): twice ``threads`` workers, at
        most ``threads`` of them on one principal's photos, so a principal alone uses as many
        threads as before and the next one finds idle workers. A process forked after the pool
        was made gets a pool of its own: the parent's threads are not copied."""
        if self.threads <= 1:
            return None
        pid = os.getpid()
        with self._lock:
            if self._pool is None or self._pool_pid != pid:
                self._pool = FairExecutor(
                    2 * self.threads,
                    per_principal=self.threads,
                    quantum=self._quantum,
                    thread_name_prefix="vision",
                    low_priority_above=LOW_PRIORITY_ABOVE,
                )
                self._pool_pid = pid
            return self._pool

    def _sequential_gate(self) -> FairGate:
        """With ``threads`` 1 the request's thread runs its photos itself, one at a time, once
        the gate lets it: one photo per principal at once, two in all, fair order."""
        pid = os.getpid()
        with self._lock:
            if self._gate is None or self._gate_pid != pid:
                self._gate = FairGate(2, per_principal=1, quantum=self._quantum)
                self._gate_pid = pid
            return self._gate

    def run_each(
        self, fn: Callable[[T], R], jobs: Sequence[T], costs: Sequence[float], principal: str | None
    ) -> list[R]:
        """``fn(job)`` for every job, results in order, each in ``principal``'s fair turn; an
        error propagates (jobs not started yet are cancelled)."""
        pool = self.executor()
        if pool is None:
            gate = self._sequential_gate()
            out = []
            for job, cost in zip(jobs, costs, strict=True):
                with gate.turn(principal, cost):
                    if cost > LOW_PRIORITY_ABOVE:
                        out.append(run_at_low_priority(LOW_PRIORITY_NICE, fn, job))
                    else:
                        out.append(fn(job))
            return out
        futures = [pool.submit(principal, cost, fn, job) for job, cost in zip(jobs, costs, strict=True)]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.cancel()  # the ones not started yet, after an error

    def chunk_mapper(self, principal: str | None, cost: float) -> MapChunks:
        """How a request's heat-map chunks run: on the pool, or one at a time through the gate,
        each costing ``cost``."""
        pool = self.executor()
        if pool is not None:
            return functools.partial(pool.map, principal, cost)
        return functools.partial(self._gated_map, self._sequential_gate(), principal, cost)

    @staticmethod
    def _gated_map(gate: FairGate, principal: str | None, cost: float, fn: Any, jobs: Iterable[Any]) -> Iterator[Any]:
        for job in jobs:
            with gate.turn(principal, cost):
                yield fn(job)
