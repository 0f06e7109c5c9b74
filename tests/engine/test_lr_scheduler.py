"""pysot's learning-rate schedules, with warm-up, and the per-group lr ratio."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from siamkpn.config import get_cfg
from siamkpn.engine.lr_scheduler import EpochLR, build_schedule, lr_spaces


def test_each_schedule_shape_and_end_points():
    log, start = lr_spaces("log", 15, start_lr=0.01, end_lr=0.0001)
    assert start == 0.01 and log[0] == pytest.approx(0.01) and log[-1] == pytest.approx(0.0001)
    assert np.allclose(np.diff(np.log10(log)), -2 / 14)
    step, _ = lr_spaces("step", 6, start_lr=0.001, end_lr=0.002, step=1)
    assert step[-1] == pytest.approx(0.001 * 2 ** (5 / 6)) and np.all(np.diff(step) > 0)
    multi, _ = lr_spaces("multi-step", 6, start_lr=0.1, steps=[1, 3], mult=0.5)
    assert list(multi) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    lin, _ = lr_spaces("linear", 5, start_lr=0.5, end_lr=0.1)
    assert list(lin) == pytest.approx([0.5, 0.4, 0.3, 0.2, 0.1])
    cos, _ = lr_spaces("cos", 4, start_lr=1.0, end_lr=0.0)
    expected = [0.5 * (1 + math.cos(i * math.pi / 4)) for i in range(4)]
    assert list(cos) == pytest.approx(expected)
    with pytest.raises(KeyError, match="valid: log"):
        lr_spaces("exp", 3)


def test_warmup_then_main_and_group_ratio():
    cfg = get_cfg()
    cfg.TRAIN.EPOCH = 8
    cfg.TRAIN.BASE_LR = 0.0001
    cfg.TRAIN.LR.TYPE = "log"
    cfg.TRAIN.LR.KWARGS.start_lr = 0.0002
    cfg.TRAIN.LR.KWARGS.end_lr = 0.00005
    cfg.TRAIN.LR_WARMUP.EPOCH = 3
    cfg.TRAIN.LR_WARMUP.KWARGS.start_lr = 0.0005
    cfg.TRAIN.LR_WARMUP.KWARGS.end_lr = 0.0002
    cfg.TRAIN.LR_WARMUP.KWARGS.step = 1
    spaces, start = build_schedule(cfg.TRAIN)
    assert len(spaces) == 8 and start == pytest.approx(0.0002)
    assert spaces[0] == pytest.approx(0.0005) and spaces[3] == pytest.approx(0.0002)
    assert spaces[-1] == pytest.approx(5e-5)
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr": 0.1 * cfg.TRAIN.BASE_LR}, {"params": [p2], "lr": cfg.TRAIN.BASE_LR}])
    sched = EpochLR(cfg.TRAIN)
    for epoch in (0, 4, 7):
        sched.apply(opt, epoch)
        # pysot: lr = schedule(epoch) * initial_lr / start_lr, so groups keep their 1:10 ratio
        assert opt.param_groups[1]["lr"] == pytest.approx(spaces[epoch] * 0.0001 / 0.0002)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * opt.param_groups[1]["lr"])
