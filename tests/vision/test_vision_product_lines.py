"""Verdicts per validated product line (issue 13, point 1), end to end with the tiny ONNX model.

The card gets a ``product_lines`` section (Air Force 1 and Air Jordan 1 validated with their own
operating points, Birkin not) and a bank whose rows carry line labels: real development photos of
each line, embedded by the tiny model itself, so the k-NN line vote sees what the runtime sees.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from authenticator.cli import app as cli
from authenticator.config import Settings
from authenticator.vision.card import ModelCard
from authenticator.vision.decision import decide
from authenticator.vision.product_lines import KNOWN_LINES, DeclaredLine
from authenticator.vision.service import Assessor, PhotoInput
from tests.api_helpers import bearer, photo_files
from tests.vision_tiny_model import write_tiny_model

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
ROWS = list(csv.DictReader((REAL / "manifest.csv").open()))
AF1, AJ1, BIRKIN = KNOWN_LINES
AF1_POINT = {"temperature": 1.0, "thresholds": {"authentic_above": 0.55, "counterfeit_below": 0.45}}
AJ1_POINT = {"temperature": 3.0, "thresholds": {"authentic_above": 0.9, "counterfeit_below": 0.1}}


def _paths(brand: str, n: int, skip: int = 0) -> list[Path]:
    rows = [r for r in ROWS if r["brand"] == brand]
    return [REAL / r["path"] for r in rows[skip : skip + n]]


def _line(line: Any, validated: bool, point: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "line": line.model_dump(),
        "key": line.key,
        "validated": validated,
        "why_not_validated": None if validated else "21 counterfeit items in the training data",
        **(point or {}),
    }


@pytest.fixture(scope="module")
def lines_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny model + a bank of 12 AF1 and 12 AJ1 development photos (line-labelled) + product lines."""
    folder = tmp_path_factory.mktemp("lines")
    card_path = write_tiny_model(folder, bank=(np.ones((1, 16)), ["sneaker"]))
    probe = Assessor(ModelCard.load(card_path), card_path, Settings(weights_dir=folder))
    photos = _paths("Nike Air Force 1", 12) + _paths("Nike Air Jordan 1", 12)
    emb = np.stack([probe.model.run(probe.model_input(p.read_bytes())[None]).embeddings[0] for p in photos])
    lines = np.array([AF1.key] * 12 + [AJ1.key] * 12)
    bank = folder / "authenticator.bank.npz"
    with bank.open("wb") as f:
        np.savez_compressed(
            f,
            embeddings=(emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float16),
            category=np.array(["sneaker"] * 24).astype("U16"),
            line=lines.astype("U64"),
        )
    card = json.loads(card_path.read_text())
    card["extra_files"][0]["sha256"] = hashlib.sha256(bank.read_bytes()).hexdigest()
    card["ood"].update({"k": 3})
    card["product_lines"] = {
        "min_items_per_class": 100,
        "lines": [_line(AF1, True, AF1_POINT), _line(AJ1, True, AJ1_POINT), _line(BIRKIN, False, None)],
        "fallback": "global pair only without a declared line",
        "contradiction": {"k": 3, "min_share_other": 0.8},
    }
    card_path.write_text(json.dumps(card, indent=2))
    return folder


def _assessor(folder: Path) -> Assessor:
    return Assessor.from_settings(Settings(weights_dir=folder))


def _inputs(paths: list[Path]) -> list[PhotoInput]:
    return [PhotoInput(p.name, p.read_bytes()) for p in paths]


@pytest.mark.parametrize("model", ["Air Force 1", "air force 1 low '07", "AF1 Shadow", "Nike Air Force 1 Mid"])
def test_a_validated_line_uses_its_own_operating_point(lines_model: Path, model: str) -> None:
    a = _assessor(lines_model)
    r = a.assess(_inputs(_paths("Nike Air Force 1", 3)), line=DeclaredLine("Sneakers", "NIKE", model))
    assert r.product_line is not None and r.product_line.operating_point == "line"
    assert r.product_line.line == AF1.key and r.product_line.validated
    assert r.temperature == 1.0 and r.thresholds.authentic_above == 0.55
    assert r.probability_authentic is not None
    assert r.decision == decide(r.probability_authentic, 0.55, 0.45)
    assert not [x for x in r.reasons if x.code.startswith("product_line")]


def test_each_line_its_own_point_and_no_line_the_global_pair(lines_model: Path) -> None:
    a = _assessor(lines_model)
    aj1 = a.assess(_inputs(_paths("Nike Air Jordan 1", 3)), line=DeclaredLine("sneaker", "Jordan", "Air Jordan 1 High"))
    assert aj1.thresholds.authentic_above == 0.9 and aj1.temperature == 3.0
    plain = a.assess(_inputs(_paths("Nike Air Jordan 1", 3)))
    assert plain.thresholds.authentic_above == 0.8 and plain.temperature == 1.5  # the card's global pair
    assert plain.product_line is not None and plain.product_line.operating_point == "global"
    assert plain.product_line.declared is None


