"""Occlusion sensitivity (Zeiler & Fergus 2014): which regions moved the score.

Each cell of a grid over the network input is covered with the normalised mean (zero) and the
change of the authenticity logit is recorded. The occluded copies are made a chunk at a time
and the chunks may run in parallel (the assessor's pool): all copies at once would be 4 photos x
49 cells x 2.4 MB = 470 MB at 448 px. The map is returned as a PNG: a colour overlay on what the
model saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np


def occlusion_inputs(x: np.ndarray, grid: int, cells: Sequence[int] | None = None) -> np.ndarray:
    """(3, S, S) -> (len(cells), 3, S, S): one copy per cell (row-major index; every cell by
    default) with that cell set to 0."""
    s = x.shape[-1]
    edges = np.linspace(0, s, grid + 1).round().astype(int)
    cells = range(grid * grid) if cells is None else cells
    out = np.repeat(x[None], len(cells), axis=0)
    for j, k in enumerate(cells):
        r, c = divmod(k, grid)
        out[j, :, edges[r] : edges[r + 1], edges[c] : edges[c + 1]] = 0.0
    return out


MapChunks = Callable[[Callable[[tuple[int, range]], np.ndarray], Iterable[tuple[int, range]]], Iterable[np.ndarray]]


def occlusion_maps(
    inputs: np.ndarray,
    base_logits: np.ndarray,
    run_logits: Callable[[np.ndarray], np.ndarray],
    grid: int = 7,
    *,
    chunk: int = 8,
    map_chunks: MapChunks = map,
) -> np.ndarray:
    """(N, 3, S, S) -> (N, grid, grid) logit drop when each cell is hidden (positive: the cell
    supported "authentic"; negative: it looked counterfeit). ``chunk`` copies go to
    ``run_logits`` at a time; ``map_chunks`` (``map`` or an executor's ``map``) keeps their order."""
    cells = grid * grid
    jobs = [(i, range(a, min(a + chunk, cells))) for i in range(len(inputs)) for a in range(0, cells, max(1, chunk))]

    def run(job: tuple[int, range]) -> np.ndarray:
        i, ks = job
        return np.asarray(run_logits(occlusion_inputs(inputs[i], grid, ks)), dtype=np.float32).reshape(-1)

    occluded = np.concatenate(list(map_chunks(run, jobs))).reshape(len(inputs), grid, grid)
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
