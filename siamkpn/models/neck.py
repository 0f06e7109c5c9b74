"""Neck: 1x1 conv + BN per backbone level to a common width (pysot's AdjustLayer/AdjustAllLayer)."""
from __future__ import annotations

from typing import List, Sequence, Union

import torch
import torch.nn as nn

from siamkpn.utils.registry import Registry

__all__ = ["AdjustLayer", "AdjustAllLayer", "NECKS", "get_neck"]


class AdjustLayer(nn.Module):
    """Conv2d 1x1 (no bias) + BatchNorm; no template cropping (the head crops the kernel itself)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                        nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x)


class AdjustAllLayer(nn.Module):
    """One AdjustLayer per level, named `downsample{i+2}` (or `downsample` for a single level)."""

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int]) -> None:
        super().__init__()
        if len(in_channels) != len(out_channels):
            raise ValueError(f"neck in_channels {list(in_channels)} and out_channels {list(out_channels)} "
                             "differ in length")
        self.num = len(out_channels)
        if self.num == 1:
            self.downsample = AdjustLayer(in_channels[0], out_channels[0])
        else:
            for i, (cin, cout) in enumerate(zip(in_channels, out_channels)):
                self.add_module(f"downsample{i + 2}", AdjustLayer(cin, cout))

    def forward(self, features: Union[torch.Tensor, List[torch.Tensor]]):
        if self.num == 1:
            return self.downsample(features)
        return [getattr(self, f"downsample{i + 2}")(f) for i, f in enumerate(features)]


NECKS = Registry("neck", {"AdjustLayer": AdjustLayer, "AdjustAllLayer": AdjustAllLayer})


def get_neck(name: str, **kwargs) -> nn.Module:
    """Build the neck called `name` (cfg.ADJUST.TYPE)."""
    return NECKS.build(name, **kwargs)
