"""train = data (item-grouped folds) -> features -> grouped CV of every approach -> choose ->
INT8 graph (CV again on its embeddings) -> temperature + thresholds on the shipped head's held-out
scores -> export -> unfamiliar-photo gate (LOSO, bank) -> product lines (an operating point per
validated line) -> metrics -> card -> run files + report.

Each stage is a function from the dataclasses of the earlier stages to its own (:class:`Data`,
:class:`Features`, :class:`CrossValidation`, :class:`Quantized`, :class:`Calibration`,
:class:`Exported`, :class:`UnfamiliarGate`, :class:`~authenticator.vision.card.ProductLines`);
:func:`train` lists them in order. The stages live by concept: :mod:`training.approach_choice`
(1-3), :mod:`training.shipped_graph` (4-6), :mod:`training.unfamiliar_gate` (7),
:mod:`training.card_writing` (8-10); their dataclasses in :mod:`training.stage_results`, the run's
knobs and the approach tables in :mod:`training.run_config`."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from authenticator.vision.card import ModelCard
from training.approach_choice import cross_validate, extract_features, split_data
from training.card_writing import card_metrics, fit_lines, write_card, write_run_files
from training.data import Sample
from training.run_config import TrainConfig
from training.shipped_graph import (
    build_graph,
    export_graph,
    fit_calibration,
    quantize_graph,
    shipped_backbone,
)
from training.unfamiliar_gate import fit_unfamiliar_gate


def train(
    samples: list[Sample],
    out_dir: Path,
    name: str = "authenticator",
    cache_dir: Path | None = Path("training/runs/cache"),
    runs_dir: Path | None = Path("training/runs"),
    k: int = 5,
    seed: int = 0,
    approaches: list[str] | None = None,
    ship: str | None = None,
    max_false_pass: float = 0.01,
    max_false_reject: float = 0.05,
    bootstrap_reps: int = 500,
    quantize: str = "int8",
    calibration_method: str = "percentile",
    calibration_photos: int = 64,
    report: bool = True,
    reproduce: str = "",
    version: str | None = None,
    log: Callable[[str], None] = print,
    recognition: list[Sample] | None = None,
) -> ModelCard:
    """The stages in order; each takes what the earlier ones produced. ``recognition``: photos that
    only join the reference bank's category vote (:mod:`training.recognition`), never a head,
    threshold or figure of the verdict."""
    cfg = TrainConfig(
        name=name,
        k=k,
        seed=seed,
        approaches=approaches,
        ship=ship,
        max_false_pass=max_false_pass,
        max_false_reject=max_false_reject,
        bootstrap_reps=bootstrap_reps,
        quantize=quantize,
        calibration_method=calibration_method,
        calibration_photos=calibration_photos,
        reproduce=reproduce,
        version=version,
    )
    t0 = time.time()
    np.random.seed(seed)
    torch.manual_seed(seed)
    data = split_data(samples, cfg, log)
    feats = extract_features(samples, cache_dir)
    cv = cross_validate(feats.features, data.arrays, cfg, log, samples)
    graph = build_graph(
        shipped_backbone(feats.backbone, cv.chosen, samples, cfg, log), cv.chosen, samples, out_dir, name
    )
    quantized = quantize_graph(graph, data, feats.features, cv, cfg, cache_dir, log)
    calibration = fit_calibration(quantized.cv, data.arrays, cfg, log)
    exported = export_graph(graph, quantized, calibration, log)
    gate = fit_unfamiliar_gate(graph, data, quantized, cfg, out_dir, log, recognition, cache_dir)
    lines = fit_lines(data, quantized, calibration, gate, cfg, log)
    metrics = card_metrics(data, quantized, exported, gate, cfg, log)
    card = write_card(graph, data, quantized, calibration, gate, metrics, cfg, out_dir, log, lines)
    if runs_dir is not None:
        write_run_files(runs_dir, name, graph, data, quantized, calibration)
    if report:
        from training.report import write_report

        write_report(
            out_dir / "report",
            card,
            quantized.cv.summaries,
            quantized.cv.results,
            data.arrays,
            quantized.features,
            quantized.cv.meta_z,
            quantized.cv.chosen,
            calibration.temperature,
            environment={
                "python": platform.python_version(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "seconds": round(time.time() - t0, 1),
            },
        )
        log(f"wrote {out_dir / 'report'}")
    log(f"done in {time.time() - t0:.0f} s")
    return card
