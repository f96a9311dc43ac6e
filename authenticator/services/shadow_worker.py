"""The process the shadow models score in, apart from the worker that answers requests.

A shadow scoring in a thread of the serving process shared the interpreter lock with the requests
(SCHED_IDLE cannot help a thread that waits for a lock rather than for a core), and it wrote one
transaction per assessment: an fsync and the database's write lock that the requests' appends wait
for. Here it shares only the cores, at SCHED_IDLE, and stores its scores in batches. Measured on the
4-photo p50, one request at a time (docs/performance.md): thread +11.3% and +12.9%; this process
writing per assessment +12.5% and +13.4% (too few blocks to tell it from the thread); with batched
writes +2.2% to +7.6%. What is left is sharing two cores and their caches.

Protocol (``multiprocessing.connection`` framing on two pipes given as file descriptors): the first
message is ``(settings, database_url)``; each later one is a :class:`ShadowTask`, answered with
``None`` once it is scored or with the error's text; scores are stored in batches (:class:`_Results`).
End of input stores what is left and ends the process.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select

from authenticator.config import Settings
from authenticator.db import create_ledger_engine, utc_now, write_tx
from authenticator.store.tables import shadow_results

if TYPE_CHECKING:
    from authenticator.services.serving import ShadowJob
    from authenticator.vision.service import Assessor

SHADOW_NICE = 19
FLUSH_ROWS = 32
FLUSH_SECONDS = 5.0
IDLE_FLUSH_SECONDS = 0.25


@dataclass(frozen=True)
class ShadowTask:
    """One recorded assessment for one shadow model; ``active`` names every shadow model still
    registered, so the process can let go of the others."""

    model_sha256: str
    card_path: Path
    active: frozenset[str]
    job: ShadowJob


def lower_own_priority() -> None:
    """Nice 19 and SCHED_IDLE for this process; threads created afterwards inherit both."""
    os.setpriority(os.PRIO_PROCESS, 0, SHADOW_NICE)
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def score(assessor: Assessor, job: ShadowJob) -> dict[str, Any]:
    """The ``app_shadow_results`` row of ``job`` scored by ``assessor``."""
    from authenticator.vision.service import PhotoInput

    result = assessor.assess(
        [PhotoInput(name, data) for name, data in job.photos], item_id=job.item_id, principal="shadow", line=job.line
    )
    return {
        "model_sha256": assessor.model_sha256,
        "assessment_id": job.assessment_id,
        "item_id": job.item_id,
        "decision": result.decision,
        "probability_authentic": result.probability_authentic,
        "champion_sha256": job.champion_sha256,
        "champion_decision": job.champion_decision,
        "scored_at": utc_now(),
    }


def store(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Store scored rows in one transaction, each (model, assessment) once."""
    with write_tx(engine) as conn:
        for row in rows:
            exists = conn.execute(
                select(shadow_results.c.assessment_id).where(
                    shadow_results.c.model_sha256 == row["model_sha256"],
                    shadow_results.c.assessment_id == row["assessment_id"],
                )
            ).first()
            if exists is None:
                conn.execute(insert(shadow_results).values(**row))


class _Results:
    """Scored rows waiting to be stored: written together when no task is waiting, when
    ``FLUSH_ROWS`` have gathered or ``FLUSH_SECONDS`` have passed since the oldest, so the shadow
    takes the database's write lock (and its fsync) once per batch, not once per assessment, away
    from the live requests' appends. A crash loses at most one batch of advisory scores."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows: list[dict[str, Any]] = []
        self.oldest = 0.0

    def add(self, row: dict[str, Any]) -> None:
        if not self.rows:
            self.oldest = time.monotonic()
        self.rows.append(row)
        if len(self.rows) >= FLUSH_ROWS or time.monotonic() - self.oldest >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            rows, self.rows = self.rows, []
            store(self.engine, rows)


def serve(inbox: Connection, outbox: Connection) -> None:
    from authenticator.vision.card import ModelCard
    from authenticator.vision.service import Assessor

    settings, database_url = inbox.recv()
    assert isinstance(settings, Settings)
    settings = settings.model_copy(update={"vision_threads": 1})  # the whole assessment on this one thread
    engine = create_ledger_engine(database_url)
    results = _Results(engine)
    assessors: dict[str, Assessor] = {}
    try:
        while True:
            try:
                if results.rows and not inbox.poll(IDLE_FLUSH_SECONDS):
                    results.flush()  # nothing more to score for now: store what is scored
                task = inbox.recv()
            except EOFError:
                return
            assert isinstance(task, ShadowTask)
            for sha in [s for s in assessors if s not in task.active]:
                del assessors[sha]
            reply: str | None = None
            try:
                if task.model_sha256 not in assessors:
                    assessors[task.model_sha256] = Assessor(ModelCard.load(task.card_path), task.card_path, settings)
                results.add(score(assessors[task.model_sha256], task.job))
            except Exception as exc:  # reported to the serving worker, which counts it as failed
                reply = f"{type(exc).__name__}: {exc}"
            try:
                outbox.send(reply)
            except OSError:  # the serving worker is gone: store what is scored and end
                return
    finally:
        try:
            results.flush()
        finally:
            engine.dispose()


def main() -> None:
    lower_own_priority()
    inbox = Connection(int(sys.argv[1]), writable=False)
    outbox = Connection(int(sys.argv[2]), readable=False)
    serve(inbox, outbox)


if __name__ == "__main__":  # run as the module itself, so the tasks it unpickles are its own classes
    from authenticator.services.shadow_worker import main as run

    run()
