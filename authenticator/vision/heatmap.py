"""Occlusion sensitivity (Zeiler & Fergus 2014): which regions moved the score.

Each cell of a grid over the network input is covered with the normalised mean (zero) and the
change of the authenticity logit is recorded. All occluded copies of all photos go through
onnxruntime in batches. The map is returned as a PNG: a colour overlay on what the model saw.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def occlusion_inputs(x: np.ndarray, grid: int) -> np.ndarray:
    """(3, S, S) -> (grid*grid, 3, S, S): one copy per cell with that cell set to 0."""
    s = x.shape[-1]
    edges = np.linspace(0, s, grid + 1).round().astype(int)
    out = np.repeat(x[None], grid * grid, axis=0)
    for r in range(grid):
        for c in range(grid):
            out[r * grid + c, :, edges[r] : edges[r + 1], edges[c] : edges[c + 1]] = 0.0
    return out


def occlusion_maps(
    inputs: np.ndarray, base_logits: np.ndarray, run_logits: Callable[[np.ndarray], np.ndarray], grid: int = 7
) -> np.ndarray:
    """(N, 3, S, S) -> (N, grid, grid) logit drop when each cell is hidden (positive: the cell
    supported "authentic"; negative: it looked counterfeit)."""
    batch = np.concatenate([occlusion_inputs(x, grid) for x in inputs])
    occluded = run_logits(batch).reshape(len(inputs), grid, grid)
    return base_logits.reshape(-1, 1, 1) - occluded  # type: ignore[no-any-return]


def overlay_png(square_rgb: np.ndarray, cell_map: np.ndarray, alpha: float = 0.45) -> bytes:
    """PNG bytes: the network input with |effect| as a JET colour overlay (red = moved it most)."""
    s = square_rgb.shape[0]
    mag = np.abs(cell_map).astype(np.float32)
    top = float(mag.max())
    norm = mag / top if top > 0 else mag
    up = cv2.resize(norm, (s, s), interpolation=cv2.INTER_CUBIC)
    heat = cv2.applyColorMap(np.clip(up * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)  # BGR
    base = cv2.cvtColor(square_rgb, cv2.COLOR_RGB2BGR)
    blended = cv2.addWeighted(base, 1 - alpha, heat, alpha, 0)
    ok, buf = cv2.imencode(".png", blended)
    if not ok:  # pragma: no cover - encoding a uint8 image cannot fail
        raise RuntimeError("PNG encoding failed")
    return bytes(buf.tobytes())
