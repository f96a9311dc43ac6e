"""INT8 post-training quantization of the shipped graph, and the embeddings of the graph that ships.

Why: at 448 px the float graph costs ~19 ms per photo on one core, so a 4-photo assessment
cannot meet its 50 ms budget on two cores; the same graph in INT8 (QDQ, per-channel weights,
activations calibrated on development photos; onnxruntime runs it as QLinearConv with VNNI)
costs ~10 ms. Quantization changes the embedding a little, so the shipped head, its temperature
and thresholds, the unfamiliar-photo bank and every metric on the card are fitted on the
embeddings *this* graph computes (:func:`served_embeddings`), not on torch's float features.

The two classifier heads (authenticity and ImageNet) stay float: they are tiny and read the
dequantized embedding, so the head can be replaced after calibration (:func:`set_linear_head`).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

from authenticator.vision.preprocess import PreprocessSpec
from authenticator.vision.runtime import inference_session
from training.data import Sample, training_input
from training.heads import LinearHead

FLOAT_NODES = ("/auth_head/Gemm", "/classifier/Gemm")
HEAD_WEIGHT, HEAD_BIAS = "auth_head.weight", "auth_head.bias"
METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}


def calibration_samples(samples: Sequence[Sample], n: int, seed: int = 0) -> list[Sample]:
    """``n`` photos spread over every source and label (round-robin over shuffled strata)."""
    rng = np.random.default_rng(seed)
    strata: dict[str, list[Sample]] = {}
    for s in samples:
        strata.setdefault(f"{s.source}|{s.label}", []).append(s)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(strata.items())]
    out: list[Sample] = []
    while len(out) < min(n, len(samples)):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop())
    return out


class _Inputs(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type hints
    def __init__(self, name: str, inputs: list[np.ndarray]) -> None:
        self._name = name
        self._it: Iterator[np.ndarray] = iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self._name: x[None].astype(np.float32)}


def quantize_int8(
    float_path: Path, out_path: Path, calibration: list[np.ndarray], method: str = "percentile"
) -> dict[str, Any]:
    """Static QDQ quantization (U8 activations, S8 per-channel weights) of every op except the
    two heads; returns what the card records about it."""
    if method not in METHODS:
        raise ValueError(f"calibration method {method!r}: choose one of {sorted(METHODS)}")
    input_name = onnx.load(str(float_path)).graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(float_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out_path),
            _Inputs(input_name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=METHODS[method],
            nodes_to_exclude=list(FLOAT_NODES),
        )
    onnx.checker.check_model(onnx.load(str(out_path)), full_check=True)
    return {
        "scheme": "onnxruntime static QDQ: activations uint8 (asymmetric), weights int8 per channel",
        "calibration_method": method,
        "calibration_photos": len(calibration),
        "float_nodes": list(FLOAT_NODES),
        "float_graph_mb": round(float_path.stat().st_size / 1e6, 2),
        "int8_graph_mb": round(out_path.stat().st_size / 1e6, 2),
    }


def set_linear_head(path: Path, head: LinearHead) -> None:
    """Write ``head`` into the graph's float authenticity head, in place."""
    model = onnx.load(str(path))
    found = {i.name: i for i in model.graph.initializer if i.name in (HEAD_WEIGHT, HEAD_BIAS)}
    if set(found) != {HEAD_WEIGHT, HEAD_BIAS}:
        raise ValueError(f"{path} has no float {HEAD_WEIGHT}/{HEAD_BIAS} initializers (found {sorted(found)})")
    w = np.asarray(head.w, dtype=np.float32)[None]
    if tuple(found[HEAD_WEIGHT].dims) != w.shape:
        raise ValueError(f"head shape {w.shape} does not match the graph's {tuple(found[HEAD_WEIGHT].dims)}")
    found[HEAD_WEIGHT].CopyFrom(numpy_helper.from_array(w, HEAD_WEIGHT))
    found[HEAD_BIAS].CopyFrom(numpy_helper.from_array(np.array([head.b], dtype=np.float32), HEAD_BIAS))
    onnx.save(model, str(path))


def graph_digest(path: Path) -> str:
    """sha256 of the graph without the authenticity head, so cached embeddings survive a new head."""
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name in (HEAD_WEIGHT, HEAD_BIAS):
            init.ClearField("raw_data")
            init.ClearField("float_data")
    return hashlib.sha256(model.SerializeToString()).hexdigest()


def served_embeddings(
    path: Path,
    samples: Sequence[Sample],
    spec: PreprocessSpec,
    cache_dir: Path | None,
    threads: int = 2,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(embedding (N, D), ImageNet logits (N, 1000)) of every photo through the graph at ``path``,
    preprocessed exactly as serving does; cached by graph and photo bytes."""
    key = hashlib.sha256(graph_digest(path).encode())
    for s in samples:
        key.update(hashlib.sha256(s.path.read_bytes()).digest())
    cache = cache_dir / f"served-{key.hexdigest()[:24]}.npz" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            return z["embedding"], z["imagenet"]
    sess = inference_session(path, threads)
    name = sess.get_inputs()[0].name
    emb, inet = [], []
    for s in tqdm(samples, desc="served embeddings", unit="photo", disable=not progress):
        x = training_input(s.path.read_bytes(), spec)[None]
        e, i = sess.run(["embedding", "imagenet_logits"], {name: x})
        emb.append(e[0])
        inet.append(i[0])
    out = np.stack(emb).astype(np.float32), np.stack(inet).astype(np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, embedding=out[0], imagenet=out[1])
    return out
