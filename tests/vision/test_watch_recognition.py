"""Watches (issue 14, point 1): real watch photos are recognised as watches and never get a verdict.

The 80 development watch photos are read from ``../shared/data/watches`` (never copied into the
project). The shipped bank holds them as recognition-only rows; the held-out tests leave a photo's
own block of consecutive photos (or its whole source) out of the bank, as the card's figures do.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from authenticator.config import Settings
from authenticator.vision.card import sha256_file
from authenticator.vision.category import (
    RECOGNITION_ROLE,
    TRAIN_ROLE,
    CategoryConfig,
    ReferenceBank,
    categorize,
)
from authenticator.vision.service import Assessor, PhotoInput

REPO = Path(__file__).resolve().parents[2]
WATCHES = REPO.parent / "shared" / "data" / "watches"
REAL = REPO.parent / "shared" / "data" / "real"
CARD = Settings().weights_dir / f"{Settings().model_name}.card.json"
BLOCK = 8  # consecutive photos of one source held out together (training/recognition.py)


def _rows(folder: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((folder / "manifest.csv").open()))


def _photo(folder: Path, row: dict[str, str]) -> PhotoInput:
    return PhotoInput(Path(row["path"]).name, (folder / row["path"]).read_bytes())


needs_photos = pytest.mark.skipif(
    not (WATCHES / "manifest.csv").exists() or not CARD.exists(), reason="development photos or model not here"
)


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor.from_settings(Settings())


# --- the rule, on made-up embeddings ------------------------------------------------------------


def _unit(*rows: list[float]) -> np.ndarray:
    a = np.array(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _logits(mass: dict[int, float]) -> np.ndarray:
    """ImageNet logits whose softmax puts ``mass`` on the given classes, the rest spread evenly."""
    p = np.full(1000, (1.0 - sum(mass.values())) / (1000 - len(mass)))
    for i, m in mass.items():
        p[i] = m
    return np.log(p)[None, :]


CFG = CategoryConfig(
    imagenet_classes={"watch": [409], "sneaker": [770]},
    imagenet_min_prob=0.02,
    k=1,
    distance_threshold=0.5,
    unfamiliar_threshold=0.1,
    imagenet_decisive_prob=0.05,
)


def test_gate_distance_ignores_recognition_rows_and_the_vote_uses_them() -> None:
    bank = ReferenceBank(
        embeddings=_unit([1, 0, 0], [0, 1, 0]),
        categories=np.array(["sneaker", "watch"]),
        gate_rows=np.array([True, False]),
    )
    near_watch_row = _unit([0.1, 1, 0])
    [r] = categorize(_logits({}), near_watch_row, CFG, bank)
    assert r.category == "watch" and r.bank_category == "watch"
    assert r.bank_distance is not None and r.bank_distance < 0.01
    assert r.gate_distance is not None and r.gate_distance > 0.8  # measured to the sneaker row only
    assert r.unfamiliar_distance == r.gate_distance
    assert r.as_dict()["gate_distance"] == round(r.gate_distance, 4)


def test_a_strong_imagenet_answer_beats_the_bank_vote_a_weak_one_does_not() -> None:
    bank = ReferenceBank(embeddings=_unit([1, 0, 0]), categories=np.array(["sneaker"]))
    close = _unit([1, 0.3, 0])  # within the category threshold of a sneaker row
    assert categorize(_logits({409: 0.06}), close, CFG, bank)[0].category == "watch"
    assert categorize(_logits({409: 0.04}), close, CFG, bank)[0].category == "sneaker"
    off = CategoryConfig(**{**CFG.__dict__, "imagenet_decisive_prob": None})
    assert categorize(_logits({409: 0.5}), close, off, bank)[0].category == "sneaker"
    # a bank without a role array: every row is a training row, the gate measures them all
    [r] = categorize(_logits({}), close, CFG, bank)
    assert r.gate_distance is None and r.unfamiliar_distance == r.bank_distance


def test_reference_bank_reads_roles(tmp_path: Path) -> None:
    path = tmp_path / "bank.npz"
    np.savez(
        path,
        embeddings=_unit([1, 0], [0, 1]).astype(np.float16),
        category=np.array(["sneaker", "watch"]),
        role=np.array([TRAIN_ROLE, RECOGNITION_ROLE]),
    )
    bank = ReferenceBank.load(path)
    assert bank.gate_rows is not None and bank.gate_rows.tolist() == [True, False]
    np.savez(path, embeddings=_unit([1, 0]), category=np.array(["bag"]), role=np.array([TRAIN_ROLE]))
    assert ReferenceBank.load(path).gate_rows is None


# --- the shipped card and bank ------------------------------------------------------------------


@needs_photos
def test_card_records_the_watch_rows_and_keeps_the_graph() -> None:
    card = json.loads(CARD.read_text())
    assert sha256_file(CARD.parent / card["onnx_file"]) == card["sha256"]
    assert "watch" not in card["validated_categories"]
    bank_file = CARD.parent / card["ood"]["bank"]
    assert next(f["sha256"] for f in card["extra_files"] if f["path"] == card["ood"]["bank"]) == sha256_file(bank_file)
    with np.load(bank_file) as z:
        roles, cats = z["role"].astype(str), z["category"].astype(str)
    assert int((roles == RECOGNITION_ROLE).sum()) == len(_rows(WATCHES))
    assert set(cats[roles == RECOGNITION_ROLE]) == {"watch"} and "watch" not in set(cats[roles == TRAIN_ROLE])
    fig = card["ood"]["recognition"]
    now, before = fig["now"]["recognised"], fig["bank_of_training_photos_only"]["recognised"]
    assert now["watch"] >= 0.98 and fig["now"]["recognition_leave_source_out"]["watch"] >= 0.98
    assert now["bag"] >= before["bag"] and now["sneaker"] >= before["sneaker"]  # no drop
    assert card["training_data"]["recognition_only"]["ashiii2121-watch"]["photos"] == 64


@pytest.fixture(scope="module")
def watch_outputs(assessor: Assessor) -> tuple[list[dict[str, str]], np.ndarray, np.ndarray]:
    """Every development watch photo through the shipped graph: (rows, ImageNet logits, embeddings)."""
    rows = _rows(WATCHES)
    inet, emb = [], []
    for r in rows:
        out = assessor.model.run(assessor.model_input((WATCHES / r["path"]).read_bytes())[None])
        assert out.imagenet_logits is not None and out.embeddings is not None
        inet.append(out.imagenet_logits[0])
        emb.append(out.embeddings[0])
    return rows, np.stack(inet), np.stack(emb)


@needs_photos
@pytest.mark.parametrize("left_out", ["block", "source"])
def test_watch_photos_are_recognised_when_held_out(
    assessor: Assessor, watch_outputs: tuple[list[dict[str, str]], np.ndarray, np.ndarray], left_out: str
) -> None:
    """The runtime's categorize() with the shipped bank, each photo's own block of consecutive photos
    (or its whole source: a staging never seen) taken out of the bank: >= 98% are watches."""
    rows, inet, emb = watch_outputs
    bank = assessor.bank
    assert bank is not None and bank.gate_rows is not None
    recog = np.flatnonzero(~bank.gate_rows)
    assert len(recog) == len(rows)
    # the recognition rows are these photos, in manifest order
    cos = (bank.embeddings[recog] * (emb / np.linalg.norm(emb, axis=1, keepdims=True))).sum(1)
    assert cos.min() > 0.999
    sources = [r["path"].split("/")[0] for r in rows]
    keys = [f"{s}:{sum(1 for t in sources[:i] if t == s) // BLOCK}" for i, s in enumerate(sources)]
    if left_out == "source":
        keys = sources
    got = []
    for i in range(len(rows)):
        keep = np.ones(len(bank.embeddings), bool)
        keep[recog[[k == keys[i] for k in keys]]] = False
        ref = ReferenceBank(bank.embeddings[keep], bank.categories[keep], bank.gate_rows[keep])
        got.append(categorize(inet[i : i + 1], emb[i : i + 1], assessor.category_config, ref)[0].category)
    rate = float(np.mean([c == "watch" for c in got]))
    assert rate >= 0.98, (rate, [(rows[i]["path"], c) for i, c in enumerate(got) if c != "watch"])


# --- what a seller is told ----------------------------------------------------------------------


@needs_photos
def test_every_watch_photo_goes_to_a_lab_never_unfamiliar_or_not_a_watch(assessor: Assessor) -> None:
    rows = _rows(WATCHES)
    forbidden = {"unfamiliar_photo", "unsupported_object", "mixed_categories"}
    lab = 0
    for r in rows:
        a = assessor.assess([_photo(WATCHES, r)])
        codes = [x.code for x in a.reasons] + [x.code for p in a.photos for x in p.reasons]
        assert a.decision == "inconclusive" and not forbidden & set(codes), (r["path"], codes)
        if [x.code for x in a.reasons] == ["category_not_validated"]:
            lab += 1
            assert a.category == "watch"
            assert "Watches cannot be judged from photos yet" in a.reasons[0].message
            assert "lab" in a.reasons[0].message
        else:  # the only other answer: the photo failed the quality gate (a white watch on white: glare)
            assert [x.code for x in a.reasons] == ["no_usable_photo"], (r["path"], codes)
    assert lab >= 0.98 * len(rows)
    # one item, twelve photos of it from both sources
    twelve = [_photo(WATCHES, r) for r in random.Random(4).sample(rows, 12)]
    a = assessor.assess(twelve)
    assert a.decision == "inconclusive" and [x.code for x in a.reasons] == ["category_not_validated"]
    assert a.probability_authentic is None


@needs_photos
def test_a_watch_with_a_photo_of_something_else_still_goes_to_a_lab(assessor: Assessor) -> None:
    import skimage

    rows = _rows(WATCHES)
    astronaut = PhotoInput("astronaut.png", (Path(skimage.__file__).parent / "data" / "astronaut.png").read_bytes())
    a = assessor.assess([_photo(WATCHES, r) for r in rows[:3]] + [astronaut])
    assert [x.code for x in a.reasons] == ["category_not_validated"] and a.category == "watch"
    assert [x.code for x in a.photos[3].reasons] == ["unsupported_object"]


@needs_photos
def test_a_watch_photo_among_sneaker_photos_is_set_aside(assessor: Assessor) -> None:
    sneakers = [_photo(REAL, r) for r in _rows(REAL) if r["path"].startswith("mrdeepakk-nike")][:3]
    watch = _photo(WATCHES, _rows(WATCHES)[70])
    alone = assessor.assess(sneakers)
    mixed = assessor.assess([*sneakers, watch])
    assert mixed.category == "sneaker"
    assert [x.code for x in mixed.photos[3].reasons] == ["category_not_validated"]
    assert "Watches" in mixed.photos[3].reasons[0].message
    # the verdict comes from the sneaker photos alone
    assert mixed.probability_authentic == alone.probability_authentic
    assert mixed.decision == alone.decision
