"""Depthwise cross-correlation: each sample's each channel correlated with its own kernel."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def xcorr_depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """x [B,C,H,W], kernel [B,C,h,w] -> [B,C,H-h+1,W-w+1], as one grouped convolution."""
    batch, channel = kernel.shape[:2]
    x = x.reshape(1, batch * channel, x.size(2), x.size(3))
    kernel = kernel.reshape(batch * channel, 1, kernel.size(2), kernel.size(3))
    out = F.conv2d(x, kernel, groups=batch * channel)
    return out.reshape(batch, channel, out.size(2), out.size(3))
