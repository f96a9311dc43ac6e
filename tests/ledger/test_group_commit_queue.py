"""The group-commit queue on its own (no database): what it promises any ``run`` it is given."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from authenticator.ledger.group_commit import GroupCommit, Waiter


@dataclass(eq=False)
class Job(Waiter):
    value: int
    result: int | None = None
    seen_by: list[str] = field(default_factory=list)


class Runs:
    """A ``run`` that keeps what it was given: the groups, in order, and the sessions."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.groups: list[list[int]] = []
        self.sessions_opened = 0
        self.closed: list[int] = []
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def prepare(self, job: Job) -> None:
        if job.value < 0:
            raise ValueError(f"no negative jobs ({job.value})")
        job.seen_by.append("prepare")

    def run(self, session: int | None, group: list[Job]) -> int | None:
        self.gate.wait(30)
        if session is None:
            self.sessions_opened += 1
            session = self.sessions_opened
        values = [j.value for j in group]
        self.groups.append(values)
        if self.fail_on is not None and self.fail_on in values:
            for j in group:
                j.error, j.done = RuntimeError(f"group with {self.fail_on} failed"), True
            return None
        for j in group:
            j.result, j.done = j.value * 2, True
        return session

    def close(self, session: int) -> None:
        self.closed.append(session)


def _queue(runs: Runs, max_group: int = 1000) -> GroupCommit[Job]:
    return GroupCommit(runs.prepare, runs.run, runs.close, max_group)


def _submit_all(queue: GroupCommit[Job], jobs: list[Job]) -> dict[int, BaseException]:
    errors: dict[int, BaseException] = {}
    lock = threading.Lock()

    def one(job: Job) -> None:
        try:
            queue.submit(job)
        except BaseException as exc:  # the outcome under test
            with lock:
                errors[job.value] = exc

    threads = [threading.Thread(target=one, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return errors


def test_every_job_runs_once_in_groups_no_larger_than_the_limit() -> None:
    runs = Runs()
    runs.gate.clear()  # the first leader is held, so the others queue behind it
    queue = _queue(runs, max_group=8)
    jobs = [Job(value=i) for i in range(40)]
    opener = threading.Timer(0.2, runs.gate.set)
    opener.start()
    errors = _submit_all(queue, jobs)
    assert errors == {}
    ran = [v for g in runs.groups for v in g]
    assert sorted(ran) == list(range(40))  # each exactly once
    assert all(len(g) <= 8 for g in runs.groups)
    assert len(runs.groups) < 40  # queued jobs shared a run
    assert all(j.result == 2 * j.value and j.seen_by == ["prepare"] for j in jobs)
    # one session per leader's run of groups, each closed once
    assert sorted(runs.closed) == list(range(1, runs.sessions_opened + 1))


def test_a_job_that_fails_to_prepare_gets_its_error_and_the_others_run() -> None:
    runs = Runs()
    queue = _queue(runs)
    errors = _submit_all(queue, [Job(value=1), Job(value=-5), Job(value=3)])
    assert list(errors) == [-5] and "no negative jobs" in str(errors[-5])
    assert sorted(v for g in runs.groups for v in g) == [1, 3]


def test_a_failed_run_fails_its_group_and_the_next_group_gets_a_fresh_session() -> None:
    runs = Runs(fail_on=7)
    queue = _queue(runs)
    with pytest.raises(RuntimeError, match="group with 7 failed"):
        queue.submit(Job(value=7))
    ok = Job(value=2)
    queue.submit(ok)
    assert ok.result == 4
    assert runs.sessions_opened == 2  # the failed run returned None: the next one opened another
