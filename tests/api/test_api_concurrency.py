"""Concurrent writes through the app: nothing lost, nothing doubled, the log verifies."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
from fastapi.testclient import TestClient

from authenticator.config import Settings
from authenticator.ledger.verify import verify_ledger
from tests.api_helpers import bearer, make_actors, new_item, photo_files, real_photos

N = 20


async def _assess_concurrently(app: Any, key: str, items: list[str], files: list[Any]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=120) as http:
        return await asyncio.gather(
            *(http.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(key)) for item in items)
        )


def test_twenty_concurrent_assessments(client: TestClient, api_settings: Settings) -> None:
    actors = make_actors(client)
    items = [new_item(client, actors.platform) for _ in range(N)]
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    before = ctx.ledger.size()
    files = photo_files(real_photos(2, offset=4))
    # The TestClient's portal runs the app's lifespan; a second client on the same app shares its state.
    responses = asyncio.run(_assess_concurrently(client.app, actors.platform, items, files))
    assert [r.status_code for r in responses] == [201] * N, [r.text[:200] for r in responses if r.status_code != 201]
    answers = [r.json() for r in responses]
    assert len({a["id"] for a in answers}) == N
    assert len({a["receipt"]["index"] for a in answers}) == N
    assert ctx.ledger.size() == before + N
    recorded = [e for e in ctx.ledger.entries(before, before + N) if e.type == "assessment.recorded"]
    assert sorted(json.loads(e.data)["body"]["assessment_id"] for e in recorded) == sorted(a["id"] for a in answers)
    assert sorted(e.item for e in recorded) == sorted(items)
    report = verify_ledger(ctx.ledger, workers=1)
    assert report.ok, report
    for item in items:
        trace = client.get(f"/v1/items/{item}/trace").json()
        assert [json.loads(base64.b64decode(e["entry"]))["type"] for e in trace["events"]] == [
            "item.registered",
            "assessment.recorded",
        ]
    models = client.get("/v1/models").json()
    page = client.get(f"/v1/models/{models[0]['sha256']}/assessments", params={"limit": 500}).json()
    assert {a["id"] for a in answers} <= {a["id"] for a in page["assessments"]}
