"""Which model this worker process serves with, switched without a restart, and its shadows.

:class:`ServingModels` (one per worker process) reads the newest lineage entry's log index before
every assessment (one primary-key lookup). When it moved, the worker reads the lineage, loads the
model that serves now (and the active shadow models) and switches; a request takes its assessor once,
at its start, so requests in flight finish on the model they started with, and a request that starts
after the ``model.promoted`` commit is answered by the new model on every worker (the switch point is
the commit, the same for all of them). Every verdict names the model that gave it.

:class:`ShadowScorer` scores recorded assessments with the shadow models on one background thread per
worker at the lowest CPU priority (SCHED_IDLE and nice 19), from a bounded queue: a job that does not fit
is dropped and counted, so a shadow never delays or changes a verdict. Scores go to ``app_shadow_results``
in batches.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from authenticator.contracts.models import ShadowCertified, ShadowReport
from authenticator.db import read_tx, write_tx
from authenticator.errors import AuthenticatorError
from authenticator.services.lifecycle import (
    card_path_of,
    lineage_marker,
    lineage_rows,
    serving_from,
    shadows_from,
    shipped_sha256,
)
from authenticator.services.shadow_scoring import ScoreBatch, score
from authenticator.store.tables import shadow_counts, shadow_results
from authenticator.vision.card import ModelCard
from authenticator.vision.fairness import lower_thread_priority
from authenticator.vision.live_work import LIVE_WORK

if TYPE_CHECKING:
    from authenticator.services.context import ServiceContext
    from authenticator.vision.product_lines import DeclaredLine
    from authenticator.vision.service import Assessor

log = logging.getLogger("authenticator.serving")

RETIRED_GRACE_S = 120.0
"""A retired model's worker threads are stopped this long after the switch (no request lasts as long)."""
SHADOW_NICE = 19


def _load(ctx: ServiceContext, card_path: Path) -> Assessor:
    from authenticator.vision.service import Assessor

    return Assessor(ModelCard.load(card_path), card_path, ctx.settings)


@dataclass(frozen=True)
class ShadowModel:
    """A registered shadow model: loaded by the shadow thread (:class:`ShadowScorer`), not for requests."""

    model_sha256: str
    card_path: Path


