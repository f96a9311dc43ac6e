"""INT8 shipping: the graph that serves is the graph that was measured.

Synthetic photos -> grouped CV on torch features -> float graph checked against torch -> INT8 QDQ
graph -> CV again on the INT8 graph's own embeddings -> head written into the INT8 graph -> card
with a self-test that the runtime re-checks at load.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import onnx
import torch

from authenticator.errors import ModelError
from authenticator.vision.card import ModelCard
from authenticator.vision.runtime import OnnxModel, inference_session
from training.data import training_input
from training.heads import LinearHead
from training.pipeline import train
from training.quantize import calibration_samples, set_linear_head
from training.synthetic import generate

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, Path]:  # type: ignore[type-arg]
    torch.set_num_threads(2)
    tmp = tmp_path_factory.mktemp("int8")
    samples = generate(tmp / "photos", n_per_class=6, seed=3)
    out = tmp / "weights"
    train(
        samples,
        out,
        name="q",
        cache_dir=tmp / "cache",
        runs_dir=tmp / "runs",
        k=3,
        approaches=["global224_lr"],
        ship="global224_lr",
        bootstrap_reps=20,
        quantize="int8",
        calibration_method="minmax",
        calibration_photos=8,
        report=True,
        log=lambda _: None,
    )
    return out / "q.card.json", samples, tmp


def test_int8_graph_is_quantized_and_its_head_is_the_fitted_one(int8_model: tuple[Path, list, Path]) -> None:  # type: ignore[type-arg]
    card_path, samples, tmp = int8_model
    card = ModelCard.load(card_path)
    card.verify_files(card_path)
    q = card.metrics["quantization"]
    assert q["calibration_photos"] == 8 and q["calibration_method"] == "minmax"
    assert q["int8_graph_mb"] < q["float_graph_mb"]
    assert q["head_consistency_max_abs_diff"] <= 1e-4
    assert card.metrics["onnx_parity_of"] == "the float graph vs torch"
    assert card.metrics["onnx_parity_max_abs_diff"] <= 1e-4
    effect = q["effect"]
    assert effect["embedding_cosine_to_float"]["median"] > 0.9
    assert effect["headline_auroc_int8_features"] == card.metrics["headline"]["auroc"]
    md = (card_path.parent / "report" / "report.md").read_text()
    assert "## INT8 quantization (the served graph)" in md
    assert "| headline AUROC | " in md and "Embedding cosine INT8 vs float" in md

    graph = onnx.load(str(card.onnx_path(card_path))).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert not [n for n in graph.node if n.op_type == "Shape"]
    # the shipped head (saved by train) is the one inside the graph: logit == head(embedding)
    saved = np.load(tmp / "runs" / "q.head.npz")
    head = LinearHead(saved["w"], float(saved["b"]))
    assert bool(saved["int8_features"])  # `python -m training export` warns about such a head
    x = np.stack([training_input(s.path.read_bytes(), card.preprocessing) for s in samples[:4]])
    sess = inference_session(card.onnx_path(card_path))
    logit, emb = sess.run(["authenticity_logit", "embedding"], {"image": x})
    assert np.abs(logit - head(emb)).max() <= 1e-4
    # the unfamiliar-photo bank holds the INT8 graph's embeddings, not torch's
    bank = np.load(card_path.parent / "q.bank.npz")["embeddings"].astype(np.float32)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    idx = [samples.index(s) for s in samples[:4]]
    assert np.abs(bank[idx] - unit).max() < 5e-3


def test_runtime_self_test_accepts_the_card_and_refuses_a_different_graph(
    int8_model: tuple[Path, list, Path],  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    card_path, _, _ = int8_model
    card = ModelCard.load(card_path)
    assert card.self_test is not None
    OnnxModel(card, card_path).warm_up()  # this machine computes what training recorded

    # same card, another head written into the graph: the self-test notices before any verdict
    copy = tmp_path / "q.onnx"
    copy.write_bytes(card.onnx_path(card_path).read_bytes())
    w = np.zeros(1280, dtype=np.float32)
    set_linear_head(copy, LinearHead(w, 3.0))
    data = json.loads(card_path.read_text())
    from authenticator.vision.card import sha256_file

    data["sha256"] = sha256_file(copy)
    data["extra_files"] = []
    (tmp_path / "q.card.json").write_text(json.dumps(data))
    other = ModelCard.load(tmp_path / "q.card.json")
    with pytest.raises(ModelError, match="different outputs on this machine"):
        OnnxModel(other, tmp_path / "q.card.json").warm_up()


def test_set_linear_head_refuses_a_wrong_shape(int8_model: tuple[Path, list, Path], tmp_path: Path) -> None:  # type: ignore[type-arg]
    card_path, _, _ = int8_model
    copy = tmp_path / "q.onnx"
    copy.write_bytes((card_path.parent / "q.onnx").read_bytes())
    with pytest.raises(ValueError, match="does not match"):
        set_linear_head(copy, LinearHead(np.zeros(7, dtype=np.float32), 0.0))


def test_calibration_photos_cover_every_source_and_label(tmp_path: Path) -> None:
    samples = generate(tmp_path / "photos", n_per_class=6, seed=4)
    strata = {(s.category, s.label) for s in samples}
    picked = calibration_samples(samples, 4, seed=0)
    assert len(picked) == 4 and len(set(picked)) == 4
    assert {(s.category, s.label) for s in picked} == strata
    assert calibration_samples(samples, 10_000) == calibration_samples(samples, 10_000)  # deterministic
    assert len(calibration_samples(samples, 10_000)) == len(samples)
