"""Smoke: synthetic photos -> features -> grouped CV -> head -> ONNX -> onnxruntime parity -> valid card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import onnx
import torch

from authenticator.vision.card import ModelCard
from authenticator.vision.runtime import inference_session
from training.backbone import load_backbone
from training.data import training_input
from training.heads import LinearHead
from training.model import AuthenticatorNet
from training.onnx_eval import evaluate_card
from training.pipeline import train
from training.synthetic import generate

pytestmark = pytest.mark.torch


def test_synthetic_train_export_parity_card(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    samples = generate(tmp_path / "photos", n_per_class=6, seed=1)
    out = tmp_path / "weights"
    card = train(
        samples,
        out,
        name="smoke",
        cache_dir=tmp_path / "cache",
        runs_dir=tmp_path / "runs",
        k=3,
        approaches=["global224_lr"],
        ship="global224_lr",
        bootstrap_reps=20,
        quantize="none",  # the float path; tests/training/test_training_quantize.py covers INT8
        report=True,
        log=lambda _: None,
    )
    card_path = out / "smoke.card.json"
    loaded = ModelCard.load(card_path)
    loaded.verify_files(card_path)
    assert loaded == card
    assert loaded.synthetic and loaded.training_data["synthetic"]
    assert loaded.validated_categories == []  # synthetic data never validates a category
    assert loaded.preprocessing.input_size == 224
    assert 0.0 <= loaded.thresholds.counterfeit_below <= loaded.thresholds.authentic_above <= 1.0
    assert loaded.temperature > 0
    assert (out / "smoke.onnx").stat().st_size < 20_000_000
    assert {f.path for f in loaded.extra_files} == {"smoke.bank.npz"}
    assert loaded.metrics["onnx_parity_max_abs_diff"] <= 1e-4
    assert loaded.metrics["quantization"] is None
    # no shape arithmetic left: TF "same" pads are constants, so onnxruntime folds them into Conv
    graph = onnx.load(str(out / "smoke.onnx")).graph
    constants = {i.name for i in graph.initializer}
    pads = [n for n in graph.node if n.op_type == "Pad"]
    assert pads and all(n.input[1] in constants for n in pads)
    assert not [n for n in graph.node if n.op_type == "Shape"]
    assert loaded.self_test is not None and len(loaded.self_test.logits) == 2

    # onnxruntime vs torch on real pixels of three photos, dynamic batch
    head = np.load(tmp_path / "runs" / "smoke.head.npz")
    assert not bool(head["int8_features"])
    net = AuthenticatorNet(load_backbone())
    net.set_head(LinearHead(head["w"], float(head["b"])))
    net.eval()
    x = np.stack([training_input(s.path.read_bytes(), loaded.preprocessing) for s in samples[:3]])
    sess = inference_session(out / "smoke.onnx")
    assert [i.name for i in sess.get_inputs()] == ["image"]
    got = sess.run(loaded.output_names, {"image": x})
    with torch.inference_mode():
        want = [t.numpy() for t in net(torch.from_numpy(x))]
    assert [g.shape for g in got] == [(3,), (3, 1000), (3, 1280)]
    for g, w in zip(got, want, strict=True):
        assert np.abs(g - w).max() <= 1e-4

    # the bank and the OOD settings the runtime reads
    bank = np.load(out / "smoke.bank.npz")
    assert bank["embeddings"].dtype == np.float16 and bank["embeddings"].shape == (len(samples), 1280)
    assert np.allclose(np.linalg.norm(bank["embeddings"].astype(np.float32), axis=1), 1.0, atol=1e-2)
    assert set(bank["category"].tolist()) == {"bag", "watch"}
    assert loaded.ood["distance_threshold"] > 0 and loaded.ood["k"] == 5
    assert loaded.ood["category_distance_threshold"] >= loaded.ood["distance_threshold"]
    assert set(loaded.ood["imagenet_category_classes"]) == {"bag", "watch", "sneaker"}

    # report written, with the shortcut check
    rep = json.loads((out / "report" / "report.json").read_text())
    assert "all_trivial_features_lr_cv" in rep["shortcuts"]["per_feature"]
    md = (out / "report" / "report.md").read_text()
    for section in (
        "Targets vs measured",
        "Approaches compared",
        "Leave one source out",
        "unfamiliar-photo gate",
        "Shortcut check",
        "ImageNet zero-shot",
    ):
        assert section in md
    for png in ("roc.png", "reliability.png", "histograms.png", "confusion.png"):
        assert (out / "report" / png).stat().st_size > 1000

    # scoring through the shipped files only (what `python -m training evaluate` does)
    res = evaluate_card(card_path, samples[:6])
    assert res["per_source"]["all"]["n"] == 6