class ServingModels:
    """The serving assessor (and the shadow ones) of this worker process, kept current with the log."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._seen: int | None = None
        self._loaded: dict[str, Assessor] = {}
        if ctx.assessor is not None:
            self._loaded[ctx.assessor.model_sha256] = ctx.assessor
        self._shipped = shipped_sha256(ctx.settings)
        self.shadows: list[ShadowModel] = []
        self._retired: list[tuple[float, Assessor]] = []
        self.current()

    def current(self) -> Assessor:
        """The assessor to answer the next request with (switching first if the log says so)."""
        with read_tx(self.ctx.engine) as conn:
            marker = lineage_marker(conn)
        if marker != self._seen:
            with self._lock:
                if marker != self._seen:
                    self._switch(marker)
        assessor = self.ctx.assessor
        if assessor is None:
            raise AuthenticatorError("no model is loaded")
        return assessor

    def _switch(self, marker: int) -> None:
        with read_tx(self.ctx.engine) as conn:
            rows = [r for r in lineage_rows(conn) if r.index <= marker]
        serving = serving_from(rows, self._shipped)
        if serving not in self._loaded:
            try:
                self._loaded[serving] = _load(self.ctx, card_path_of(self.ctx.settings, serving))
            except AuthenticatorError as exc:
                log.error("cannot load model %s... (%s): keeping the current one", serving[:16], exc.message)
                return  # retried before the next request
        shadows: list[ShadowModel] = []
        for sha in shadows_from(rows, serving):
            try:
                shadows.append(ShadowModel(sha, card_path_of(self.ctx.settings, sha)))
            except AuthenticatorError as exc:
                log.error("shadow model %s... is not available (%s)", sha[:16], exc.message)
        now = time.monotonic()
        for sha in [s for s in self._loaded if s != serving]:
            self._retired.append((now, self._loaded.pop(sha)))
        self._retired = [(t, a) for t, a in self._retired if not (now - t > RETIRED_GRACE_S and _close(a))]
        if self.ctx.assessor is not self._loaded[serving]:
            log.warning("worker %d: serving model %s from log index %d", os.getpid(), serving, marker)
        self.ctx.assessor = self._loaded[serving]
        self.shadows = shadows
        self._seen = marker


def _close(assessor: Assessor) -> bool:
    pool = getattr(assessor, "_pool", None)
    if pool is not None:
        pool.shutdown()
    return True


@dataclass(frozen=True)
class ShadowJob:
    assessment_id: str
    item_id: str
    photos: Sequence[tuple[str, bytes]]
    line: DeclaredLine | None
    champion_sha256: str
    champion_decision: str


class ModelWatcher:
    """Keeps an idle worker's model current: a promotion or rollback is picked up within
    ``interval`` seconds even by a worker that answers no request meanwhile, so its next request
    does not pay for loading the model and ``GET /v1/models`` never meets a worker serving a
    model the log retired long ago. Requests still check the log themselves (``current``)."""

    def __init__(self, models: ServingModels, interval: float) -> None:
        self.models = models
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.models.current()
            except AuthenticatorError as exc:  # the database is away: the next tick tries again
                log.warning("model watcher: %s", exc.message)


class ShadowScorer:
    """A bounded queue of recorded assessments for the shadow models, scored on one background
    thread of the worker at the lowest CPU priority (SCHED_IDLE and nice 19, for the whole life of
    the thread), scores stored in batches (:mod:`authenticator.services.shadow_scoring`)."""

    def __init__(self, ctx: ServiceContext, models: ServingModels, queue_size: int) -> None:
        self.ctx = ctx
        self.models = models
        self.queue: queue.Queue[tuple[ShadowModel, ShadowJob] | None] = queue.Queue(maxsize=max(1, queue_size))
        self.enabled = queue_size > 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._dropped: dict[str, int] = {}
        self._failed: dict[str, int] = {}
        self.scored = 0
        self._assessors: dict[str, Assessor] = {}
        """The shadow models this thread has loaded (one thread each: the whole assessment runs on
        the shadow thread itself, so its low priority covers all of it)."""
        self._batch = ScoreBatch(ctx.engine)

    def submit(self, job: ShadowJob) -> None:
        """Queue ``job`` for every shadow model; never blocks (a full queue drops and counts)."""
        if not self.enabled or not self.models.shadows:
            return
        self._start()
        for shadow in list(self.models.shadows):
            try:
                self.queue.put_nowait((shadow, job))
            except queue.Full:
                with self._lock:
                    self._dropped[shadow.model_sha256] = self._dropped.get(shadow.model_sha256, 0) + 1
        # drops happen only while the queue is full: the thread stores their count once it is empty

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
                self._thread.start()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self.queue.put(None, timeout=1.0)
            self._thread.join(timeout=30)
        self._flush_counts()

    def _run(self) -> None:
        lower_thread_priority(SHADOW_NICE, idle=True)  # for the life of this thread
        while True:
            got = self.queue.get()
            if got is None:
                self._store_batch()
                return
            shadow, job = got
            try:
                self._score(shadow, job)
                self.scored += 1
            except Exception as exc:  # a shadow's failure is counted, never raised into a verdict
                log.warning("shadow model %s... failed on %s: %s", shadow.model_sha256[:16], job.assessment_id, exc)
                with self._lock:
                    self._failed[shadow.model_sha256] = self._failed.get(shadow.model_sha256, 0) + 1
            if self.queue.empty():  # nothing waiting: store what is scored, and the counts
                self._store_batch()
                self._flush_counts()

    def _score(self, shadow: ShadowModel, job: ShadowJob) -> None:
        self._batch.add(score(self._assessor(shadow), job))

    def _assessor(self, shadow: ShadowModel) -> Assessor:
        from authenticator.vision.service import Assessor

        active = {m.model_sha256 for m in self.models.shadows}
        for sha in [s for s in self._assessors if s not in active and s != shadow.model_sha256]:
            _close(self._assessors.pop(sha))
        assessor = self._assessors.get(shadow.model_sha256)
        if assessor is None:
            settings = self.ctx.settings.model_copy(update={"vision_threads": 1})
            assessor = Assessor(ModelCard.load(shadow.card_path), shadow.card_path, settings, background=True)
            self._assessors[shadow.model_sha256] = assessor
        return assessor

    def _store_batch(self) -> None:
        try:
            self._batch.flush()
        except AuthenticatorError as exc:  # advisory scores: logged and let go
            log.warning("could not store shadow scores: %s", exc.message)

    def _flush_counts(self) -> None:
        with self._lock:
            dropped, failed = self._dropped, self._failed
            self._dropped, self._failed = {}, {}
        for sha in set(dropped) | set(failed):
            try:
                add_counts(self.ctx, sha, dropped.get(sha, 0), failed.get(sha, 0))
            except AuthenticatorError as exc:
                log.warning("could not record shadow drop counts: %s", exc.message)


def add_counts(ctx: ServiceContext, sha256: str, dropped: int, failed: int) -> None:
    with write_tx(ctx.engine, lock="shadow_counts") as conn:
        done = conn.execute(
            update(shadow_counts)
            .where(shadow_counts.c.model_sha256 == sha256)
            .values(dropped=shadow_counts.c.dropped + dropped, failed=shadow_counts.c.failed + failed)
        ).rowcount
        if not done:
            conn.execute(insert(shadow_counts).values(model_sha256=sha256, dropped=dropped, failed=failed))


def current_assessor(ctx: ServiceContext) -> Assessor | None:
    """The assessor a request starts with: the serving model of this worker's :class:`ServingModels`
    (switched first if the log promoted another), or the context's own when there is none (the CLI)."""
    models = ctx.extras.get("models")
    if isinstance(models, ServingModels):
        return models.current()
    return ctx.assessor


