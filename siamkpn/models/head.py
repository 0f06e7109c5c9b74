"""Cascaded keypoint heads of SiamKPN (Li et al., "Siamese Keypoint Prediction Network for Visual
Object Tracking", 2020): `StackXCorr` (1-3 stages of depthwise correlation + 1x1 head),
`DepthwiseKPN` (heat map, offsets, object size), `MultiKPN` (one DepthwiseKPN per level, fused).

Each head splits into a template side (`kernels`, run once per (re-)initialisation when tracking)
and a search side (`search`, run every frame); `forward(z, x)` is the two in sequence.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from siamkpn.models.xcorr import xcorr_depthwise
from siamkpn.utils.registry import Registry

__all__ = ["ConvBN", "StackXCorr", "DepthwiseKPN", "MultiKPN", "KPN_HEADS", "get_kpn_head"]

Outputs = Dict[str, Optional[List[torch.Tensor]]]
BRANCHES = ("heatmap", "offsets", "objsize")


def _center(t: torch.Tensor) -> torch.Tensor:
    """The central 7x7 of a 15x15 template feature map."""
    return t[:, :, 4:11, 4:11]


class ConvBN(nn.Sequential):
    """Conv2d (no bias) -> BN -> ReLU; padding (k-1)//2 when `pad`, else none."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, pad: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, padding=(kernel_size - 1) // 2 if pad else 0, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)


