"""Shadow mode (issue 13, point 3): a registered candidate scores live assessments in the background,
never changing a verdict; drops under load are counted; its agreement, coverage and false-pass on
items a lab certified since are served at GET /v1/models/{sha256}/shadow."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from authenticator.config import Settings
from authenticator.services import lifecycle
from authenticator.services.serving import ShadowScorer
from authenticator.store.keys import create_key
from tests.api_helpers import bearer, certificate_envelope, photo_files, real_photos, register_lab
from tests.model_candidates import tiny
from tests.pg_scratch import create_scratch_schema, drop_scratch_schema


def _shadow_report(client: TestClient, sha: str, scored: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = client.get(f"/v1/models/{sha}/shadow").json()
        if got["scored"] + got["dropped"] + got["failed"] >= scored or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app_with_shadow(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A deployment with a registered candidate; the shadow process opens its own connection
    from the deployment's database URL (SQLite file or PostgreSQL schema)."""
    _, sha_a = tiny(tmp_path / "weights", seed=0)
    card_b, sha_b = tiny(tmp_path / "candidate", seed=1)
    with contextlib.ExitStack() as stack:
        url = None
        if request.param == "postgres":
            schema, url = create_scratch_schema("t_shadow")
            stack.callback(drop_scratch_schema, schema)
        settings = Settings(data_dir=tmp_path / "data", weights_dir=tmp_path / "weights", database_url=url)
        client = stack.enter_context(TestClient(create_app(settings)))
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        admin = create_key(ctx.engine, "admin", "ops").api_key
        platform = client.post("/v1/keys", json={"role": "platform", "name": "Shop"}, headers=bearer(admin)).json()
        lab, lab_id, lab_key = register_lab(client, admin, "Lab")
        yield client, ctx, bearer(platform["api_key"]), (lab, lab_id, lab_key), sha_a, sha_b, card_b.parent


def _assess(client: TestClient, auth: dict[str, str], i: int) -> dict[str, Any]:
    item = client.post("/v1/items", json={"category": "sneaker", "brand": "Nike", "model": "Dunk"}, headers=auth).json()
    r = client.post(f"/v1/items/{item['id']}/assessments", files=photo_files(real_photos(1, offset=i)), headers=auth)
    assert r.status_code == 201, r.text
    return {"item": item["id"], **r.json()}


def test_a_shadow_model_scores_live_assessments_without_touching_verdicts(app_with_shadow: Any) -> None:
    client, ctx, auth, (lab, lab_id, lab_key), sha_a, sha_b, cand = app_with_shadow
    plain = [_assess(client, auth, i) for i in range(3)]  # no shadow yet
    lifecycle.start_shadow(ctx, cand)
    shadowed = [_assess(client, auth, i) for i in range(3, 9)]
    models = {m["sha256"]: m["status"] for m in client.get("/v1/models").json()}
    assert models[sha_a] == "serving" and models[sha_b] == "shadow"
    assert all(v["model"]["sha256"] == sha_a for v in plain + shadowed)  # verdicts stay the champion's
    # the verdict is what the champion alone decides for these photos
    alone = ctx.assessor.assess
    for i, v in zip(range(3, 9), shadowed, strict=True):
        from authenticator.vision.service import PhotoInput

        p = real_photos(1, offset=i)[0]
        assert alone([PhotoInput(p.name, p.read_bytes())], item_id=v["item"]).decision == v["decision"]
    # a lab certifies one of them counterfeit: the shadow's false-pass on certified items counts it
    env = certificate_envelope(lab_key, shadowed[0]["item"], lab_id, outcome="counterfeit")
    assert (
        client.post(f"/v1/items/{shadowed[0]['item']}/certificates", json=env, headers=bearer(lab)).status_code == 201
    )
    got = _shadow_report(client, sha_b, 6)
    assert got["scored"] == 6 and got["dropped"] == 0 and got["failed"] == 0
    assert 0.0 <= got["agreement"] <= 1.0 and got["champion_coverage"] is not None
    assert got["certified"]["counterfeit"] == 1 and got["certified"]["false_pass"] in (0.0, 1.0)
    # stopped: later assessments are not scored
    lifecycle.stop_shadow(ctx, sha_b)
    _assess(client, auth, 9)
    assert {m["sha256"]: m["status"] for m in client.get("/v1/models").json()}[sha_b] == "registered"
    time.sleep(0.5)
    assert client.get(f"/v1/models/{sha_b}/shadow").json()["scored"] == 6


