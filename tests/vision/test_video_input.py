"""Video as input (issue 14, point 6): the sharpest distinct frames of a short phone video, each
assessed as a photo. The videos are made here from real development photos (a slow pan over three
views, with motion-blurred frames between them), written as MP4 by OpenCV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from authenticator.config import Settings
from authenticator.errors import ImageTooLarge, InvalidInput, UnsupportedFormat
from authenticator.store.keys import create_key
from authenticator.vision.video import VideoLimits, is_video, sharpest_frames
from tests.api_helpers import bearer
from tests.web.browser_site import write_model_that_knows

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
AJ1 = sorted((REAL / "zhengwu123-aj1" / "authentic").iterdir())


def _video(
    path: Path, views: list[Path], seconds_each: float = 1.5, fps: int = 10, size: tuple[int, int] = (640, 480)
) -> bytes:
    """A pan over ``views``: each held still for ``seconds_each``, motion-blurred while moving on."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    kernel = np.zeros((1, 31), np.float32)
    kernel[0, :] = 1 / 31  # horizontal motion blur
    for photo in views:
        frame = cv2.resize(cv2.imread(str(photo)), size, interpolation=cv2.INTER_AREA)
        moving = cv2.filter2D(frame, -1, kernel)
        for i in range(round(seconds_each * fps)):
            writer.write(moving if i < 3 else frame)
    writer.release()
    return path.read_bytes()


def _laplacian(jpeg: bytes) -> float:
    gray = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def test_a_pan_over_three_views_gives_their_three_sharp_frames(tmp_path: Path) -> None:
    views = [AJ1[0], AJ1[5], AJ1[12]]
    data = _video(tmp_path / "pan.mp4", views)
    assert is_video(data)
    frames = sharpest_frames(data, "pan.mp4")
    assert len(frames) == 3
    assert [f.seconds for f in frames] == sorted(f.seconds for f in frames)  # in time order
    for f, start in zip(frames, (0.0, 1.5, 3.0), strict=True):
        assert start + 0.25 <= f.seconds < start + 1.5  # a still frame of that view, not a blurred one
        assert f.filename == f"pan@{f.seconds:.1f}s.jpg" and f.data.startswith(b"\xff\xd8\xff")
    blurred = cv2.filter2D(cv2.resize(cv2.imread(str(views[0])), (640, 480)), -1, np.full((1, 31), 1 / 31, np.float32))
    ok, blurred_jpeg = cv2.imencode(".jpg", blurred)
    assert ok and _laplacian(frames[0].data) > 2 * _laplacian(blurred_jpeg.tobytes())


def test_a_still_video_gives_one_frame_and_limits_hold(tmp_path: Path) -> None:
    data = _video(tmp_path / "still.mp4", [AJ1[2]], seconds_each=3)
    assert len(sharpest_frames(data, "still.mp4")) == 1
    assert (
        len(sharpest_frames(_video(tmp_path / "many.mp4", AJ1[:8], seconds_each=0.6), "m", VideoLimits(max_frames=4)))
        == 4
    )
    with pytest.raises(ImageTooLarge):
        sharpest_frames(data, "still.mp4", VideoLimits(max_bytes=1000))
    with pytest.raises(InvalidInput, match="at most 1 s"):
        sharpest_frames(data, "still.mp4", VideoLimits(max_seconds=1))
    with pytest.raises(UnsupportedFormat):
        sharpest_frames(AJ1[0].read_bytes(), "photo.jpg")
    heic_still = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 20
    assert not is_video(heic_still) and not is_video(AJ1[0].read_bytes())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    weights = tmp_path_factory.mktemp("weights")
    write_model_that_knows(weights, [(p, "sneaker") for p in AJ1[:4]])
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), weights_dir=weights, database_url=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        admin = create_key(client.app.state.ctx.engine, "admin", "ops").api_key  # type: ignore[attr-defined]
        r = client.post("/v1/keys", json={"role": "platform", "name": "Acme"}, headers=bearer(admin))
        yield client, r.json()["api_key"]


def test_a_video_is_assessed_as_its_frames(api: tuple[TestClient, str], tmp_path: Path) -> None:
    client, platform = api
    video = _video(tmp_path / "walkaround.mp4", [AJ1[0], AJ1[1]])
    files = [
        ("photos", ("tag.jpg", AJ1[3].read_bytes(), "image/jpeg")),
        ("video", ("walkaround.mp4", video, "video/mp4")),
    ]
    r = client.post("/v1/assessments/preview", files=files, headers=bearer(platform))
    assert r.status_code == 200, r.text
    names = [p["file"] for p in r.json()["photos"]]
    assert names[0] == "tag.jpg" and len(names) == 3 and all(n.startswith("walkaround@") for n in names[1:])
    item = client.post(
        "/v1/items", json={"category": "sneaker", "brand": "Nike", "model": "Dunk"}, headers=bearer(platform)
    ).json()["id"]
    r = client.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(platform))
    assert r.status_code == 201, r.text
    recorded = r.json()
    assert len(recorded["photos"]) == 3
    # the frames are stored as the photos of the record (JPEG), not the video
    frame = recorded["photos"][1]["sha256"]
    photo = client.get(f"/v1/assessments/{recorded['id']}/photos/{frame}", headers=bearer(platform))
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    # a video sent in 'photos' is read the same way; a view for a video is refused
    r = client.post(
        "/v1/assessments/preview", files=[("photos", ("v.mov", video, "video/quicktime"))], headers=bearer(platform)
    )
    assert r.status_code == 200 and len(r.json()["photos"]) == 2
    r = client.post(
        "/v1/assessments/preview",
        files=[("photos", ("v.mp4", video, "video/mp4"))],
        data={"views": ["outer_side"], "category": "sneaker"},
        headers=bearer(platform),
    )
    assert r.status_code == 422 and "a video's frames have no single view" in r.json()["detail"]
    r = client.post(
        "/v1/assessments/preview",
        files=[("video", ("x.mp4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64, "video/mp4"))],
        headers=bearer(platform),
    )
    assert 400 <= r.status_code < 500
