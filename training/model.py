"""The shipped network: one graph, three outputs (authenticity logit, ImageNet logits, embedding)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from training.heads import LinearHead


class AuthenticatorNet(nn.Module):
    """EfficientNet-Lite0 trunk + the kept ImageNet classifier + a linear authenticity head on the
    pooled embedding. Positive logit = authentic."""

    def __init__(self, backbone: Any, embed_dim: int = 1280) -> None:
        super().__init__()
        self.backbone = backbone
        self.auth_head = nn.Linear(embed_dim, 1)

    def set_head(self, head: LinearHead) -> None:
        with torch.no_grad():
            self.auth_head.weight.copy_(torch.from_numpy(np.asarray(head.w, dtype=np.float32))[None])
            self.auth_head.bias.fill_(float(head.b))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.backbone.forward_features(image)
        emb = f.mean((2, 3))
        imagenet = self.backbone.get_classifier()(emb)
        logit = self.auth_head(emb)[:, 0]
        return logit, imagenet, emb