def test_a_full_shadow_queue_drops_and_counts(app_with_shadow: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, ctx, auth, _lab, _sha_a, sha_b, cand = app_with_shadow
    scorer = ctx.extras["shadow"]
    assert isinstance(scorer, ShadowScorer)
    slow = ShadowScorer._score

    def slowly(self: ShadowScorer, assessor: Any, job: Any) -> None:
        time.sleep(0.4)  # a shadow far slower than the verdicts
        slow(self, assessor, job)

    monkeypatch.setattr(ShadowScorer, "_score", slowly)
    scorer.queue.maxsize = 1
    lifecycle.start_shadow(ctx, cand)
    started = time.monotonic()
    verdicts = [_assess(client, auth, i) for i in range(8)]
    assert time.monotonic() - started < 8 * 0.4  # the verdicts did not wait for the shadow
    assert all(v["decision"] for v in verdicts)
    got = _shadow_report(client, sha_b, 8)
    assert got["scored"] + got["dropped"] == 8 and got["dropped"] >= 1 and got["scored"] >= 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread policies are Linux's")
def test_the_shadow_scores_on_an_idle_priority_thread(app_with_shadow: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shadow's whole assessment runs where only spare CPU goes: SCHED_IDLE and nice 19 on its
    own thread, so a live request that wakes up takes the core from it at once; the requests'
    threads keep their priority."""
    client, ctx, auth, _lab, _sha_a, sha_b, cand = app_with_shadow
    seen: list[tuple[int, int]] = []
    score = ShadowScorer._score

    def watched(self: ShadowScorer, shadow: Any, job: Any) -> None:
        me = threading.get_native_id()
        seen.append((os.sched_getscheduler(me), os.getpriority(os.PRIO_PROCESS, me)))
        score(self, shadow, job)

    monkeypatch.setattr(ShadowScorer, "_score", watched)
    lifecycle.start_shadow(ctx, cand)
    _assess(client, auth, 0)
    assert _shadow_report(client, sha_b, 1)["scored"] == 1
    assert seen == [(os.SCHED_IDLE, 19)]
    assert os.sched_getscheduler(0) != os.SCHED_IDLE


def test_scores_are_stored_in_batches(app_with_shadow: Any) -> None:
    """One write transaction per batch, not per assessment: rows wait until ``FLUSH_ROWS`` have
    gathered (or the shadow thread runs out of work, or ``FLUSH_SECONDS`` pass)."""
    from sqlalchemy import func, select

    from authenticator.services.shadow_scoring import FLUSH_ROWS, ScoreBatch
    from authenticator.store.tables import shadow_results

    _client, ctx, *_ = app_with_shadow
    batch = ScoreBatch(ctx.engine)
    row = {
        "model_sha256": "ab" * 32,
        "item_id": "itm_x",
        "decision": "inconclusive",
        "probability_authentic": 0.5,
        "champion_sha256": "cd" * 32,
        "champion_decision": "inconclusive",
        "scored_at": "2026-11-27T00:00:00Z",
    }

    def stored() -> int:
        with ctx.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(shadow_results)).scalar_one())

    for i in range(FLUSH_ROWS - 1):
        batch.add({**row, "assessment_id": f"asm_{i}"})
    assert stored() == 0
    batch.add({**row, "assessment_id": "asm_last"})
    assert stored() == FLUSH_ROWS and not batch.rows
    batch.add({**row, "assessment_id": "asm_0"})  # scored again: stored once
    batch.flush()
    assert stored() == FLUSH_ROWS


def test_the_shadow_gives_way_to_live_requests(app_with_shadow: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that runs the vision pipeline is live work from its upload read to its answer,
    and the shadow scores only outside live work: held while a live request is in flight, it
    scores once there is none (authenticator/vision/live_work.py, api/live.py)."""
    from api.routers import items
    from authenticator.vision.live_work import LIVE_WORK

    client, ctx, auth, _lab, _sha_a, sha_b, cand = app_with_shadow
    seen: list[int] = []
    read = items.read_uploads

    async def watched(request: Any) -> Any:
        seen.append(LIVE_WORK.in_flight)  # live calls in flight as the upload is read
        return await read(request)

    monkeypatch.setattr(items, "read_uploads", watched)
    lifecycle.start_shadow(ctx, cand)
    with LIVE_WORK.live():  # another live request, still in flight
        _assess(client, auth, 0)
        assert seen == [2]  # this request's upload was read as live work too
        held = _shadow_report(client, sha_b, 1, timeout=0.5)
        assert held["scored"] == 0 and held["dropped"] == 0  # queued, not scored
    got = _shadow_report(client, sha_b, 1)
    assert got["scored"] == 1 and got["failed"] == 0
    assert not LIVE_WORK.busy


def test_metrics_say_how_often_the_shadow_gave_way(app_with_shadow: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Operators see in /metrics how many shadow inferences this worker stopped for live requests."""
    from authenticator.vision.live_work import LIVE_WORK

    client, *_ = app_with_shadow
    monkeypatch.setattr(LIVE_WORK, "stopped_runs", 3)
    text = client.get("/metrics").text
    assert "authenticator_shadow_runs_stopped 3.0" in text
