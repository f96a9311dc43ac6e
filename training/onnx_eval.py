"""Score a labelled set with a shipped model exactly as the service would (onnxruntime, no torch)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from authenticator.vision.card import ModelCard
from authenticator.vision.decision import decide_codes
from authenticator.vision.runtime import inference_session
from training.data import Sample, training_input
from training.heads import knn_distance
from training.metrics import auroc, ece, sigmoid


def evaluate_card(card_path: Path, samples: list[Sample], out: Path | None = None) -> dict[str, Any]:
    card = ModelCard.load(card_path)
    card.verify_files(card_path)
    sess = inference_session(card.onnx_path(card_path))
    bank = None
    if card.ood.get("bank"):
        bank = np.load(card_path.parent / card.ood["bank"])["embeddings"].astype(np.float32)
    z = np.zeros(len(samples))
    dist = np.zeros(len(samples))
    for i, s in enumerate(samples):
        x = training_input(s.path.read_bytes(), card.preprocessing)[None]
        logit, _, emb = sess.run(card.output_names, {card.input_name: x})
        z[i] = float(np.ravel(logit)[0])
        if bank is not None:
            dist[i] = knn_distance(emb, bank, int(card.ood.get("k", 5)))[0]
    p = sigmoid(z / card.temperature)
    dec = decide_codes(p, card.thresholds.authentic_above, card.thresholds.counterfeit_below)
    unfamiliar = dist > float(card.ood.get("distance_threshold", np.inf))
    dec_ood = np.where(unfamiliar, -1, dec)
    y = np.array([s.y for s in samples])
    src = np.array([s.source for s in samples])
    res: dict[str, Any] = {"model": card.name, "version": card.version, "per_source": {}}
    for name in [*sorted(set(src.tolist())), "all"]:
        m = np.ones(len(y), bool) if name == "all" else src == name
        neg = m & (y == 0)
        res["per_source"][name] = {
            "n": int(m.sum()),
            "auroc": round(auroc(y[m], z[m]), 4),
            "ece": round(ece(y[m], p[m]), 4),
            "false_pass_rate": round(float((dec_ood[neg] == 1).mean()), 4) if neg.any() else None,
            "coverage": round(float((dec_ood[m] >= 0).mean()), 4),
            "unfamiliar_rate": round(float(unfamiliar[m].mean()), 4),
        }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(res, indent=2))
        with (out / "scores.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "source", "y", "logit", "p_authentic", "decision", "ood_distance"])
            for s, a, b, c, e in zip(samples, z, p, dec_ood, dist, strict=True):
                w.writerow([str(s.path), s.source, s.y, f"{a:.6f}", f"{b:.6f}", int(c), f"{e:.5f}"])
    return res
