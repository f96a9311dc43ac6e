"""Background model runs (a shadow model scoring live assessments) that give way to live requests.

Run at the lowest CPU priority, a shadow model still slowed the requests it ran beside: on two
cores its inferences share the caches, the memory bandwidth and the interpreter lock with the
request's, and the 4-photo p50 rose by 9-22% between runs (docs/performance.md). Here a background
run starts only while no live vision work is in flight, and a run in progress when live work
arrives is stopped within a fraction of a millisecond (onnxruntime's ``RunOptions.terminate``) and
run again once the requests are done. The shadow scores in the time the requests leave idle; a
worker that is never idle drops its shadow jobs and counts them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import onnxruntime as ort

T = TypeVar("T")


class LiveWork:
    """How many live vision calls are in flight in this process, and the background runs to stop
    when one starts."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._live = 0
        self._background: set[ort.RunOptions] = set()
        self.stopped_runs = 0
        """Background runs stopped for live work (each run again later)."""

    @contextmanager
    def live(self) -> Iterator[None]:
        """Live work in flight: background runs wait, and the ones running stop."""
        with self._cond:
            self._live += 1
            for options in self._background:
                options.terminate = True
        try:
            yield
        finally:
            with self._cond:
                self._live -= 1
                if self._live == 0:
                    self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        """Live calls in flight now."""
        return self._live

    @property
    def busy(self) -> bool:
        return self._live > 0

    def wait_idle(self) -> None:
        """Block until no live work is in flight."""
        with self._cond:
            while self._live:
                self._cond.wait()

    def run_in_background(self, run: Callable[[ort.RunOptions], T]) -> T:
        """``run(options)`` (an onnxruntime call with these run options) while no live work is in
        flight; stopped when some starts, and run again once it is done."""
        while True:
            options = ort.RunOptions()
            with self._cond:
                while self._live:
                    self._cond.wait()
                self._background.add(options)
            try:
                return run(options)
            except Exception:
                if not options.terminate:
                    raise
            finally:
                with self._cond:
                    self._background.discard(options)
            with self._cond:
                self.stopped_runs += 1


LIVE_WORK = LiveWork()
"""The process's live vision work: the served model's assessments enter it, shadow models' runs
give way to it."""
