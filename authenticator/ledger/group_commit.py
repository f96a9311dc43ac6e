"""Group commit: the commands of concurrent callers run in groups, one transaction per group.

A caller queues its command; the first caller that finds no leader becomes the leader and runs
every waiting command, in arrival order and in groups of at most ``max_group``, until the queue
is empty; the others only wait for their own command. Each caller gets its outcome once its
group is durable. Kept apart from the ledger because none of this knows what a command holds:
the ledger gives it a ``prepare`` (the state-free work, outside the transaction) and a ``run``
(one group in one transaction, :class:`authenticator.ledger.log.Ledger`).
"""

from __future__ import annotations

import itertools
import threading
import time
from _thread import LockType
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar


def _held_lock() -> LockType:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False, kw_only=True)
class Waiter:
    """What the queue keeps of a command: its outcome and the lock its caller waits on."""

    error: BaseException | None = None
    done: bool = False
    finished: LockType = field(default_factory=_held_lock)
    """Held until the leader has finished the command: the caller blocks acquiring it (a bare
    lock costs a fraction of a ``threading.Event``, which is a condition variable)."""
    next: Waiter | None = None
    """The next waiting caller of the same finished group: this caller wakes it (see
    :meth:`GroupCommit._wake`)."""
    gone: bool = False
    """The caller stopped waiting (interrupted): the wake-up chain skips it."""


C = TypeVar("C", bound=Waiter)


class GroupCommit(Generic[C]):
    """The queue, its leader and the wake-up chain (see the module docstring).

    ``prepare(command)`` runs in the leader for each command of a group before its transaction;
    if it raises, that command gets the error and the group goes on without it. ``run(session,
    group)`` integrates the prepared commands in one transaction and returns the session (a
    connection, say) for the next group, or None to get a fresh one; ``close(session)`` ends the
    last one. ``run`` marks each command ``done`` (with ``error`` set where it failed)."""

    MAX_LINGER_S = 0.010
    """The longest a leader waits for siblings (see :meth:`_await_siblings`)."""
    QUIET_S = 0.001
    """A leader stops waiting for siblings once none has arrived for this long."""

    def __init__(
        self,
        prepare: Callable[[C], None],
        run: Callable[[Any, list[C]], Any],
        close: Callable[[Any], None],
        max_group: int,
    ) -> None:
        self._prepare, self._run, self._close, self.max_group = prepare, run, close, max_group
        self._pending: list[C] = []
        self._queue_mutex = threading.Lock()
        self._queue_cond = threading.Condition(self._queue_mutex)
        self._expect = 0
        """While a leader waits for siblings: the queue length that wakes it."""
        self._last_group_ended = 0.0
        """When the last group ended (monotonic): a leader's wait for siblings counts from it."""
        self._recent_size = 0
        """How many commands the recent groups held (see :meth:`_await_siblings`)."""
        self._leading = False

    def submit(self, command: C) -> None:
        """Queue ``command`` and return once its group has run; raises the command's error."""
        with self._queue_cond:
            self._pending.append(command)
            lead = not self._leading
            self._leading = True
            if self._expect and len(self._pending) >= self._expect:
                self._queue_cond.notify()
        if lead:
            self._lead(command)
        woken = False
        try:
            woken = command.finished.acquire()
        finally:
            self._pass_on(command, woken)
        if command.error is not None:
            raise command.error

    def _pass_on(self, command: C, woken: bool) -> None:
        """Wake the caller after ``command`` in its group's chain (see :meth:`_wake`). A caller
        that stopped waiting (interrupted) leaves the chain: if the chain is not built yet it is
        skipped, if it is, the next one is woken now (its group is finished either way)."""
        with self._queue_mutex:
            if not woken:
                command.gone = True
            nxt, command.next = command.next, None
        if nxt is not None:
            nxt.finished.release()

    def _wake(self, group: list[C], leader: C | None) -> None:
        """Give a finished group its outcomes: wake its first waiting caller, who wakes the next
        as it leaves (:meth:`_pass_on`), and so on.

        Releasing every caller at once makes up to ``max_group`` threads runnable together, all
        fighting for the GIL and the two cores: with 64 callers that storm cost more than the
        group's own work. A chain keeps one or two runnable at a time."""
        with self._queue_mutex:
            waiting = [c for c in group if c is not leader and not c.gone]
            for a, b in itertools.pairwise(waiting):
                a.next = b
        if leader is not None and leader in group:
            leader.finished.release()
        if waiting:
            waiting[0].finished.release()

    def _lead(self, own: C | None = None) -> None:
        """Run every command waiting, in arrival order, one ``run`` per group, until none is
        left. The leader keeps one session for its run of groups."""
        session: Any = None
        try:
            while True:
                with self._queue_cond:
                    self._await_siblings()
                    if not self._pending:
                        self._leading = False
                        return
                    group, self._pending = self._pending[: self.max_group], self._pending[self.max_group :]
                try:
                    ready = self._prepare_group(group)
                    if ready:
                        session = self._run(session, ready)
                except BaseException as exc:  # interrupted: fail what waits rather than leave it hanging
                    with self._queue_mutex:
                        left, self._pending, self._leading = self._pending, [], False
                    for command in [*group, *left]:
                        if not command.done:
                            command.error, command.done = exc, True
                        command.finished.release()
                    raise
                self._last_group_ended = time.monotonic()
                # the concurrency to wait for: the largest recent group, forgotten slowly
                self._recent_size = max(len(group), self._recent_size - (self._recent_size + 7) // 8)
                self._wake(group, own)
        finally:
            if session is not None:
                self._close(session)

    def _prepare_group(self, group: list[C]) -> list[C]:
        """``prepare`` each command (outside the transaction); a command it raises for gets the
        error and is left out. Returns the commands left.

        The leader does this for its callers rather than each caller before queueing: under the
        GIL the callers' work runs one at a time anyway, and 64 threads taking turns through it
        made it cost twice as much CPU as one thread going through the whole group (measured:
        ~90 against ~50 µs per entry)."""
        ready = []
        for command in group:
            try:
                self._prepare(command)
            except Exception as exc:  # this caller's command; the group goes on without it
                command.error, command.done = exc, True
                continue
            ready.append(command)
        return ready

    def _await_siblings(self) -> None:
        """While fewer commands are queued than the recent groups held (but some), wait for the
        others: until that many are queued, none has arrived for ``QUIET_S``, or ``MAX_LINGER_S``
        has passed since the last group ended.

        The callers of a group get their outcomes together and, under load, submit again
        together; without the wait the first ones back form a small group and the rest the next,
        each paying a transaction (measured on the ledger with 64 callers: a third of the groups
        held one command, the mean 30). A lone caller (the recent groups held one command) and a
        queue that has caught up never wait; when fewer callers remain, the quiet gap ends the
        wait after a millisecond. Caller holds ``_queue_cond``."""
        expected, ended = self._recent_size, self._last_group_ended
        if not 0 < len(self._pending) < expected:
            return
        self._expect = expected
        try:
            while len(self._pending) < expected:
                left = self.MAX_LINGER_S - (time.monotonic() - ended)
                if left <= 0:
                    return
                before = len(self._pending)
                self._queue_cond.wait(min(self.QUIET_S, left))  # woken early once ``expected`` are queued
                if len(self._pending) == before:
                    return
        finally:
            self._expect = 0