@pytest.mark.parametrize(
    ("brand", "model"), [("Nike", "Dunk Low"), ("Nike", "Air Force 10"), ("Adidas", "Air Force 1"), ("Nike", "")]
)
def test_a_line_without_a_validated_operating_point_is_inconclusive(lines_model: Path, brand: str, model: str) -> None:
    r = _assessor(lines_model).assess(
        _inputs(_paths("Nike Air Force 1", 2)), line=DeclaredLine("sneaker", brand, model)
    )
    assert r.decision == "inconclusive" and r.probability_authentic is None
    assert r.reasons[-1].code == "product_line_not_validated"
    assert "Air Force 1" in r.reasons[-1].message  # names the validated lines
    assert r.product_line is not None and r.product_line.operating_point == "none"


def test_a_known_line_that_is_not_validated_says_why(lines_model: Path) -> None:
    # the bank has no bag, so the tiny model calls these photos sneakers: a contradiction comes first
    r = _assessor(lines_model).assess(
        _inputs(_paths("Nike Air Force 1", 2)), line=DeclaredLine("bag", "Hermès", "Birkin 30")
    )
    assert r.decision == "inconclusive" and r.reasons[-1].code == "product_line_contradicted"
    assert "registered as a bag" in r.reasons[-1].message
    card = ModelCard.load(lines_model / "authenticator.card.json")
    assert card.product_lines is not None
    op = card.product_lines.find(DeclaredLine("bag", "HERMES", "Birkin"))
    assert op is not None and not op.validated


def test_photos_of_another_line_contradict_the_declared_one(lines_model: Path) -> None:
    a = _assessor(lines_model)
    af1_photos = _inputs(_paths("Nike Air Force 1", 3))  # in the bank as AF1: all 3 neighbours are AF1
    r = a.assess(af1_photos, line=DeclaredLine("sneaker", "Nike", "Air Jordan 1"))
    assert r.decision == "inconclusive" and r.reasons[-1].code == "product_line_contradicted"
    assert "Air Force 1" in r.reasons[-1].message
    assert a.assess(af1_photos, line=DeclaredLine("sneaker", "Nike", "Air Force 1")).reasons[-1:] != r.reasons[-1:]


def test_a_card_without_product_lines_serves_every_line_with_its_global_pair(tmp_path: Path) -> None:
    write_tiny_model(tmp_path)
    r = _assessor(tmp_path).assess(_inputs(_paths("Nike Air Force 1", 2)), line=DeclaredLine("sneaker", "Nike", "Dunk"))
    assert r.thresholds.authentic_above == 0.8
    assert not [x for x in r.reasons if x.code.startswith("product_line")]


def test_cli_assess_takes_the_line(lines_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHENTICATOR_WEIGHTS_DIR", str(lines_model))
    photos = [str(p) for p in _paths("Nike Air Force 1", 2)]
    runner = CliRunner()
    line = ["--category", "sneaker", "--brand", "Nike", "--model", "Air Force 1 Low '07"]
    res = runner.invoke(cli, ["assess", *line, "--json", *photos])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["product_line"]["line"] == AF1.key and doc["thresholds"]["authentic_above"] == 0.55
    res = runner.invoke(cli, ["assess", "--category", "sneaker", "--brand", "Nike", "--model", "Dunk", *photos])
    assert res.exit_code == 0 and "product_line_not_validated" in res.output
    res = runner.invoke(cli, ["assess", "--brand", "Nike", *photos])
    assert res.exit_code == 2 and "together" in res.output


def test_the_api_judges_an_item_as_the_line_it_was_registered_as(lines_model: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, weights_dir=lines_model, database_url=None)
    with TestClient(create_app(settings)) as client:
        from authenticator.store.keys import create_key

        admin = create_key(client.app.state.ctx.engine, "admin", "ops").api_key  # type: ignore[attr-defined]
        platform = client.post("/v1/keys", json={"role": "platform", "name": "Shop"}, headers=bearer(admin))
        key = platform.json()["api_key"]
        photos = _paths("Nike Air Force 1", 2)
        verdicts = {}
        for model in ("Air Force 1 '07", "Dunk Low"):
            item = client.post(
                "/v1/items", json={"category": "sneaker", "brand": "Nike", "model": model}, headers=bearer(key)
            ).json()["id"]
            r = client.post(f"/v1/items/{item}/assessments", files=photo_files(photos), headers=bearer(key))
            assert r.status_code == 201, r.text
            verdicts[model] = r.json()
        assert verdicts["Air Force 1 '07"]["thresholds"]["authentic_above"] == 0.55  # the line's, recorded
        assert verdicts["Dunk Low"]["decision"] == "inconclusive"
        assert verdicts["Dunk Low"]["reasons"][-1]["code"] == "product_line_not_validated"
        preview = client.post("/v1/assessments/preview", files=photo_files(photos), headers=bearer(key)).json()
        assert preview["thresholds"]["authentic_above"] == 0.8  # no item, no line: the global pair
