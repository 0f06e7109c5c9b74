"""Checkpoint loading behaves as a user expects for every shape of file people actually have."""
from __future__ import annotations

import logging

import pytest
import torch

from helpers import tiny_cfg
from siamkpn.models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_pretrained_backbone,
    load_tracking_checkpoint,
    save_checkpoint,
)
from siamkpn.models.model_builder import ModelBuilder


@pytest.fixture()
def models():
    torch.manual_seed(0)
    src = ModelBuilder(tiny_cfg()).eval()
    torch.manual_seed(1)
    dst = ModelBuilder(tiny_cfg()).eval()
    return src, dst


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "module_prefix", "snapshot"])
def test_wrappers_and_prefix_load_exactly(models, tmp_path, wrap):
    src, dst = models
    state = src.state_dict()
    obj = {"bare": state, "state_dict": {"state_dict": state},
           "module_prefix": {"state_dict": {"module." + k: v for k, v in state.items()}},
           "snapshot": {"epoch": 3, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}}[wrap]
    torch.save(obj, tmp_path / "c.pth")
    assert not _same(src, dst)
    report = load_checkpoint(dst, str(tmp_path / "c.pth"), strict=True)
    assert _same(src, dst) and not report.missing and not report.unexpected


def test_float16_weights_load_into_float32_model(models, tmp_path):
    src, dst = models
    torch.save({"state_dict": {k: v.half() if v.is_floating_point() else v for k, v in src.state_dict().items()}},
               tmp_path / "h.pth")
    load_checkpoint(dst, str(tmp_path / "h.pth"))
    w = dst.state_dict()["backbone.conv1.weight"]
    assert w.dtype == torch.float32
    assert torch.equal(w, src.state_dict()["backbone.conv1.weight"].half().float())


def test_missing_and_unexpected_keys_are_reported(models, tmp_path, caplog):
    src, dst = models
    state = dict(src.state_dict())
    state.pop("kpn_head.heatmap_weight")
    state["kpn_head.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "c.pth")
    with caplog.at_level(logging.WARNING):
        report = load_checkpoint(dst, str(tmp_path / "c.pth"))
    assert report.missing == ["kpn_head.heatmap_weight"]
    assert report.unexpected == ["kpn_head.extra.weight"]
    assert "kpn_head.heatmap_weight" in caplog.text and "kpn_head.extra.weight" in caplog.text
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(dst, str(tmp_path / "c.pth"), strict=True)


def test_shape_mismatch_names_the_key(models, tmp_path):
    src, dst = models
    state = dict(src.state_dict())
    state["neck.downsample2.downsample.0.weight"] = torch.zeros(8, 128, 1, 1)
    torch.save(state, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=r"neck\.downsample2\.downsample\.0\.weight.*\(8, 128, 1, 1\)"):
        load_checkpoint(dst, str(tmp_path / "c.pth"))


def test_truncated_and_foreign_files_fail_clearly(models, tmp_path):
    src, dst = models
    torch.save(src.state_dict(), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "trunc.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pth").write_text("this is not a checkpoint\n")
    torch.save({"lr": 0.1, "epoch": 3}, tmp_path / "nostate.pth")
    torch.save({"other.weight": torch.zeros(3)}, tmp_path / "foreign.pth")
    for name, pattern in [("trunc.pth", "cannot read checkpoint"), ("text.pth", "cannot read checkpoint"),
                          ("nostate.pth", "holds no state dict"), ("foreign.pth", "no parameter"),
                          ("absent.pth", "not found")]:
        with pytest.raises(CheckpointError, match=pattern) as err:
            load_checkpoint(dst, str(tmp_path / name))
        assert name in str(err.value)


def test_arbitrary_pickles_are_refused(models, tmp_path):
    """weights_only=True: a checkpoint cannot run code when loaded."""
    _, dst = models
    torch.save({"state_dict": {"x": torch.zeros(1)}, "obj": pytest.approx(1.0)}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(dst, str(tmp_path / "evil.pth"))


def test_pysot_backbone_file_loads_and_reports_classifier(models, tmp_path):
    """pysot's resnet50.model layout: a bare backbone state dict with torchvision names plus fc.*."""
    src, dst = models
    state = dict(src.backbone.state_dict())
    state["fc.weight"] = torch.zeros(1000, 512)
    state["fc.bias"] = torch.zeros(1000)
    torch.save(state, tmp_path / "resnet.model")
    report = load_pretrained_backbone(dst.backbone, str(tmp_path / "resnet.model"))
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    assert all(torch.equal(v, src.backbone.state_dict()[k]) for k, v in dst.backbone.state_dict().items())


def test_save_is_atomic(models, tmp_path, monkeypatch):
    src, _ = models
    target = tmp_path / "snap" / "checkpoint_e1.pth"
    save_checkpoint({"epoch": 1, "state_dict": src.state_dict()}, str(target))
    good = target.read_bytes()

    def broken_save(obj, f):  # save_checkpoint hands torch.save the open temporary file
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2}, str(target))
    assert target.read_bytes() == good
    assert sorted(p.name for p in target.parent.iterdir()) == ["checkpoint_e1.pth"]


def test_tracking_load_needs_the_whole_model(models, tmp_path):
    """Testing with a backbone-only file used to warn and track with random neck and heads."""
    src, dst = models
    torch.save({k: v for k, v in src.state_dict().items() if k.startswith("backbone.")}, tmp_path / "bb.pth")
    with pytest.raises(CheckpointError) as err:
        load_tracking_checkpoint(dst, str(tmp_path / "bb.pth"))
    text = str(err.value)
    assert "bb.pth" in text and "neck.downsample2.downsample.0.weight" in text and "TRAIN.STACK" in text
    assert not _same(src, dst)  # nothing half-loaded


def test_tracking_load_refuses_another_stack_count(tmp_path):
    """A 3-stage checkpoint holds every key of a 2-stage model; loading it would drop the last stage."""
    torch.manual_seed(0)
    torch.save(ModelBuilder(tiny_cfg(stack=3)).state_dict(), tmp_path / "s3.pth")
    dst = ModelBuilder(tiny_cfg(stack=2))
    assert not load_checkpoint(dst, str(tmp_path / "s3.pth")).missing  # the lenient loader sees no gap
    with pytest.raises(CheckpointError, match=r"s3\.pth holds \d+ keys this model's parts lack.*kpn_head\."):
        load_tracking_checkpoint(dst, str(tmp_path / "s3.pth"))


def test_tracking_load_warns_about_keys_outside_the_model(models, tmp_path, caplog):
    src, dst = models
    state = dict(src.state_dict())
    state["ema.step"] = torch.zeros(1)  # not part of backbone/neck/kpn_head: never read by the tracker
    torch.save({"state_dict": state}, tmp_path / "c.pth")
    with caplog.at_level(logging.WARNING):
        report = load_tracking_checkpoint(dst, str(tmp_path / "c.pth"))
    assert report.unexpected == ["ema.step"] and "ema.step" in caplog.text
    assert _same(src, dst)
