"""Recognition-only photos through the training code path (issue 14): a full training run and
``add-recognition`` on a shipped model both put them in the bank as role ``recognition`` rows,
choose ``imagenet_decisive_prob`` and write the figures into the card, graph untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch

from authenticator.vision.card import ModelCard, sha256_file
from authenticator.vision.category import RECOGNITION_ROLE, TRAIN_ROLE, ReferenceBank
from training.pipeline import train
from training.recognition import add_recognition, measure_card, recognition_groups, recognition_table
from training.synthetic import generate

pytestmark = pytest.mark.torch


def test_recognition_rows_from_training_and_from_add_recognition(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    photos = generate(tmp_path / "photos", n_per_class=6, seed=3)
    bags = [s for s in photos if s.category == "bag"]
    watches = [s for s in photos if s.category == "watch"]
    out = tmp_path / "weights"
    train(
        bags,
        out,
        name="rec",
        cache_dir=tmp_path / "cache",
        runs_dir=None,
        k=3,
        approaches=["global224_lr"],
        ship="global224_lr",
        bootstrap_reps=10,
        quantize="none",
        report=False,
        log=lambda _: None,
        recognition=watches,
    )
    card_path = out / "rec.card.json"
    card = ModelCard.load(card_path)
    card.verify_files(card_path)
    assert card.validated_categories == []  # synthetic: and the watch rows never validate anything
    with np.load(out / "rec.bank.npz") as z:
        roles, cats = z["role"].astype(str), z["category"].astype(str)
    assert roles.tolist() == [TRAIN_ROLE] * len(bags) + [RECOGNITION_ROLE] * len(watches)
    assert set(cats[roles == RECOGNITION_ROLE]) == {"watch"}
    bank = ReferenceBank.load(out / "rec.bank.npz")
    assert bank.gate_rows is not None and int(bank.gate_rows.sum()) == len(bags)
    fig = card.ood["recognition"]
    assert fig["now"]["photos"] == {"bag": len(bags), "watch": len(watches)}
    assert "imagenet_decisive_prob" in card.ood
    assert card.training_data["recognition_only"]["synthetic-watch"]["photos"] == len(watches)

    # add-recognition on the shipped files: rows replaced (not doubled), graph bytes unchanged
    graph = sha256_file(out / "rec.onnx")
    before = json.loads(card_path.read_text())
    figures = add_recognition(card_path, bags, watches[:8], tmp_path / "cache", log=lambda _: None, reproduce="x")
    after = json.loads(card_path.read_text())
    assert sha256_file(out / "rec.onnx") == graph == after["sha256"]
    with np.load(out / "rec.bank.npz") as z:
        assert z["role"].astype(str).tolist() == [TRAIN_ROLE] * len(bags) + [RECOGNITION_ROLE] * 8
    assert after["ood"]["recognition"]["reproduce"] == "x"
    assert after["ood"]["recognition"]["now"]["photos"]["watch"] == 8
    assert {k: v for k, v in after.items() if k not in ("ood", "extra_files", "training_data")} == {
        k: v for k, v in before.items() if k not in ("ood", "extra_files", "training_data")
    }
    ModelCard.load(card_path).verify_files(card_path)
    printed = recognition_table(measure_card(card_path, bags, watches[:8], tmp_path / "cache"))
    assert "watch" in printed and figures["now"]["recognised"].keys() == {"bag", "watch"}


def test_recognition_groups_are_blocks_of_consecutive_photos_per_source(tmp_path: Path) -> None:
    photos = generate(tmp_path, n_per_class=5, seed=0)
    groups = recognition_groups(photos, block=4)
    bag = [g for s, g in zip(photos, groups, strict=True) if s.source == "synthetic-bag"]
    assert bag[:4] == ["synthetic-bag:block0"] * 4 and bag[4] == "synthetic-bag:block1"
    watch = [g for s, g in zip(photos, groups, strict=True) if s.source == "synthetic-watch"]
    assert watch[0] == "synthetic-watch:block0"


def test_a_head_refit_candidate_keeps_the_champions_recognition_rows(tmp_path: Path) -> None:
    from training.recognition import carry_recognition_rows

    champion, candidate = tmp_path / "champion.npz", tmp_path / "candidate.npz"
    emb = np.eye(4, dtype=np.float16)
    np.savez(
        champion,
        embeddings=emb,
        category=np.array(["bag", "bag", "watch", "watch"]),
        source=np.array(["a", "a", "w", "w"]),
        label=np.array(["authentic"] * 4),
        role=np.array([TRAIN_ROLE, TRAIN_ROLE, RECOGNITION_ROLE, RECOGNITION_ROLE]),
    )
    np.savez(
        candidate,
        embeddings=emb[:3],
        category=np.array(["sneaker"] * 3),
        source=np.array(["lab-certified"] * 3),
        label=np.array(["counterfeit"] * 3),
        line=np.array(["sneaker/nike/air-force-1"] * 3),
    )
    assert carry_recognition_rows(champion, candidate) == 2
    bank = ReferenceBank.load(candidate)
    assert bank.categories.tolist() == ["sneaker"] * 3 + ["watch"] * 2
    assert bank.gate_rows is not None and bank.gate_rows.tolist() == [True] * 3 + [False] * 2
    with np.load(candidate) as z:
        assert z["line"].tolist() == ["sneaker/nike/air-force-1"] * 3 + ["", ""]
        assert z["source"].tolist()[-2:] == ["w", "w"]
    # a champion without recognition rows: nothing carried, the candidate's bank untouched
    np.savez(champion, embeddings=emb, category=np.array(["bag"] * 4))
    before = candidate.read_bytes()
    assert carry_recognition_rows(champion, candidate) == 0 and candidate.read_bytes() == before
