"""Candidate models for the lifecycle tests: tiny ONNX graphs of the shipped contract that differ
by a seed (so their sha256 does), and evaluation reports of the shape ``authenticator model
evaluate`` writes, with the numbers a test needs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.vision_tiny_model import build_tiny_onnx, write_tiny_model


def tiny(folder: Path, seed: int) -> tuple[Path, str]:
    """A tiny model whose graph differs by ``seed`` (so its sha256 does); (card path, sha256)."""
    card_path = write_tiny_model(folder)
    onnx_path = folder / "authenticator.onnx"
    build_tiny_onnx(onnx_path, size=64, seed=seed)
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    card = json.loads(card_path.read_text())
    card["sha256"], card["version"] = sha, f"tiny-{seed}"
    card_path.write_text(json.dumps(card))
    return card_path, sha


def block(fp: float, coverage: float, n: int = 200, n_fake: int = 100) -> dict[str, Any]:
    return {
        "n": n,
        "n_counterfeit": n_fake,
        "false_pass_rate": fp,
        "counterfeit_called_authentic": round(fp * n_fake),
        "coverage": coverage,
    }


def report(
    champion: str, candidate: str, cand: tuple[float, float], champ: tuple[float, float] = (0.01, 0.2)
) -> dict[str, Any]:
    part = {
        "champion": {"overall": block(*champ), "per_category": {"sneaker": block(*champ)}},
        "candidate": {"overall": block(*cand), "per_category": {"sneaker": block(*cand)}},
    }
    return {
        "champion": {"sha256": champion},
        "candidate": {"sha256": candidate},
        "parts": {"development_cv": part, "certified_held_back": json.loads(json.dumps(part))},
        "summary": {"against": champion, "eligible": True},
    }


def write_evaluation(folder: Path, doc: dict[str, Any]) -> Path:
    ev = folder / "evaluation"
    ev.mkdir(parents=True, exist_ok=True)
    (ev / "report.json").write_text(json.dumps(doc))
    return ev