def _out_head(hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(ConvBN(hidden, hidden, 1, pad=False), nn.Conv2d(hidden, cout, 1, bias=True))


class StackXCorr(nn.Module):
    """S cascaded stages; stage s correlates the previous stage's feature with its own kernel.

    Args:
        cin: input channels; hidden: working channels; cout: output channels of each stage's head.
        stack: number of stages S (1-3); inter_super: build head1 (and every stage head) for S > 1.
    Shapes: z [B,cin,15,15], x [B,cin,31,31] -> S tensors [B,cout,31,31].
    """

    def __init__(self, cin: int, hidden: int, cout: int, stack: int = 1, inter_super: bool = False) -> None:
        super().__init__()
        if stack not in (1, 2, 3):
            raise ValueError(f"TRAIN.STACK must be 1, 2 or 3, got {stack}")
        if stack > 1 and not inter_super:
            raise ValueError("TRAIN.STACK > 1 needs TRAIN.INTER_SUPER (stage 1 feeds stage 2 through head1)")
        self.stack = stack
        self.z_conv1 = ConvBN(cin, hidden, 3, pad=False)
        self.x_conv1 = ConvBN(cin, hidden, 3, pad=True)
        self.head1 = _out_head(hidden, cout)
        for s in range(2, stack + 1):
            self.add_module(f"z_conv{s}", ConvBN(hidden, hidden, 3, pad=True))
            self.add_module(f"z_conv{s}2", ConvBN(hidden, hidden, 3, pad=False))
            self.add_module(f"x_conv{s}", ConvBN(hidden, hidden, 3, pad=True))
            self.add_module(f"head{s}", _out_head(hidden, cout))

    def kernels(self, z: torch.Tensor) -> List[torch.Tensor]:
        """Template side: one 5x5 correlation kernel per stage."""
        out = [self.z_conv1(_center(z))]
        zs = z
        for s in range(2, self.stack + 1):
            zs = getattr(self, f"z_conv{s}")(zs)
            out.append(getattr(self, f"z_conv{s}2")(_center(zs)))
        return out

    def search(self, kernels: Sequence[torch.Tensor], x: torch.Tensor) -> List[torch.Tensor]:
        """Search side: stage s correlates x_conv{s}(previous feature), zero-padded by 2, with kernel s."""
        outs, feature = [], x
        for s in range(1, self.stack + 1):
            searched = F.pad(getattr(self, f"x_conv{s}")(feature), (2, 2, 2, 2))
            feature = xcorr_depthwise(searched, kernels[s - 1])
            outs.append(getattr(self, f"head{s}")(feature))
        return outs

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> List[torch.Tensor]:
        return self.search(self.kernels(z), x)


class DepthwiseKPN(nn.Module):
    """Heat map (1 channel), optional offsets (x, y) and object size (w, h) heads for one level."""

    def __init__(self, in_channels: int = 256, out_channels: int = 256, stack: int = 1, inter_super: bool = False,
                 offsets: bool = True, crop_template: bool = False) -> None:
        super().__init__()
        self.crop_template = crop_template
        self.heatmap = StackXCorr(in_channels, out_channels, 1, stack, inter_super)
        if offsets:
            self.offsets = StackXCorr(in_channels, out_channels, 2, stack, inter_super)
        self.objsize = StackXCorr(in_channels, out_channels, 2, stack, inter_super)

    def _branches(self):
        return [(name, getattr(self, name)) for name in BRANCHES if hasattr(self, name)]

    def kernels(self, z: torch.Tensor) -> Dict[str, List[torch.Tensor]]:
        if self.crop_template:
            z = z[:, :, 8:24, 8:24]
        return {name: branch.kernels(z) for name, branch in self._branches()}

    def search(self, kernels: Dict[str, List[torch.Tensor]], x: torch.Tensor) -> Outputs:
        out: Outputs = {name: None for name in BRANCHES}
        for name, branch in self._branches():
            out[name] = branch.search(kernels[name], x)
        return out

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> Outputs:
        return self.search(self.kernels(z), x)


class MultiKPN(nn.Module):
    """One DepthwiseKPN per neck level; per stage the levels are fused by softmax weights or a mean.

    Args:
        in_channels: channels per level (hidden width = input width).
        weighted: learnable `{heatmap,offsets,objsize}_weight` (softmax-normalised) instead of the mean.
    """

    def __init__(self, in_channels: Sequence[int], weighted: bool = False, stack: int = 1, inter_super: bool = False,
                 offsets: bool = True, crop_template: bool = False) -> None:
        super().__init__()
        self.weighted = weighted
        self.levels = len(in_channels)
        for i, c in enumerate(in_channels):
            self.add_module(f"kpn{i}", DepthwiseKPN(c, c, stack, inter_super, offsets, crop_template))
        if weighted:
            for name in BRANCHES:
                if name != "offsets" or offsets:
                    self.register_parameter(f"{name}_weight", nn.Parameter(torch.ones(len(in_channels))))

    def kernels(self, zfs: Sequence[torch.Tensor]) -> List[Dict[str, List[torch.Tensor]]]:
        return [getattr(self, f"kpn{i}").kernels(z) for i, z in enumerate(zfs)]

    def _fuse(self, name: str, per_level: List[torch.Tensor]) -> torch.Tensor:
        if self.weighted:
            weight = F.softmax(getattr(self, f"{name}_weight"), 0)
            fused = per_level[0] * weight[0]
            for i in range(1, len(per_level)):
                fused = fused + per_level[i] * weight[i]
            return fused
        return sum(per_level) / len(per_level)

    def search(self, kernels: Sequence[Dict[str, List[torch.Tensor]]], xfs: Sequence[torch.Tensor]) -> Outputs:
        level_outs = [getattr(self, f"kpn{i}").search(k, x) for i, (k, x) in enumerate(zip(kernels, xfs))]
        fused: Outputs = {}
        for name in BRANCHES:
            if level_outs[0][name] is None:
                fused[name] = None
                continue
            stages = len(level_outs[0][name])
            fused[name] = [self._fuse(name, [lo[name][s] for lo in level_outs]) for s in range(stages)]
        return fused

    def forward(self, zfs: Sequence[torch.Tensor], xfs: Sequence[torch.Tensor]) -> Outputs:
        return self.search(self.kernels(zfs), xfs)


KPN_HEADS = Registry("KPN head", {"DepthwiseKPN": DepthwiseKPN, "MultiKPN": MultiKPN})


def get_kpn_head(name: str, **kwargs) -> nn.Module:
    """Build the head called `name` (cfg.KPN.TYPE) with `kwargs` (cfg.KPN.KWARGS + stage options)."""
    return KPN_HEADS.build(name, **kwargs)
