"""What the service counts and how it answers bodies without a Content-Type (found by
exploratory testing: replays were counted as new assessments; a JSON body sent without a
Content-Type got a 422 about dictionaries instead of the 415 other non-JSON bodies get)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api_helpers import bearer, make_actors, new_item, photo_files, real_photos


def _recorded(client: TestClient) -> float:
    text = client.get("/metrics").text
    return sum(float(v) for v in re.findall(r"^authenticator_assessments_total\{[^}]*\} (\S+)$", text, re.M))


def test_a_replayed_assessment_is_not_counted_again(client: TestClient) -> None:
    actors = make_actors(client)
    item = new_item(client, actors.platform, "sneaker")
    files = photo_files(real_photos(1, offset=3))
    headers = {**bearer(actors.platform), "Idempotency-Key": "count-me-once"}
    before = _recorded(client)
    first = client.post(f"/v1/items/{item}/assessments", files=files, headers=headers)
    again = client.post(f"/v1/items/{item}/assessments", files=files, headers=headers)
    assert first.status_code == 201, first.text
    assert again.json()["id"] == first.json()["id"]
    assert _recorded(client) == before + 1


def test_a_json_body_without_content_type_is_unsupported_media_type(client: TestClient) -> None:
    actors = make_actors(client)
    r = client.post(
        "/v1/items",
        content=b'{"category": "bag", "brand": "Hermes", "model": "Birkin"}',
        headers={**bearer(actors.platform), "Content-Type": ""},
    )
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type"), r.text
