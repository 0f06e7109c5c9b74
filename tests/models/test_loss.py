"""KPNLoss against the published losses (losses.json) on the saved head outputs, and its guarded edge cases."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from siamkpn.config import get_cfg, load_cfg
from siamkpn.datasets.targets import KeypointTarget
from siamkpn.models.loss import KPNLoss, focal_loss, offsets_weights

KEYS = ("total_loss", "heatmap_loss", "offsets_loss", "objsize_loss")


def _cfg(reference_dir, compat: bool):
    return load_cfg(str(reference_dir / "config.yaml"), ["TRAIN.COMPAT_REFERENCE", str(compat)])


def _batch(reference_dir, name: str, requires_grad: bool = False):
    """(outputs, saved labels, raw npz) of a loss batch; outputs are leaf tensors per stage."""
    data = np.load(reference_dir / name)
    stages = sum(k.startswith("pred_heatmap_") for k in data.files)
    outputs = {
        key: [torch.tensor(data[f"pred_{key}_{s}"], requires_grad=requires_grad) for s in range(stages)]
        for key in ("heatmap", "offsets", "objsize")
    }
    labels = {
        "heatmap": torch.from_numpy(np.stack([data[f"label_heatmap_{s}"] for s in range(stages)], axis=1)),
        "offsets": torch.from_numpy(data["label_offsets"]),
        "objsize": torch.from_numpy(data["label_objsize"]),
    }
    return outputs, labels, data


def _recomputed_labels(reference_dir, data, cfg):
    """Labels for the batch made by KeypointTarget from the targets.npz boxes at box_index."""
    boxes = np.load(reference_dir / "targets.npz")["boxes"]
    target = KeypointTarget(cfg)
    per_sample = [target(boxes[i], neg=bool(neg)) for i, neg in zip(data["box_index"], data["neg"])]
    return {key: torch.from_numpy(np.stack([s[k] for s in per_sample]))
            for k, key in enumerate(("heatmap", "offsets", "objsize"))}


def _reference(reference_dir, name: str) -> dict:
    losses = json.loads((reference_dir / "losses.json").read_text())
    return losses if name == "loss_batch.npz" else losses["extra"]["pos_plus_neg_batch_eval"]


def _assert_losses(ours: dict, expected: dict, keys=KEYS, rtol: float = 1e-5):
    for key in keys:
        assert ours[key].item() == pytest.approx(float(expected[key]), rel=rtol), key


@pytest.mark.parametrize("name", ["loss_batch.npz", "loss_batch_neg.npz"])
@pytest.mark.parametrize("labels_from", ["saved", "keypoint_target"])
def test_compat_reproduces_published_losses(reference_dir, name, labels_from):
    cfg = _cfg(reference_dir, compat=True)
    outputs, labels, data = _batch(reference_dir, name)
    if labels_from == "keypoint_target":
        labels = _recomputed_labels(reference_dir, data, cfg)
    _assert_losses(KPNLoss(cfg.TRAIN)(outputs, labels), _reference(reference_dir, name))


def test_default_aligns_the_offsets_weights(reference_dir):
    outputs, labels, _ = _batch(reference_dir, "loss_batch.npz")
    extra = json.loads((reference_dir / "losses.json").read_text())["extra"]["derived_offsets_weights_aligned"]
    losses = KPNLoss(_cfg(reference_dir, compat=False).TRAIN)(outputs, labels)
    assert losses["offsets_loss"].item() == pytest.approx(extra["offsets_loss_aligned"], rel=1e-5)
    assert losses["total_loss"].item() == pytest.approx(extra["total_loss_aligned"], rel=1e-5)
    # The heat-map and object-size terms do not depend on the weight order.
    _assert_losses(losses, _reference(reference_dir, "loss_batch.npz"), keys=("heatmap_loss", "objsize_loss"))


def test_offsets_weights_order():
    label0 = torch.zeros(2, 1, 2, 2)
    label0[0, 0, 0, 0], label0[0, 0, 1, 1] = 0.5, 0.25  # sample 0: two cells
    label0[1, 0, 0, 1] = 0.75  # sample 1: one cell
    mask = label0.gt(0).expand(-1, 2, -1, -1)
    # pred[mask] runs sample by sample, channel by channel: s0 x (2 cells), s0 y (2), s1 x (1), s1 y (1).
    assert offsets_weights(label0, mask).tolist() == [0.5, 0.25, 0.5, 0.25, 0.75, 0.75]
    assert offsets_weights(label0, mask, compat_reference=True).tolist() == [0.5, 0.25, 0.75, 0.5, 0.25, 0.75]


def _focal_numpy(logits: np.ndarray, gt: np.ndarray, neg_weight: float) -> float:
    """CornerNet focal loss written from the formula, float64, N_pos guarded by max(., 1)."""
    x = logits.astype(np.float64)
    p = 1 / (1 + np.exp(-x))
    y = gt.astype(np.float64)
    pos, neg = y == 1, y < 1
    pos_sum = np.sum(np.log(p[pos]) * (1 - p[pos]) ** 2)
    neg_sum = np.sum(np.log(1 - p[neg]) * p[neg] ** 2 * (1 - y[neg]) ** 4)
    return -(pos_sum + neg_weight * neg_sum) / max(pos.sum(), 1)


def test_focal_loss_matches_formula():
    rng = np.random.default_rng(3)
    logits = rng.normal(-2, 2, (3, 1, 9, 9)).astype(np.float32)
    gt = np.clip(rng.uniform(-0.5, 1.0, logits.shape), 0, None).astype(np.float32)
    gt[0, 0, 4, 4] = gt[2, 0, 1, 7] = 1.0
    for neg_weight in (1.0, 0.05):
        ours = focal_loss(torch.from_numpy(logits), torch.from_numpy(gt), neg_weight)
        assert float(ours) == pytest.approx(_focal_numpy(logits, gt, neg_weight), rel=1e-5)
    # Saturated logits stay finite (the published log(sigmoid) gives inf here).
    extreme = torch.tensor([[[[-200.0, 200.0]]]])
    assert torch.isfinite(focal_loss(extreme, torch.tensor([[[[1.0, 0.0]]]]))).item()


@pytest.mark.parametrize("compat", [False, True])
def test_all_negative_batch_is_finite(reference_dir, compat):
    cfg = _cfg(reference_dir, compat)
    outputs, labels, _ = _batch(reference_dir, "loss_batch_neg.npz", requires_grad=True)
    labels = {key: torch.zeros_like(value) for key, value in labels.items()}
    losses = KPNLoss(cfg.TRAIN)(outputs, labels)
    assert all(torch.isfinite(losses[key]).item() for key in KEYS)
    # Heat map: only the FOCAL_NEG-weighted negative term (N_pos counted as 1); no positive cell, no regression.
    stages = outputs["heatmap"] if cfg.TRAIN.INTER_SUPER else outputs["heatmap"][-1:]
    zeros = np.zeros((2, 1, 31, 31), dtype=np.float32)
    expected = np.mean([_focal_numpy(hm.detach().numpy(), zeros, cfg.TRAIN.FOCAL_NEG) for hm in stages])
    assert losses["heatmap_loss"].item() == pytest.approx(expected, rel=1e-5)
    assert losses["offsets_loss"].item() == 0.0 and losses["objsize_loss"].item() == 0.0
    assert losses["total_loss"].item() == pytest.approx(cfg.TRAIN.HM_WEIGHT * expected, rel=1e-5)
    losses["total_loss"].backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in outputs["heatmap"][-1:])
    assert not outputs["offsets"][-1].grad.any() and not outputs["objsize"][-1].grad.any()


@pytest.mark.parametrize("compat", [False, True])
def test_gradients_flow(reference_dir, compat):
    cfg = _cfg(reference_dir, compat)
    outputs, labels, _ = _batch(reference_dir, "loss_batch.npz", requires_grad=True)
    KPNLoss(cfg.TRAIN)(outputs, labels)["total_loss"].backward()
    supervised = range(len(outputs["heatmap"])) if cfg.TRAIN.INTER_SUPER else [-1]
    for key in ("heatmap", "offsets", "objsize"):
        for s in supervised:
            grad = outputs[key][s].grad
            assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, (key, s)


def test_float64_inputs_and_no_offsets():
    cfg = get_cfg()
    cfg.TRAIN.OFFSETS = False
    target = KeypointTarget(cfg)
    heatmaps, _, objsize = target([90.0, 100.0, 170.0, 150.0])
    labels = {"heatmap": torch.from_numpy(heatmaps[None]), "objsize": torch.from_numpy(objsize[None])}
    torch.manual_seed(0)
    outputs = {"heatmap": [torch.randn(1, 1, 31, 31, dtype=torch.float64)], "offsets": None,
               "objsize": [torch.randn(1, 2, 31, 31, dtype=torch.float64) * 10 + 60]}
    losses = KPNLoss(cfg.TRAIN)(outputs, labels)
    assert losses["total_loss"].dtype == torch.float64
    assert losses["offsets_loss"].item() == 0.0
    expected = cfg.TRAIN.HM_WEIGHT * losses["heatmap_loss"] + cfg.TRAIN.WH_WEIGHT * losses["objsize_loss"]
    assert losses["total_loss"].item() == pytest.approx(float(expected), rel=1e-12)


def test_sameoff_uses_unweighted_smooth_l1():
    cfg = get_cfg()
    cfg.TRAIN.SAMEOFF = True
    heatmaps, offsets, objsize = KeypointTarget(cfg)([90.0, 100.0, 170.0, 150.0])
    torch.manual_seed(1)
    pred_off = torch.randn(1, 2, 31, 31)
    outputs = {"heatmap": [torch.randn(1, 1, 31, 31)], "offsets": [pred_off], "objsize": [torch.randn(1, 2, 31, 31)]}
    labels = {"heatmap": torch.from_numpy(heatmaps[None]), "offsets": torch.from_numpy(offsets[None]),
              "objsize": torch.from_numpy(objsize[None])}
    mask = np.broadcast_to(heatmaps[0] > 0, (2, 31, 31))
    diff = np.abs(pred_off[0].numpy()[mask].astype(np.float64) - offsets[mask])
    expected = np.mean(np.where(diff < 1, 0.5 * diff**2, diff - 0.5))
    assert float(KPNLoss(cfg.TRAIN)(outputs, labels)["offsets_loss"]) == pytest.approx(expected, rel=1e-5)


def test_missing_stage_is_a_clear_error():
    cfg = get_cfg()
    cfg.TRAIN.STACK, cfg.TRAIN.INTER_SUPER = 3, True
    outputs = {"heatmap": [torch.zeros(1, 1, 31, 31)], "offsets": [torch.zeros(1, 2, 31, 31)],
               "objsize": [torch.zeros(1, 2, 31, 31)]}
    labels = {"heatmap": torch.zeros(1, 3, 1, 31, 31), "offsets": torch.zeros(1, 2, 31, 31),
              "objsize": torch.zeros(1, 2, 31, 31)}
    with pytest.raises(ValueError, match="STACK"):
        KPNLoss(cfg.TRAIN)(outputs, labels)
