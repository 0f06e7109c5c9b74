"""The training loop: snapshots, backbone unfreezing, exact resume and non-finite losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from helpers import tiny_cfg
from siamkpn.datasets.targets import KeypointTarget
from siamkpn.engine.distributed import DistInfo
from siamkpn.engine.trainer import Trainer, TrainingDiverged, latest_snapshot
from siamkpn.models.checkpoint import read_checkpoint
from siamkpn.models.model_builder import ModelBuilder


class RandomPairs(Dataset):
    """Deterministic random crops with real keypoint labels; the sample depends on (index, epoch)."""

    def __init__(self, cfg, n=4, poison=False):
        self.cfg, self.n, self.poison, self.epoch = cfg, n, poison, 0
        self.target = KeypointTarget(cfg)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng(1000 * self.epoch + i)
        cx, cy = rng.uniform(100, 155, 2)
        w, h = rng.uniform(30, 90, 2)
        hm, off, size = self.target(np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]), 31, neg=False)
        template = rng.uniform(0, 255, (3, 127, 127)).astype(np.float32)
        if self.poison:
            template[:] = np.nan
        return {"template": template, "search": rng.uniform(0, 255, (3, 255, 255)).astype(np.float32),
                "label_heatmap": hm, "label_offsets": off, "label_objsize": size}


def _cfg(tmp_path, epochs=2):
    cfg = tiny_cfg(stack=2)
    cfg.TRAIN.EPOCH = epochs
    cfg.TRAIN.BATCH_SIZE = 2
    cfg.TRAIN.NUM_WORKERS = 0
    cfg.TRAIN.BASE_LR = 1e-3
    cfg.TRAIN.LR.KWARGS.start_lr = 1e-3
    cfg.TRAIN.LR.KWARGS.end_lr = 1e-4
    cfg.TRAIN.LR_WARMUP.WARMUP = False
    cfg.BACKBONE.TRAIN_EPOCH = 1
    cfg.BACKBONE.TRAIN_LAYERS = ["layer3"]
    cfg.TRAIN.SNAPSHOT_DIR = str(tmp_path / "snapshot")
    cfg.TRAIN.LOG_DIR = str(tmp_path / "logs")
    return cfg


def _trainer(cfg, poison=False):
    torch.manual_seed(0)
    return Trainer(cfg, ModelBuilder(cfg), RandomPairs(cfg, poison=poison), DistInfo(), progress=False)


def test_fit_writes_snapshots_and_unfreezes_backbone(tmp_path):
    cfg = _cfg(tmp_path)
    trainer = _trainer(cfg)
    init = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    e1 = read_checkpoint(str(tmp_path / "snapshot" / "checkpoint_e1.pth"))["state_dict"]
    e2 = read_checkpoint(str(tmp_path / "snapshot" / "checkpoint_e2.pth"))["state_dict"]
    assert latest_snapshot(cfg.TRAIN.SNAPSHOT_DIR).endswith("checkpoint_e2.pth")
    key3, key2 = "backbone.layer3.0.conv1.weight", "backbone.layer2.0.conv1.weight"
    bn3 = "backbone.layer3.0.bn1.running_mean"
    assert torch.equal(init[key3], e1[key3]) and torch.equal(init[bn3], e1[bn3])  # frozen in epoch 0
    assert not torch.equal(e1[key3], e2[key3]) and not torch.equal(e1[bn3], e2[bn3])  # trained in epoch 1
    assert torch.equal(init[key2], e2[key2])  # never in TRAIN_LAYERS
    head = "kpn_head.kpn0.heatmap.head1.1.bias"
    assert not torch.equal(init[head], e1[head])
    assert list((tmp_path / "logs").glob("events.out.tfevents*"))


def test_resume_continues_exactly(tmp_path):
    cfg = _cfg(tmp_path / "a", epochs=3)
    _trainer(cfg).fit()
    straight = read_checkpoint(str(tmp_path / "a" / "snapshot" / "checkpoint_e3.pth"))

    cfg_b = _cfg(tmp_path / "b", epochs=3)
    resumed = _trainer(cfg_b)
    torch.manual_seed(999)  # resume must not depend on the process's RNG history
    resumed.resume(str(tmp_path / "a" / "snapshot" / "checkpoint_e1.pth"))
    assert resumed.start_epoch == 1
    resumed.fit()
    again = read_checkpoint(str(tmp_path / "b" / "snapshot" / "checkpoint_e3.pth"))
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, again["state_dict"][key]), key
    assert not (tmp_path / "b" / "snapshot" / "checkpoint_e1.pth").exists()


def test_non_finite_losses_skip_then_stop_keeping_last_snapshot(tmp_path):
    cfg = _cfg(tmp_path)
    good = _trainer(cfg)
    cfg.TRAIN.EPOCH = 1
    good.fit()
    snap = tmp_path / "snapshot" / "checkpoint_e1.pth"
    before = snap.read_bytes()
    cfg2 = _cfg(tmp_path)
    cfg2.TRAIN.MAX_BAD_STEPS = 2
    bad = _trainer(cfg2, poison=True)
    bad.resume(str(snap))
    weights = {k: v.clone() for k, v in bad.model.state_dict().items()}
    with pytest.raises(TrainingDiverged, match="2 consecutive non-finite"):
        bad.fit()
    assert bad.skipped_steps == 2
    assert snap.read_bytes() == before and not (tmp_path / "snapshot" / "checkpoint_e2.pth").exists()
    for k, v in weights.items():
        assert torch.equal(v, bad.model.state_dict()[k]), k  # no step taken, BN statistics untouched


@pytest.mark.parametrize("amp,channels_last", [(False, True), (True, False)])
def test_amp_and_channels_last_steps_follow_the_float32_step(tmp_path, amp, channels_last):
    """TRAIN.CHANNELS_LAST gives the float32 step up to rounding; TRAIN.AMP (bf16) a close, finite one."""
    steps = {}
    for variant in ("fp32", "variant"):
        cfg = _cfg(tmp_path / variant)
        if variant == "variant":
            cfg.TRAIN.AMP, cfg.TRAIN.CHANNELS_LAST = amp, channels_last
        trainer = _trainer(cfg)
        trainer._prepare_epoch(1)
        batch = trainer._to_device(next(iter(trainer.loader)))
        if channels_last and variant == "variant":
            assert batch["search"].is_contiguous(memory_format=torch.channels_last)
        losses = trainer._step(batch)
        grads = torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])
        steps[variant] = (losses, grads)
    (fp32, fp32_grads), (other, other_grads) = steps["fp32"], steps["variant"]
    assert other["total_loss"] == pytest.approx(fp32["total_loss"], rel=0.05 if amp else 1e-4)
    assert fp32_grads.shape == other_grads.shape and torch.isfinite(other_grads).all()
    relative = float((fp32_grads - other_grads).abs().max() / fp32_grads.abs().max())
    assert relative < (0.1 if amp else 1e-3)
