"""Train/serve parity: training builds exactly the tensor the service builds for the same file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
import torch

from authenticator.config import Settings
from authenticator.vision.card import ModelCard
from authenticator.vision.preprocess import PreprocessSpec
from training.backbone import IMAGENET_CATEGORY_CLASSES, load_backbone
from training.data import read_manifest, training_input

pytestmark = pytest.mark.torch
REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "weights" / "authenticator.card.json"


def _pick(shared_dir: Path) -> list[Path]:
    samples = read_manifest(shared_dir / "data" / "real" / "manifest.csv")
    out = []
    for src in ("alauzon13-birkin", "zhengwu123-aj1", "mrdeepakk-nike", "waizwafiq-sneakers"):
        # the largest file of each source: alpha PNGs, large phone JPEGs (reduced decode)
        out.append(max((s for s in samples if s.source == src), key=lambda s: s.width * s.height).path)
    return out


def test_training_tensor_equals_service_tensor(shared_dir: Path) -> None:
    from authenticator.vision.service import Assessor

    card = ModelCard.load(CARD)
    assessor = Assessor(card, CARD, Settings())
    for path in _pick(shared_dir):
        data = path.read_bytes()
        train_x = training_input(data, card.preprocessing)
        serve_x = assessor.model_input(data)
        assert train_x.shape == (3, card.preprocessing.input_size, card.preprocessing.input_size)
        assert train_x.dtype == np.float32
        assert np.array_equal(train_x, serve_x), path.name
    # a large phone-size JPEG, where serving decodes at reduced scale: training must do the same
    big = cv2.resize(cv2.imread(str(_pick(shared_dir)[1])), (2400, 3200), interpolation=cv2.INTER_CUBIC)
    ok, enc = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    data = enc.tobytes()
    assert np.array_equal(training_input(data, card.preprocessing), assessor.model_input(data))


def test_backbone_strict_load_gives_sensible_imagenet_classes(shared_dir: Path) -> None:
    net = load_backbone()  # raises on any missing, unexpected or mis-shaped tensor
    bag, shoe = set(IMAGENET_CATEGORY_CLASSES["bag"]), set(IMAGENET_CATEGORY_CLASSES["sneaker"])
    samples = read_manifest(shared_dir / "data" / "real" / "manifest.csv")
    sneakers = [s for s in samples if s.source == "mrdeepakk-nike"][::150]
    hits = 0
    for s in sneakers:
        x = torch.from_numpy(training_input(s.path.read_bytes(), PreprocessSpec()))[None]
        with torch.inference_mode():
            top5 = set(net(x)[0].topk(5).indices.tolist())
        hits += bool(top5 & shoe)
        assert not top5 <= bag
    assert hits >= 0.7 * len(sneakers)
