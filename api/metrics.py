"""Prometheus metrics: request latency, assessments by decision, ledger size, checkpoint age.

Each app owns its registry (no process-global state), so tests can build many apps.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authenticator.db import read_tx
from authenticator.ledger.schema import log_checkpoints
from authenticator.services.context import ServiceContext
from authenticator.vision.live_work import LIVE_WORK


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "authenticator_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.assessments = Counter(
            "authenticator_assessments_total", "Assessments recorded, by decision", ["decision"], registry=self.registry
        )
        self.ledger_size = Gauge("authenticator_ledger_size", "Entries in the log", registry=self.registry)
        self.checkpoint_age = Gauge(
            "authenticator_checkpoint_age_seconds",
            "Seconds since the latest checkpoint was signed",
            registry=self.registry,
        )
        self.shadow_runs_stopped = Gauge(
            "authenticator_shadow_runs_stopped",
            "Shadow-model inferences this worker stopped, since it started, so a live request could run "
            "(each was run again later)",
            registry=self.registry,
        )

    def render(self, ctx: ServiceContext) -> bytes:
        self.ledger_size.set(ctx.ledger.size())
        self.shadow_runs_stopped.set(LIVE_WORK.stopped_runs)
        with read_tx(ctx.engine) as conn:
            created: Any = conn.execute(
                select(log_checkpoints.c.created_at).order_by(log_checkpoints.c.size.desc()).limit(1)
            ).scalar()
        if isinstance(created, str):
            created = datetime.fromisoformat(created)
        if isinstance(created, datetime):
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            self.checkpoint_age.set(max(0.0, (datetime.now(UTC) - created).total_seconds()))
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times every HTTP request and labels it with the route template, not the raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(scope.get("method", ""), template, str(status)).observe(
                time.perf_counter() - start
            )
