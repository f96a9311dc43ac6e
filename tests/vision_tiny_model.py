"""A tiny ONNX model with the shipped model's contract, built with onnx.helper (no torch).

Same input (``image``: N x 3 x S x S) and outputs (``authenticity_logit``, ``imagenet_logits``,
``embedding``) as ``weights/authenticator.onnx``, with fixed random weights over 4x4 average-
pooled colours, so scores vary with the photo and with occluded regions. Used by the tests
until (and besides) the real model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DIM = 16


def build_tiny_onnx(path: Path, size: int = 64, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    cell = size // 4
    w1 = rng.normal(0, 0.3, (48, DIM)).astype(np.float32)
    b1 = np.zeros(DIM, np.float32)
    w2 = rng.normal(0, 0.5, (DIM, 1)).astype(np.float32)
    w3 = rng.normal(0, 0.5, (DIM, 1000)).astype(np.float32)
    b3 = np.zeros(1000, np.float32)
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[cell, cell], strides=[cell, cell]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["embedding"]),
        helper.make_node("MatMul", ["embedding", "w2"], ["z"]),
        helper.make_node("Flatten", ["z"], ["authenticity_logit"], axis=0),
        helper.make_node("Gemm", ["embedding", "w3", "b3"], ["imagenet_logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_authenticator",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size])],
        [
            helper.make_tensor_value_info("authenticity_logit", TensorProto.FLOAT, [1, "M"]),
            helper.make_tensor_value_info("imagenet_logits", TensorProto.FLOAT, ["N", 1000]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", DIM]),
        ],
        initializer=[
            numpy_helper.from_array(a, n) for a, n in [(w1, "w1"), (b1, "b1"), (w2, "w2"), (w3, "w3"), (b3, "b3")]
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_tiny_model(
    folder: Path,
    *,
    name: str = "authenticator",
    size: int = 64,
    bank: tuple[np.ndarray, list[str]] | None = None,
    ood: dict[str, Any] | None = None,
    validated: tuple[str, ...] = ("bag", "sneaker"),
    temperature: float = 1.5,
    thresholds: tuple[float, float] = (0.8, 0.2),
) -> Path:
    """Write ``<name>.onnx`` + ``<name>.card.json`` (+ bank) into ``folder``; returns the card path."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / f"{name}.onnx"
    build_tiny_onnx(onnx_path, size=size)
    extra = []
    ood_section: dict[str, Any] = {
        "metric": "cosine",
        "k": 1,
        "distance_threshold": 2.0,  # everything is familiar unless a test says otherwise
        "imagenet_category_classes": {"bag": [414, 748], "watch": [409, 531], "sneaker": [770]},
    }
    if bank is not None:
        emb, cats = bank
        bank_path = folder / f"{name}.bank.npz"
        with bank_path.open("wb") as f:
            np.savez_compressed(f, embeddings=emb.astype(np.float16), category=np.asarray(cats).astype("U16"))
        extra.append({"path": bank_path.name, "sha256": _sha(bank_path), "purpose": "reference bank"})
        ood_section["bank"] = bank_path.name
    ood_section.update(ood or {})
    card = {
        "name": name,
        "version": "test-tiny",
        "onnx_file": onnx_path.name,
        "sha256": _sha(onnx_path),
        "synthetic": True,
        "preprocessing": {"input_size": size},
        "validated_categories": list(validated),
        "temperature": temperature,
        "aggregation": "mean_logit",
        "thresholds": {"authentic_above": thresholds[0], "counterfeit_below": thresholds[1]},
        "ood": ood_section,
        "extra_files": extra,
    }
    card_path = folder / f"{name}.card.json"
    card_path.write_text(json.dumps(card, indent=2))
    return card_path
