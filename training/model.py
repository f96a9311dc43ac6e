"""The shipped network: one graph, three outputs (authenticity logit, ImageNet logits, embedding)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from training.heads import LinearHead


def region_bins(size: int, grid: int) -> list[tuple[int, int]]:
    """The bins of ``adaptive_avg_pool2d(size -> grid)`` (PyTorch's floor/ceil rule)."""
    return [(math.floor(i * size / grid), math.ceil((i + 1) * size / grid)) for i in range(grid)]


class AuthenticatorNet(nn.Module):
    """EfficientNet-Lite0 trunk + the kept ImageNet classifier + a linear authenticity head.

    ``pool="mean"``: the head reads the globally pooled embedding. ``pool="regions"``: the feature
    map is split into ``grid x grid`` regions (multiple-instance learning), the head scores each
    region and the photo logit is the mean of the region logits. ``embedding`` is always the
    global mean (the unfamiliar-photo bank uses it). Positive logit = authentic.
    """

    def __init__(
        self, backbone: Any, embed_dim: int = 1280, pool: str = "mean", input_size: int = 224, grid: int = 4
    ) -> None:
        super().__init__()
        if pool not in ("mean", "regions"):
            raise ValueError(pool)
        self.backbone = backbone
        self.auth_head = nn.Linear(embed_dim, 1)
        self.pool = pool
        fmap = math.ceil(input_size / 32)
        self.bins = region_bins(fmap, grid)

    def set_head(self, head: LinearHead) -> None:
        with torch.no_grad():
            self.auth_head.weight.copy_(torch.from_numpy(np.asarray(head.w, dtype=np.float32))[None])
            self.auth_head.bias.fill_(float(head.b))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.backbone.forward_features(image)
        emb = f.mean((2, 3))
        imagenet = self.backbone.get_classifier()(emb)
        if self.pool == "mean":
            logit = self.auth_head(emb)[:, 0]
        else:
            cells = [f[:, :, r0:r1, c0:c1].mean((2, 3)) for r0, r1 in self.bins for c0, c1 in self.bins]
            logit = torch.stack([self.auth_head(c)[:, 0] for c in cells], dim=1).mean(1)
        return logit, imagenet, emb
