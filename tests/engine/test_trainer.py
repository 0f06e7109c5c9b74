"""The training loop: snapshots, backbone unfreezing, exact resume, non-finite losses and divergence."""
from __future__ import annotations

import errno
import logging
import os

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from helpers import tiny_cfg, torch_threads
from siamkpn.datasets.targets import KeypointTarget
from siamkpn.engine.distributed import DistInfo
from siamkpn.engine.trainer import Trainer, TrainingDiverged, latest_snapshot
from siamkpn.models.checkpoint import CheckpointError, read_checkpoint
from siamkpn.models.model_builder import ModelBuilder
from toolkit.atomic import temp_files


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):  # tiny steps stall on OpenMP barriers with two threads on a shared 2-core machine
        yield


class RandomPairs(Dataset):
    """Deterministic random crops with real keypoint labels; the sample depends on (index, epoch).
    `poison`: True (every sample) or a set of indices whose template is NaN (a non-finite loss)."""

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
        if self.poison is True or (self.poison and i in self.poison):
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
    with pytest.raises(TrainingDiverged, match="2 consecutive non-finite") as err:
        bad.fit()
    assert f"the last good snapshot is {snap}" in str(err.value)  # named, since it exists
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


def _snapshots(cfg):
    return sorted(os.listdir(cfg.TRAIN.SNAPSHOT_DIR)) if os.path.isdir(cfg.TRAIN.SNAPSHOT_DIR) else []


def test_divergence_from_scratch_claims_no_snapshot(tmp_path):
    cfg = _cfg(tmp_path, epochs=1)
    cfg.TRAIN.MAX_BAD_STEPS = 2
    with pytest.raises(TrainingDiverged, match="no good snapshot of this run exists") as err:
        _trainer(cfg, poison=True).fit()
    assert "last good snapshot is" not in str(err.value) and _snapshots(cfg) == []


def test_last_epoch_skipping_too_many_steps_fails_without_a_final_snapshot(tmp_path):
    """1 of the epoch's 2 steps has a NaN loss: fewer than MAX_BAD_STEPS in a row, but half the epoch."""
    cfg = _cfg(tmp_path, epochs=1)
    with pytest.raises(TrainingDiverged, match=r"last epoch \(1\) skipped 1 of 2 steps.*MAX_BAD_FRACTION 0\.1.*"
                                               r"checkpoint_e1\.pth not written"):
        _trainer(cfg, poison={0}).fit()
    assert _snapshots(cfg) == []
    cfg.TRAIN.MAX_BAD_FRACTION = 0.5  # "more than": exactly half is still accepted
    trainer = _trainer(cfg, poison={0})
    trainer.fit()
    assert trainer.skipped_steps == 1 and _snapshots(cfg) == ["checkpoint_e1.pth"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e30])
def test_unusable_weights_are_never_snapshotted(tmp_path, value):
    cfg = _cfg(tmp_path, epochs=2)
    trainer = _trainer(cfg)
    trainer._prepare_epoch(0)
    good = trainer.save(1)
    with torch.no_grad():
        trainer.model.kpn_head.kpn0.heatmap.head1[1].bias[0] = value
    problem = r"'kpn_head\.kpn0\.heatmap\.head1\.1\.bias' (holds non-finite|reaches 1e\+30)"
    with pytest.raises(TrainingDiverged, match=problem) as err:
        trainer.save(2)
    assert "checkpoint_e2.pth not written" in str(err.value) and f"the last good snapshot is {good}" in str(err.value)
    assert _snapshots(cfg) == ["checkpoint_e1.pth"]


def test_blown_up_buffer_is_caught_but_large_healthy_bn_variance_is_not(tmp_path):
    cfg = _cfg(tmp_path, epochs=1)
    trainer = _trainer(cfg)
    trainer._prepare_epoch(0)
    var = trainer.model.backbone.bn1.running_var
    var.fill_(2e4)  # raw 0-255 pixels give the first BN variances of this order
    trainer.save(1)
    var.fill_(1e9)
    with pytest.raises(TrainingDiverged, match=r"backbone\.bn1\.running_var' reaches 1e\+09"):
        trainer.save(1)