def shadow_active(ctx: ServiceContext) -> bool:
    """Whether this worker has a shadow model to feed (checked before building a job)."""
    scorer = ctx.extras.get("shadow")
    return isinstance(scorer, ShadowScorer) and scorer.enabled and bool(scorer.models.shadows)


def submit_shadow(ctx: ServiceContext, job: ShadowJob) -> None:
    scorer = ctx.extras.get("shadow")
    if isinstance(scorer, ShadowScorer):
        scorer.submit(job)


def open_serving(ctx: ServiceContext) -> None:
    """Start this worker's model switching and shadow scoring (the API's lifespan)."""
    if ctx.assessor is None:
        return
    # every worker publishes its live work, so the shadow models of all of them give way to it
    LIVE_WORK.attach(ctx.settings.data_dir / "live-work.slots")
    models = ServingModels(ctx)
    ctx.extras["models"] = models
    ctx.extras["shadow"] = ShadowScorer(ctx, models, ctx.settings.shadow_queue_size)
    watcher = ModelWatcher(models, ctx.settings.model_watch_seconds)
    ctx.extras["model_watcher"] = watcher
    watcher.start()


def close_serving(ctx: ServiceContext) -> None:
    watcher = ctx.extras.pop("model_watcher", None)
    if isinstance(watcher, ModelWatcher):
        watcher.close()
    scorer = ctx.extras.pop("shadow", None)
    if isinstance(scorer, ShadowScorer):
        scorer.close()


def shadow_report(ctx: ServiceContext, sha256: str) -> ShadowReport:
    """What a shadow model did with live assessments: agreement with the verdicts, the coverage it
    would have had, and its false-pass on items a lab certified since (latest unrevoked certificate)."""
    from authenticator.store.tables import certificates

    with read_tx(ctx.engine) as conn:
        rows = conn.execute(select(shadow_results).where(shadow_results.c.model_sha256 == sha256)).all()
        counts = conn.execute(select(shadow_counts).where(shadow_counts.c.model_sha256 == sha256)).first()
        items = sorted({r.item_id for r in rows})
        certs: dict[str, str] = {}
        if items:
            for c in conn.execute(
                select(certificates.c.item_id, certificates.c.outcome, certificates.c.attached_index)
                .where(certificates.c.item_id.in_(items), certificates.c.revoked_index.is_(None))
                .order_by(certificates.c.attached_index)
            ).all():
                certs[c.item_id] = c.outcome  # the latest active certificate wins
    n = len(rows)

    def share(pred: Any, among: Sequence[Any]) -> float | None:
        return None if not among else round(sum(1 for r in among if pred(r)) / len(among), 4)

    fakes = [r for r in rows if certs.get(r.item_id) == "counterfeit"]
    reals = [r for r in rows if certs.get(r.item_id) == "authentic"]
    return ShadowReport(
        model_sha256=sha256,
        scored=n,
        dropped=int(counts.dropped) if counts is not None else 0,
        failed=int(counts.failed) if counts is not None else 0,
        agreement=share(lambda r: r.decision == r.champion_decision, rows),
        coverage=share(lambda r: r.decision != "inconclusive", rows),
        champion_coverage=share(lambda r: r.champion_decision != "inconclusive", rows),
        certified=ShadowCertified(
            assessments=len(fakes) + len(reals),
            counterfeit=len(fakes),
            false_pass=share(lambda r: r.decision == "authentic", fakes),
            champion_false_pass=share(lambda r: r.champion_decision == "authentic", fakes),
            authentic=len(reals),
            false_reject=share(lambda r: r.decision == "counterfeit", reals),
            champion_false_reject=share(lambda r: r.champion_decision == "counterfeit", reals),
        ),
    )
