"""SiamKPN training losses: CornerNet focal loss on the heat maps, smooth-L1 on offsets and object size.

Focal loss from Law & Deng, "CornerNet: Detecting Objects as Paired Keypoints" (ECCV 2018), as used by
Li et al., "Siamese Keypoint Prediction Network for Visual Object Tracking" (SiamKPN, 2020).
Pure functions of tensors on any device and dtype; `KPNLoss(cfg.TRAIN)` combines them per MODEL_SPEC "Losses".
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F

__all__ = ["focal_loss", "masked_smooth_l1", "offsets_weights", "KPNLoss"]


def focal_loss(logits: torch.Tensor, gt: torch.Tensor, neg_weight: float = 1.0, alpha: float = 2.0,
               beta: float = 4.0) -> torch.Tensor:
    """CornerNet focal loss of heat-map logits against a Gaussian label, divided by max(N_pos, 1)."""
    gt = gt.to(device=logits.device, dtype=logits.dtype)
    pos = gt.eq(1)
    neg = gt.lt(1)
    # logsigmoid keeps log(p) and log(1-p) finite where sigmoid saturates (the published log(sigmoid) gives -inf).
    log_p = F.logsigmoid(logits)
    log_1mp = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos_term = (log_p[pos] * (1 - p[pos]).pow(alpha)).sum()
    neg_term = (log_1mp[neg] * p[neg].pow(alpha) * (1 - gt[neg]).pow(beta)).sum()
    # An all-negative batch has N_pos = 0: the published code divides by it (inf); count it as 1 instead.
    num_pos = pos.sum().clamp(min=1).to(logits.dtype)
    return -(pos_term + neg_weight * neg_term) / num_pos


def masked_smooth_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                     weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Smooth-L1 mean over the masked elements (optionally both sides times `weight`); 0 when the mask is empty."""
    target = target.to(device=pred.device, dtype=pred.dtype)
    sel_pred = pred[mask]
    sel_target = target[mask]
    if weight is not None:
        weight = weight.to(device=pred.device, dtype=pred.dtype)
        sel_pred = sel_pred * weight
        sel_target = sel_target * weight
    if sel_pred.numel() == 0:
        # Sum of nothing: 0, yet still attached to the graph so every head parameter gets a (zero) gradient.
        return sel_pred.sum()
    return F.smooth_l1_loss(sel_pred, sel_target)


def offsets_weights(label0: torch.Tensor, mask: torch.Tensor, compat_reference: bool = False) -> torch.Tensor:
    """Stage-0 label values matching `pred[mask]` of a [B,2,O,O] tensor (compat: the published misaligned order)."""
    if compat_reference:
        # Published defect: [all samples' cells] twice, while pred[mask] runs sample by sample, channel by channel.
        cells = label0[label0.gt(0)]
        return torch.cat((cells, cells), 0)
    return label0.expand_as(mask)[mask]


class KPNLoss:
    """Total, heat-map, offsets and object-size losses of the cascaded keypoint heads.

    Args:
        train_cfg: the `TRAIN` config node (STACK, INTER_SUPER, OFFSETS, SAMEOFF, FOCAL_NEG, HM_WEIGHT,
            OF_WEIGHT, WH_WEIGHT, COMPAT_REFERENCE).

    Call with outputs {'heatmap': S x [B,1,O,O] logits, 'offsets': S x [B,2,O,O] or None,
    'objsize': S x [B,2,O,O]} and labels {'heatmap': [B,S,1,O,O], 'offsets': [B,2,O,O], 'objsize': [B,2,O,O]}.
    """

    def __init__(self, train_cfg) -> None:
        self.stack = max(int(train_cfg.STACK), 1)
        self.inter_super = bool(train_cfg.INTER_SUPER)
        self.use_offsets = bool(train_cfg.OFFSETS)
        self.same_offsets = bool(train_cfg.SAMEOFF)
        self.focal_neg = float(train_cfg.FOCAL_NEG)
        self.hm_weight = float(train_cfg.HM_WEIGHT)
        self.of_weight = float(train_cfg.OF_WEIGHT)
        self.wh_weight = float(train_cfg.WH_WEIGHT)
        self.compat_reference = bool(train_cfg.COMPAT_REFERENCE)

    def _stages(self, outputs: Mapping[str, Optional[Sequence[torch.Tensor]]], key: str) -> Sequence[torch.Tensor]:
        preds = outputs.get(key)
        if preds is None:
            raise KeyError(f"KPNLoss: outputs['{key}'] is missing (TRAIN.OFFSETS={self.use_offsets})")
        if isinstance(preds, torch.Tensor):
            preds = [preds]
        needed = self.stack if self.inter_super else 1
        if len(preds) < needed:
            raise ValueError(f"KPNLoss: outputs['{key}'] has {len(preds)} stages, TRAIN.STACK={self.stack} needs "
                             f"{needed}")
        # INTER_SUPER supervises every stage; otherwise only the last one.
        return list(preds[: self.stack]) if self.inter_super else [preds[-1]]

    def __call__(self, outputs: Mapping[str, Optional[Sequence[torch.Tensor]]],
                 labels: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Loss dict with total_loss, heatmap_loss, offsets_loss (0 without TRAIN.OFFSETS), objsize_loss."""
        heatmaps = self._stages(outputs, "heatmap")
        label_hm = labels["heatmap"]
        if label_hm.dim() != 5 or label_hm.shape[1] < len(heatmaps):
            raise ValueError(f"KPNLoss: labels['heatmap'] must be [B,S,1,O,O] with S >= {len(heatmaps)}, "
                             f"got {tuple(label_hm.shape)}")
        label_hm = label_hm.to(heatmaps[0].device)
        # Without INTER_SUPER the last stage is scored against the first label (MODEL_SPEC "Losses").
        hm_losses = [focal_loss(hm, label_hm[:, s], self.focal_neg) for s, hm in enumerate(heatmaps)]
        heatmap_loss = sum(hm_losses) / len(hm_losses)

        label0 = label_hm[:, 0]  # [B,1,O,O]
        mask = label0.gt(0).expand(-1, 2, -1, -1)  # both channels of every cell with a positive stage-0 label
        objsize_loss = sum(masked_smooth_l1(p, labels["objsize"], mask) for p in self._stages(outputs, "objsize"))
        objsize_loss = objsize_loss / len(heatmaps)

        if self.use_offsets:
            weight = None if self.same_offsets else offsets_weights(label0, mask, self.compat_reference)
            offsets_loss = sum(masked_smooth_l1(p, labels["offsets"], mask, weight)
                               for p in self._stages(outputs, "offsets"))
            offsets_loss = offsets_loss / len(heatmaps)
            total = self.hm_weight * heatmap_loss + self.of_weight * offsets_loss + self.wh_weight * objsize_loss
        else:
            offsets_loss = heatmap_loss.new_zeros(())
            total = self.hm_weight * heatmap_loss + self.wh_weight * objsize_loss
        return {"total_loss": total, "heatmap_loss": heatmap_loss, "offsets_loss": offsets_loss,
                "objsize_loss": objsize_loss}