def test_huge_learning_rate_warns_and_stops_before_a_snapshot(tmp_path, caplog):
    """--opts TRAIN.BASE_LR 1e6: finite but huge losses warn, and the blown-up weights are not snapshotted."""
    cfg = _cfg(tmp_path, epochs=1)
    cfg.TRAIN.SKIP_HUGE_LOSS = False  # the behaviour before the published step rule became the default
    cfg.TRAIN.BASE_LR = cfg.TRAIN.LR.KWARGS.start_lr = 1e6
    cfg.TRAIN.LR.KWARGS.end_lr = 1e5
    with caplog.at_level(logging.WARNING, logger="siamkpn.train"):
        with pytest.raises(TrainingDiverged, match=r"reaches .*MAX_WEIGHT_ABS.*checkpoint_e1\.pth not written"):
            _trainer(cfg).fit()
    assert any("huge loss" in r.getMessage() for r in caplog.records)
    assert any("1 of 2 steps had a loss above TRAIN.HUGE_LOSS" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.ERROR and "not written" in r.getMessage() for r in caplog.records)  # logged
    assert _snapshots(cfg) == []


def _one_step(cfg):
    """A trainer after one step of epoch 0 on its first batch: (trainer, losses or None, weights before)."""
    trainer = _trainer(cfg)
    trainer._prepare_epoch(0)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    return trainer, trainer._step(trainer._to_device(next(iter(trainer.loader)))), before


def test_a_loss_above_huge_loss_is_skipped_counted_and_logged_by_default(tmp_path, caplog):
    """The published rule (pysot's is_valid_number): a finite loss above 1e4 takes no step."""
    cfg = _cfg(tmp_path, epochs=1)
    cfg.TRAIN.HM_WEIGHT = 1e6  # a finite total loss far above TRAIN.HUGE_LOSS
    with caplog.at_level(logging.WARNING, logger="siamkpn.train"):
        trainer, losses, before = _one_step(cfg)
    assert losses is None and trainer.skipped_steps == 1 and trainer.epoch_skipped_huge == 1
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[key]), key  # no optimizer step, BN statistics restored
    assert any("loss above TRAIN.HUGE_LOSS 10000" in r.getMessage() and "step skipped (1 in a row)" in r.getMessage()
               for r in caplog.records)


def test_skip_huge_loss_false_trains_on_a_huge_loss_with_a_warning(tmp_path, caplog):
    cfg = _cfg(tmp_path, epochs=1)
    cfg.TRAIN.HM_WEIGHT = 1e6
    cfg.TRAIN.SKIP_HUGE_LOSS = False
    with caplog.at_level(logging.WARNING, logger="siamkpn.train"):
        trainer, losses, before = _one_step(cfg)
    assert losses["total_loss"] > cfg.TRAIN.HUGE_LOSS and trainer.skipped_steps == 0
    assert trainer.epoch_huge == [losses["total_loss"]]
    head = "kpn_head.kpn0.heatmap.head1.1.bias"
    assert not torch.equal(trainer.model.state_dict()[head], before[head])
    assert any("huge loss" in r.getMessage() for r in caplog.records)


def test_huge_losses_count_towards_max_bad_steps(tmp_path):
    cfg = _cfg(tmp_path, epochs=1)
    cfg.TRAIN.HM_WEIGHT = 1e6
    cfg.TRAIN.MAX_BAD_STEPS = 2
    with pytest.raises(TrainingDiverged, match="2 consecutive non-finite or huge losses.*no good snapshot"):
        _trainer(cfg).fit()
    assert _snapshots(cfg) == []


