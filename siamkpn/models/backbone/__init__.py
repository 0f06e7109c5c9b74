"""Backbone registry: cfg.BACKBONE.TYPE -> constructor."""
from __future__ import annotations

import torch.nn as nn

from siamkpn.models.backbone.resnet_atrous import resnet18, resnet34, resnet50
from siamkpn.utils.registry import Registry

BACKBONES = Registry("backbone", {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50})


def get_backbone(name: str, **kwargs) -> nn.Module:
    """Build the backbone called `name` (cfg.BACKBONE.TYPE) with `kwargs` (cfg.BACKBONE.KWARGS)."""
    return BACKBONES.build(name, **kwargs)
