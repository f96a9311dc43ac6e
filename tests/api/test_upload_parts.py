"""Uploads that arrive incomplete or with a photo sent as text are refused whole: a verdict is
never recorded on fewer photos than the seller sent (a tester got 201 `authentic` on one photo
of two, the second cut off or sent without a file name)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api_helpers import bearer, log_size, make_actors, new_item, real_photos

BOUNDARY = "----cutoffboundary"


def _part(name: str, filename: str | None, data: bytes) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        + data
        + b"\r\n"
    )


def _post(client: TestClient, platform: str, item: str, body: bytes) -> tuple[int, dict[str, object]]:
    r = client.post(
        f"/v1/items/{item}/assessments",
        content=body,
        headers={**bearer(platform), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    return r.status_code, r.json()


def test_a_body_cut_off_before_its_closing_boundary_records_nothing(client: TestClient) -> None:
    actors = make_actors(client)
    item = new_item(client, actors.platform, "sneaker")
    first, second = (p.read_bytes() for p in real_photos(2, offset=2))
    whole = _part("photos", "a.jpg", first) + _part("photos", "b.jpg", second) + f"--{BOUNDARY}--\r\n".encode()
    before = log_size(client)
    cut = whole[: len(whole) - len(second) // 2 - len(BOUNDARY) - 8]  # in the middle of the second photo
    for body in (cut, whole[: -len(f"--{BOUNDARY}--\r\n")]):  # cut mid-photo; cut before the closing boundary
        status, problem = _post(client, actors.platform, item, body)
        assert status == 400, problem
        assert problem["code"] == "bad_request" and "cut off" in str(problem["detail"]), problem
    assert log_size(client) == before
    status, answer = _post(client, actors.platform, item, whole)  # the same photos, whole: recorded on both
    assert status == 201, answer
    assert len(answer["photos"]) == 2  # type: ignore[arg-type]


def test_a_photo_sent_as_text_is_refused_not_dropped(client: TestClient) -> None:
    actors = make_actors(client)
    item = new_item(client, actors.platform, "sneaker")
    photo = real_photos(1, offset=2)[0]
    before = log_size(client)
    r = client.post(
        f"/v1/items/{item}/assessments",
        files=[("photos", (photo.name, photo.read_bytes(), "image/jpeg"))],
        data={"photos": "IMG_0002.jpg"},  # curl -F "photos=<file" sends the contents as a text field
        headers=bearer(actors.platform),
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input" and "no file name" in r.json()["detail"]
    assert log_size(client) == before


def test_several_unreadable_photos_are_each_named_with_their_code(client: TestClient) -> None:
    actors = make_actors(client)
    item = new_item(client, actors.platform, "sneaker")
    before = log_size(client)
    files = [("photos", ("notes.txt", b"hello", "text/plain")), ("photos", ("empty.jpg", b"", "image/jpeg"))]
    r = client.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(actors.platform))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "no_usable_photo"
    assert "notes.txt: " in problem["detail"] and "empty.jpg: " in problem["detail"]
    assert problem["photos"] == [
        {"file": "notes.txt", "reasons": ["unsupported_format"]},
        {"file": "empty.jpg", "reasons": ["corrupt_image"]},
    ]
    # one photo that cannot be read keeps its own error
    r = client.post(f"/v1/items/{item}/assessments", files=files[:1], headers=bearer(actors.platform))
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_format")
    assert log_size(client) == before


def test_a_refusal_for_too_many_photos_says_how_many_it_counted(client: TestClient) -> None:
    actors = make_actors(client)
    item = new_item(client, actors.platform, "sneaker")
    photo = real_photos(1, offset=2)[0]
    files = [("photos", (f"{i}.jpg", photo.read_bytes(), "image/jpeg")) for i in range(13)]
    r = client.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(actors.platform))
    assert r.status_code == 422, r.text
    assert "send 1 to 12 photos" in r.json()["detail"] and "this request has 13" in r.json()["detail"]
