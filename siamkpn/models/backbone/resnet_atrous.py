"""ResNet with atrous (dilated) layer3/layer4, output stride 8: the pysot/SiamRPN++ backbone variant.

SiamRPN++ (Li et al., CVPR 2019) and SiamKPN (Li et al., 2020) share it. Parameter names follow
torchvision's ResNet so pysot's `resnet50.model` loads, but the strided/dilated downsample branches
are 3x3 convolutions (not torchvision's 1x1), and conv1 has no padding.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Type, Union

import torch
import torch.nn as nn

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; the first block of a dilated layer uses half the dilation in conv1."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, dilation: int = 1) -> None:
        super().__init__()
        padding = dilation if dilation > 1 else 2 - stride
        first_dilation, first_padding = dilation, padding
        if downsample is not None and dilation > 1:
            first_dilation = first_padding = dilation // 2
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=first_padding,
                               dilation=first_dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided or dilated) -> 1x1 bottleneck, expansion 4."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, dilation: int = 1) -> None:
        super().__init__()
        if stride != 1 and dilation != 1:
            raise ValueError("a block is either strided or dilated, not both")
        if downsample is not None and dilation > 1:
            dilation = dilation // 2  # the first block of a dilated layer
        padding = dilation if dilation > 1 else 2 - stride
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=padding, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = Union[Type[BasicBlock], Type[Bottleneck]]


class ResNet(nn.Module):
    """Atrous ResNet returning the outputs of `used_layers` (0 = stem, 1..4 = layer1..layer4).

    Args:
        block: BasicBlock or Bottleneck.
        layers: blocks per stage, e.g. [3, 4, 6, 3].
        used_layers: which outputs to return, in order; layer3/layer4 exist only when used.
    Shapes: 127x127 input -> 15x15 at layers 2-4; 255x255 -> 31x31.
    """

    def __init__(self, block: Block, layers: Sequence[int], used_layers: Sequence[int]) -> None:
        super().__init__()
        self.inplanes = 64
        self.used_layers = list(used_layers)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.channels = {0: 64, 1: 64 * block.expansion, 2: 128 * block.expansion}
        deepest = max(self.used_layers)
        if deepest >= 3:
            self.layer3 = self._make_layer(block, 256, layers[2], dilation=2)
            self.channels[3] = 256 * block.expansion
        if deepest >= 4:
            self.layer4 = self._make_layer(block, 512, layers[3], dilation=4)
            self.channels[4] = 512 * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        downsample = None
        out_channels = planes * block.expansion
        if stride != 1 or self.inplanes != out_channels:
            if stride == 1 and dilation == 1:
                conv = nn.Conv2d(self.inplanes, out_channels, 1, stride=stride, bias=False)
            else:
                ds_dilation = dilation // 2 if dilation > 1 else 1
                ds_padding = ds_dilation if dilation > 1 else 0
                conv = nn.Conv2d(self.inplanes, out_channels, 3, stride=stride, padding=ds_padding,
                                 dilation=ds_dilation, bias=False)
            downsample = nn.Sequential(conv, nn.BatchNorm2d(out_channels))
        layers = [block(self.inplanes, planes, stride, downsample, dilation=dilation)]
        self.inplanes = out_channels
        layers += [block(self.inplanes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        stem = self.relu(self.bn1(self.conv1(x)))
        outs = [stem]
        x = self.layer1(self.maxpool(stem))
        outs.append(x)
        x = self.layer2(x)
        outs.append(x)
        deepest = max(self.used_layers)
        for idx in (3, 4):
            if idx > deepest:
                break
            x = getattr(self, f"layer{idx}")(x)
            outs.append(x)
        picked = [outs[i] for i in self.used_layers]
        return picked[0] if len(picked) == 1 else picked


def resnet18(used_layers: Sequence[int] = (2, 3, 4)) -> ResNet:
    """ResNet-18 atrous (BasicBlock [2, 2, 2, 2])."""
    return ResNet(BasicBlock, [2, 2, 2, 2], used_layers)


def resnet34(used_layers: Sequence[int] = (2, 3, 4)) -> ResNet:
    """ResNet-34 atrous (BasicBlock [3, 4, 6, 3])."""
    return ResNet(BasicBlock, [3, 4, 6, 3], used_layers)


def resnet50(used_layers: Sequence[int] = (2, 3, 4)) -> ResNet:
    """ResNet-50 atrous (Bottleneck [3, 4, 6, 3])."""
    return ResNet(Bottleneck, [3, 4, 6, 3], used_layers)