def test_huge_learning_rate_skips_the_huge_step_and_fails_the_last_epoch(tmp_path, caplog):
    """--opts TRAIN.BASE_LR 1e6 under the published rule: the blown-up step is skipped, and half of the last epoch
    skipped fails the run (TRAIN.MAX_BAD_FRACTION) without a final snapshot."""
    cfg = _cfg(tmp_path, epochs=1)
    cfg.TRAIN.BASE_LR = cfg.TRAIN.LR.KWARGS.start_lr = 1e6
    cfg.TRAIN.LR.KWARGS.end_lr = 1e5
    with caplog.at_level(logging.WARNING, logger="siamkpn.train"):
        with pytest.raises(TrainingDiverged, match=r"last epoch \(1\) skipped 1 of 2 steps for huge losses \(1 above "
                                                   r"TRAIN\.HUGE_LOSS 10000\).*checkpoint_e1\.pth not written"):
            _trainer(cfg).fit()
    assert not any("training may be diverging" in r.getMessage() for r in caplog.records)  # skipped, not trained on
    assert _snapshots(cfg) == []


def test_disk_full_while_saving_names_the_snapshot_and_keeps_the_previous_one(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, epochs=2)
    trainer = _trainer(cfg)
    trainer._prepare_epoch(0)
    previous = open(trainer.save(1), "rb").read()

    def disk_full(obj, f):
        raise OSError(errno.ENOSPC, "No space left on device")  # as torch.save writing to a full disk

    monkeypatch.setattr(torch, "save", disk_full)
    for epoch in (1, 2):  # replacing a snapshot, writing a new one
        with pytest.raises(OSError, match=rf"cannot write checkpoint .*checkpoint_e{epoch}\.pth: No space") as err:
            trainer.save(epoch)
        assert err.value.errno == errno.ENOSPC
    assert _snapshots(cfg) == ["checkpoint_e1.pth"] and temp_files(cfg.TRAIN.SNAPSHOT_DIR) == []
    assert open(os.path.join(cfg.TRAIN.SNAPSHOT_DIR, "checkpoint_e1.pth"), "rb").read() == previous


def test_snapshots_get_the_users_umask_permissions(tmp_path):
    cfg = _cfg(tmp_path, epochs=1)
    trainer = _trainer(cfg)
    trainer._prepare_epoch(0)
    old = os.umask(0o027)
    try:
        path = trainer.save(1)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o640  # not mkstemp's owner-only 0600


def test_start_removes_leftovers_of_interrupted_saves(tmp_path, caplog):
    cfg = _cfg(tmp_path, epochs=1)
    folder = tmp_path / "snapshot"
    folder.mkdir()
    for name in (".checkpoint_e1.pth.k2j3h4.partial", ".tmp_abc123.pth", "checkpoint_e1.pth", "notes.txt"):
        (folder / name).write_bytes(b"x")
    trainer = _trainer(cfg)
    trainer.start_epoch = cfg.TRAIN.EPOCH  # nothing left to train: only the start-up work runs
    with caplog.at_level(logging.INFO, logger="siamkpn.train"):
        trainer.fit()
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_e1.pth", "notes.txt"]
    assert any("removed 2 temporary file(s)" in r.getMessage() and ".tmp_abc123.pth" in r.getMessage()
               for r in caplog.records)


def test_resume_auto_falls_back_to_the_newest_intact_snapshot(tmp_path, caplog):
    cfg = _cfg(tmp_path, epochs=3)
    trainer = _trainer(cfg)
    trainer._prepare_epoch(0)
    first, second = trainer.save(1), trainer.save(2)
    data = open(second, "rb").read()
    with open(second, "wb") as f:
        f.write(data[: len(data) // 2])  # truncated, as by a full disk or an interrupted copy
    resumed = _trainer(cfg)
    with caplog.at_level(logging.WARNING, logger="siamkpn.train"):
        assert resumed.resume_latest() == first
    assert resumed.start_epoch == 1 and resumed.last_snapshot == first
    assert any("skipping unreadable snapshot" in r.getMessage() and second in r.getMessage() for r in caplog.records)
    with open(first, "wb") as f:
        f.write(b"garbage")
    with pytest.raises(CheckpointError, match="no snapshot in .* can be read"):
        _trainer(cfg).resume_latest()
    empty = _cfg(tmp_path / "empty")
    assert _trainer(empty).resume_latest() is None
