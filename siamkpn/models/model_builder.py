"""SiamKPN model: backbone -> neck -> cascaded keypoint head, built from a cfg."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Union

import torch
import torch.nn as nn
from yacs.config import CfgNode

from siamkpn.models.backbone import get_backbone
from siamkpn.models.head import get_kpn_head
from siamkpn.models.neck import get_neck

__all__ = ["ModelBuilder"]

Features = Union[torch.Tensor, List[torch.Tensor]]


class ModelBuilder(nn.Module):
    """The full network. The cfg is read here only; sub-modules get plain keyword arguments.

    API: `template(z) -> zf` (neck features of the exemplar crop(s)), `template_kernels(zf)` (the
    head's template side, cacheable per initialisation), `track(zf, x, kernels=None) -> {'heatmap',
    'offsets', 'objsize'}` (a list with one tensor per stage each; offsets None without TRAIN.OFFSETS),
    `forward(batch)` -> losses for training.
    """

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = get_backbone(cfg.BACKBONE.TYPE, **dict(cfg.BACKBONE.KWARGS))
        self.use_neck = bool(cfg.ADJUST.ADJUST)
        if self.use_neck:
            self.neck = get_neck(cfg.ADJUST.TYPE, **dict(cfg.ADJUST.KWARGS))
        train = cfg.TRAIN
        self.kpn_head = get_kpn_head(cfg.KPN.TYPE, **dict(cfg.KPN.KWARGS), stack=train.STACK,
                                     inter_super=train.INTER_SUPER, offsets=train.OFFSETS,
                                     crop_template=train.CROP_TEMPLATE)
        if cfg.KPN.HEATMAP_INIT_PROB:
            self._init_heatmap_bias(float(cfg.KPN.HEATMAP_INIT_PROB))
        self._loss = None

    def _init_heatmap_bias(self, prob: float) -> None:
        """Every stage's heat-map output bias (`...heatmap.head{s}.1.bias`) set to the logit of `prob`."""
        if not 0.0 < prob < 1.0:
            raise ValueError(f"KPN.HEATMAP_INIT_PROB must be in (0, 1), got {prob}")
        biases = [p for n, p in self.kpn_head.named_parameters()
                  if ".heatmap.head" in f".{n}" and n.endswith(".1.bias")]
        with torch.no_grad():
            for bias in biases:
                bias.fill_(math.log(prob / (1.0 - prob)))

    def extract(self, img: torch.Tensor) -> Features:
        """Backbone + neck features of a batch of crops (float, raw 0..255 BGR, NCHW)."""
        feats = self.backbone(img)
        return self.neck(feats) if self.use_neck else feats

    def template(self, z: torch.Tensor) -> Features:
        """Features of the exemplar crop(s) [B,3,127,127]."""
        return self.extract(z)

    def template_kernels(self, zf: Features) -> Any:
        """The head's template-side computation (z_conv*), reusable for every frame until re-init."""
        return self.kpn_head.kernels(zf)

    def track(self, zf: Features, x: torch.Tensor, kernels: Optional[Any] = None) -> Dict[str, Any]:
        """Head outputs for search crop(s) x [B,3,255,255] against template features zf."""
        xf = self.extract(x)
        if kernels is None:
            kernels = self.template_kernels(zf)
        return self.kpn_head.search(kernels, xf)

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Training losses for a batch {'template', 'search', 'label_heatmap', 'label_offsets', 'label_objsize'}.

        Tensors must already be on the model's device (the trainer moves them).
        """
        if self._loss is None:
            from siamkpn.models.loss import KPNLoss  # imported lazily: inference never needs it

            self._loss = KPNLoss(self.cfg.TRAIN)
        zf = self.extract(batch["template"])
        out = self.track(zf, batch["search"])
        labels = {"heatmap": batch["label_heatmap"], "offsets": batch.get("label_offsets"),
                  "objsize": batch["label_objsize"]}
        return self._loss(out, labels)
