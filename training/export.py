"""ONNX export (opset 17, classic exporter, dynamic batch) with a checker and onnxruntime parity."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

OUTPUT_NAMES = ["authenticity_logit", "imagenet_logits", "embedding"]


def export_onnx(model: nn.Module, path: Path, input_size: int) -> None:
    model.eval()
    dummy = torch.zeros(2, 3, input_size, input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the classic exporter is deprecated but is what opset 17 needs here
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(model, dummy, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def _export(model: nn.Module, dummy: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=OUTPUT_NAMES,
        dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in OUTPUT_NAMES}},
        opset_version=17,
        dynamo=False,
        do_constant_folding=True,
    )


def parity(model: nn.Module, path: Path, x: np.ndarray) -> float:
    """Max abs difference between torch and onnxruntime over all three outputs."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(OUTPUT_NAMES, {"image": x.astype(np.float32)})
    with torch.inference_mode():
        want = [t.numpy() for t in model(torch.from_numpy(x.astype(np.float32)))]
    return float(max(np.abs(g - w).max() for g, w in zip(got, want, strict=True)))
