"""Background model runs (a shadow model scoring live assessments) that give way to live requests.

Run at the lowest CPU priority, a shadow model still slowed the requests it ran beside: on two
cores its inferences share the caches, the memory bandwidth and the interpreter lock with the
request's, and the 4-photo p50 rose by 9-22% between runs (docs/performance.md). Here a background
run starts only while no live vision work is in flight, and a run in progress when live work
arrives is stopped within a fraction of a millisecond (onnxruntime's ``RunOptions.terminate``) and
run again once the requests are done. The shadow scores in the time the requests leave idle; a
worker that is never idle drops its shadow jobs and counts them. The workers of one deployment
share their live counts (:mod:`.live_slots`), so a shadow also gives way to the other workers'
requests: it looks at theirs every ``POLL_S`` while it waits or runs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import onnxruntime as ort

from authenticator.vision.live_slots import LiveSlots

T = TypeVar("T")
log = logging.getLogger(__name__)

POLL_S = 0.002
"""How often a background run that waits, or runs, looks at the other workers' live work."""


class LiveWork:
    """How many live vision calls are in flight in this process, and the background runs to stop
    when one starts."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._live = 0
        self._background: set[ort.RunOptions] = set()
        self._slots: LiveSlots | None = None
        self._slots_key: tuple[Path, int] | None = None
        self._watcher: threading.Thread | None = None
        self.stopped_runs = 0
        """Background runs stopped for live work (each run again later)."""

    def attach(self, path: Path) -> None:
        """Share live work with the other processes attached to ``path`` (the workers of one
        deployment, on one machine): background runs here also give way to theirs. Once per
        process and path (a process holds one slot: see :mod:`.live_slots`)."""
        key = (path, os.getpid())
        with self._cond:
            if self._slots_key == key:
                return
            if self._slots is not None and self._slots_key is not None and self._slots_key[1] == key[1]:
                self._slots.close()
            self._slots, self._slots_key = None, key
            try:
                self._slots = LiveSlots(path)
            except OSError as exc:  # no byte-range locks there, or every slot taken: this worker alone
                log.warning("live work is not shared with other workers (%s): %s", path, exc)
                return
            self._slots.publish(self._live)

    def _count(self, delta: int) -> None:
        """Caller holds ``_cond``."""
        self._live += delta
        if self._slots is not None and self._slots_key is not None and self._slots_key[1] == os.getpid():
            self._slots.publish(self._live)

    def _others_busy(self) -> bool:
        slots = self._slots
        return slots is not None and slots.others_busy()

    @contextmanager
    def live(self) -> Iterator[None]:
        """Live work in flight: background runs wait, and the ones running stop."""
        with self._cond:
            self._count(1)
            self._stop_background()
        try:
            yield
        finally:
            with self._cond:
                self._count(-1)
                if self._live == 0:
                    self._cond.notify_all()

    def _stop_background(self) -> None:
        """Caller holds ``_cond``: stop every background run in progress (each raises, and is run
        again once live work is done)."""
        for options in self._background:
            options.terminate = True

    @property
    def in_flight(self) -> int:
        """Live calls in flight now."""
        return self._live

    @property
    def busy(self) -> bool:
        return self._live > 0

    def _await_idle(self) -> None:
        """Caller holds ``_cond``: wait until no live work is in flight here or, when attached, in
        the other workers (looked at every ``POLL_S``)."""
        while self._live or self._others_busy():
            self._cond.wait(None if self._live else POLL_S)

    def wait_idle(self) -> None:
        """Block until no live work is in flight."""
        with self._cond:
            self._await_idle()

    def _watch_others(self) -> None:
        """While background runs are in progress, stop them when another worker's live work starts."""
        while True:
            with self._cond:
                while not self._background:
                    self._cond.wait()
            time.sleep(POLL_S)
            if self._others_busy():
                with self._cond:
                    self._stop_background()

    def run_in_background(self, run: Callable[[ort.RunOptions], T]) -> T:
        """``run(options)`` (an onnxruntime call with these run options) while no live work is in
        flight; stopped when some starts, and run again once it is done."""
        while True:
            options = ort.RunOptions()
            with self._cond:
                self._await_idle()
                self._background.add(options)
                if self._slots is not None and self._watcher is None:
                    self._watcher = threading.Thread(target=self._watch_others, name="live-work-watch", daemon=True)
                    self._watcher.start()
                self._cond.notify_all()  # the watcher
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
