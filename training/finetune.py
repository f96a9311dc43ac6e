"""Fine-tuning the backbone: an approach the pipeline compares on the same folds, shipped only if it wins.

Per fold, a fresh copy of the ImageNet backbone has its last ``unfreeze_blocks`` blocks and its head
convolution trained together with a linear authenticity head (AdamW, class-balanced BCE, horizontal
flips) on the other folds' photos, preprocessed exactly as serving does; the held-out fold's logits
are its out-of-fold scores, summarised like every other approach's. CUDA when present, CPU
otherwise. On 2 CPU cores a 5-fold run at 448 px takes many hours, so the pipeline compares it by
default only where CUDA is (``python -m training train --approach finetune`` asks for it anyway).

Shipping (``--ship finetune``) is refused unless the comparison on the same folds chose it over every
frozen-backbone approach by the pipeline's own key (worst-source false-pass at 30% coverage, then
AUROC); the shipped graph is then the backbone fine-tuned on every photo, with the same INT8 export,
head fit and calibration on its served embeddings as the frozen approaches.

Measured before this module existed (two GPU runs, issue 13): +0.03 photo AUROC inside the largest
sneaker source at 448 px (0.84 -> 0.87), nothing across sources.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from authenticator.vision.preprocess import PreprocessSpec
from training.backbone import load_backbone
from training.cv import Arrays, CVResult
from training.data import Sample, training_input

APPROACH = "finetune"


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class FinetuneConfig:
    input_size: int = 448
    epochs: int = 4
    unfreeze_blocks: int = 2
    lr: float = 3e-4
    head_lr: float = 1e-3
    batch: int = 32
    weight_decay: float = 1e-4

    @classmethod
    def for_device(cls, dev: str) -> FinetuneConfig:
        return cls() if dev == "cuda" else cls(epochs=3, batch=8)


class _Net(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(1280, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bb: Any = self.backbone
        out: torch.Tensor = self.head(bb.forward_features(x).mean((2, 3)))[:, 0]
        return out


def _trainable(net: _Net, unfreeze: int) -> list[nn.Parameter]:
    for p in net.backbone.parameters():
        p.requires_grad_(False)
    bb: Any = net.backbone  # timm EfficientNet: blocks, conv_head, bn2
    parts: list[nn.Module] = [*list(bb.blocks)[-unfreeze:], bb.conv_head, bb.bn2]
    params = [p for m in parts for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    return params


def inputs(samples: Sequence[Sample], size: int) -> torch.Tensor:
    """Every photo's network input (float16 to halve memory), preprocessed as serving does."""
    spec = PreprocessSpec(input_size=size)
    return torch.from_numpy(np.stack([training_input(s.path.read_bytes(), spec) for s in samples]).astype(np.float16))


def fit(
    x: torch.Tensor, y: np.ndarray, cfg: FinetuneConfig, seed: int, dev: str, backbone: nn.Module | None = None
) -> _Net:
    torch.manual_seed(seed)
    net = _Net(copy.deepcopy(backbone) if backbone is not None else load_backbone()).to(dev)
    params = _trainable(net, cfg.unfreeze_blocks)
    opt = torch.optim.AdamW(
        [{"params": params, "lr": cfg.lr}, {"params": net.head.parameters(), "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
    )
    yt = torch.from_numpy(y.astype(np.float32))
    pos = float(yt.sum())
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(yt) - pos) / max(pos, 1.0), device=dev))
    g = torch.Generator().manual_seed(seed)
    for _ in range(cfg.epochs):
        net.train()
        net.backbone.eval()  # batch-norm statistics stay ImageNet's (small batches on CPU)
        bb: Any = net.backbone
        for block in list(bb.blocks)[-cfg.unfreeze_blocks :]:
            block.train()
        order = torch.randperm(len(yt), generator=g)
        for i in range(0, len(order), cfg.batch):
            idx = order[i : i + cfg.batch]
            xb = x[idx].float()
            flip = torch.rand(len(idx), generator=g) < 0.5
            xb[flip] = xb[flip].flip(-1)
            opt.zero_grad()
            loss = loss_fn(net(xb.to(dev)), yt[idx].to(dev))
            loss.backward()
            opt.step()
    net.eval()
    return net


def score(net: _Net, x: torch.Tensor, dev: str, batch: int = 64) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(net(x[i : i + batch].float().to(dev)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def finetune_cv(
    samples: Sequence[Sample],
    a: Arrays,
    seed: int = 0,
    cfg: FinetuneConfig | None = None,
    log: Callable[[str], None] = print,
) -> CVResult:
    """Out-of-fold logits of the fine-tuned approach on the pipeline's folds."""
    dev = device()
    cfg = cfg or FinetuneConfig.for_device(dev)
    log(f"fine-tuning on {dev}: {cfg}")
    x = inputs(samples, cfg.input_size)
    base = load_backbone()
    z = np.zeros(len(samples))
    for f in range(int(a.fold.max()) + 1):
        tr, te = np.flatnonzero(a.fold != f), np.flatnonzero(a.fold == f)
        net = fit(x[tr], a.y[tr], cfg, seed + f, dev, base)
        z[te] = score(net, x[te], dev)
        log(f"cv {APPROACH} fold {f}: done")
    return CVResult(APPROACH, z, [], shippable=False)


def finetune_backbone(
    samples: Sequence[Sample], seed: int = 0, cfg: FinetuneConfig | None = None
) -> tuple[nn.Module, FinetuneConfig]:
    """The backbone fine-tuned on every photo (what ships when the approach won), on the CPU."""
    dev = device()
    cfg = cfg or FinetuneConfig.for_device(dev)
    net = fit(inputs(samples, cfg.input_size), np.array([s.y for s in samples]), cfg, seed, dev)
    backbone = net.backbone.cpu().eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    return backbone, cfg
