"""Capture guides per category (issue 14, point 2): GET /v1/capture-guides/{category}."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from authenticator.config import Settings
from authenticator.vision.capture_guides import FRAMING_GATES, GUIDES, framing_of, gate_thresholds, guide_for
from authenticator.vision.quality_thresholds import QualityThresholds
from tests.vision_tiny_model import write_tiny_model


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    weights = tmp_path_factory.mktemp("weights")
    write_tiny_model(weights)  # validates bags and sneakers
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), weights_dir=weights, database_url=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_every_category_has_views_with_unique_ids_and_one_line_instructions() -> None:
    assert set(GUIDES) == {"bag", "watch", "sneaker"}
    for category, guide in GUIDES.items():
        ids = [v.id for v in guide.views]
        assert len(ids) == len(set(ids)) and "unspecified" not in ids, category
        assert len(guide.required) >= 6 and guide.optional, category
        for v in guide.views:
            assert v.instruction.endswith(".") and "\n" not in v.instruction and len(v.instruction) <= 100, v
            assert v.framing in FRAMING_GATES
        # the views where counterfeits differ are close-ups that must be read
        assert any(v.framing == "close_up" and v.required for v in guide.views), category
    assert {v.id for v in GUIDES["watch"].required} >= {"dial", "caseback", "clasp", "lugs"}
    assert {v.id for v in GUIDES["sneaker"].required} >= {"size_tag", "insole", "box_label"}
    assert {v.id for v in GUIDES["bag"].required} >= {"heat_stamp", "serial", "hardware"}


def test_close_ups_need_more_sharpness_and_resolution_never_less() -> None:
    base = QualityThresholds()
    whole, detail, close = (gate_thresholds(base, f) for f in ("whole", "detail", "close_up"))
    assert whole == base
    assert whole.min_sharpness < detail.min_sharpness < close.min_sharpness
    assert whole.min_short_side < detail.min_short_side < close.min_short_side
    # a stricter deployment stays at least as strict for every view
    strict = QualityThresholds(min_short_side=1000, min_sharpness=500.0)
    assert gate_thresholds(strict, "close_up").min_short_side == 1000
    assert gate_thresholds(strict, "close_up").min_sharpness == 1250.0
    assert framing_of("watch", "dial") == "close_up" and framing_of("watch", "unspecified") == "whole"
    assert framing_of(None, "dial") == "whole" and framing_of("hat", "dial") == "whole"
    assert guide_for("hat") is None


def test_get_capture_guide(client: TestClient) -> None:
    r = client.get("/v1/capture-guides/watch")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["category"] == "watch" and body["lang"] == "en"
    assert [v["id"] for v in body["required"]] == [v.id for v in GUIDES["watch"].required]
    assert [v["id"] for v in body["optional"]] == [v.id for v in GUIDES["watch"].optional]
    dial = body["required"][0]
    assert dial["id"] == "dial" and dial["required"] and dial["instruction"].startswith("The dial straight on")
    assert dial["quality"]["framing"] == "close_up" and "read" in dial["quality"]["checks"]
    whole = next(v for v in body["required"] if v["id"] == "whole")
    assert whole["quality"]["min_sharpness"] < dial["quality"]["min_sharpness"]
    assert whole["quality"]["min_short_side"] < dial["quality"]["min_short_side"]
    # the shipped card gives no watch verdict: the guide says so
    assert body["verdicts"] is False and "lab" in body["note"]
    bag = client.get("/v1/capture-guides/bag").json()
    assert bag["verdicts"] is True and bag["note"] is None
    assert client.get("/v1/capture-guides/sneaker").status_code == 200


def test_unknown_category_is_refused(client: TestClient) -> None:
    r = client.get("/v1/capture-guides/hat")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")


def test_openapi_documents_the_guide(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/capture-guides/{category}"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/CaptureGuideOut")
    schema = spec["components"]["schemas"]["CaptureGuideOut"]
    assert schema["examples"][0]["required"][0]["id"] == "dial"
    param = op["parameters"][0]
    assert param["name"] == "category" and set(param["schema"]["enum"]) == {"bag", "watch", "sneaker"}


def test_guide_module_imports_no_opencv() -> None:
    import subprocess
    import sys

    code = "import sys, authenticator.vision.capture_guides; print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "False", out.stderr
