"""Every published config builds a model whose state_dict matches the released checkpoints' key schema."""
from __future__ import annotations

import pytest
import torch

from conftest import REPO, SHARED, require
from siamkpn.config import load_cfg
from siamkpn.models.model_builder import ModelBuilder

PUBLISHED = ["siamkpn_r50_stack1", "siamkpn_r50_stack1_otb", "siamkpn_r50_stack2_difstd",
             "siamkpn_r50_stack2_difstd_otb", "siamkpn_r50_stack3_difstd", "siamkpn_r50_stack3_difstd_otb",
             "siamkpn_r50_stack3_otb"]


def _schema(name):
    path = require(SHARED / "spec" / "checkpoint-keys" / f"{name}.txt")
    rows = []
    for line in path.read_text().splitlines():
        key, shape, dtype = line.split("\t")
        rows.append((key, () if shape == "scalar" else tuple(int(s) for s in shape.split("x")), dtype))
    return rows


@pytest.mark.parametrize("name", PUBLISHED)
def test_state_dict_matches_published_schema(name):
    cfg = load_cfg(str(REPO / "experiments" / name / "config.yaml"))
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = ModelBuilder(cfg)
    ours = [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]
    assert ours == _schema(name)


@pytest.mark.parametrize("name", PUBLISHED)
def test_shipped_config_equals_published_file(name):
    """experiments/<name>/config.yaml carries the published names and values."""
    published = load_cfg(str(require(SHARED / "spec" / "published-configs" / name / "config.yaml")))
    ours = load_cfg(str(REPO / "experiments" / name / "config.yaml"))
    assert ours == published


def test_stack3_vot_hyper_parameters():
    cfg = load_cfg(str(REPO / "experiments" / "siamkpn_r50_stack3_difstd" / "config.yaml"))
    assert (cfg.TRACK.PENALTY_K, cfg.TRACK.WINDOW_INFLUENCE, cfg.TRACK.LR) == (0.1, 0.54, 0.59)
    assert cfg.TRAIN.STACK == 3 and cfg.TRAIN.DIF_STD and cfg.TRAIN.INTER_SUPER


def test_otb_configs_use_gray_and_load_update_lr():
    for name in ("siamkpn_r50_stack3_difstd_otb", "siamkpn_r50_stack3_otb"):
        cfg = load_cfg(str(REPO / "experiments" / name / "config.yaml"))
        assert cfg.DATASET.GRAY == 0.2
        assert cfg.TRACK.UPDATE_LR == pytest.approx(0.0001)
