"""pysot's per-epoch learning-rate schedules (log, step, multi-step, linear, cos) with warm-up.

A schedule is an array `lr_spaces` with one value per epoch plus its `start_lr`. As in pysot, each
parameter group's lr at epoch e is `lr_spaces[e] * group['initial_lr'] / start_lr`, so groups keep
their ratio to TRAIN.BASE_LR (e.g. the backbone's LAYERS_LR) while following the schedule's shape.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from yacs.config import CfgNode

from toolkit.errors import BadValue, UnknownName

__all__ = ["lr_spaces", "build_schedule", "EpochLR"]


def _log(epochs: int, start_lr: float = 0.03, end_lr: float = 5e-4) -> Tuple[np.ndarray, float]:
    return np.logspace(math.log10(start_lr), math.log10(end_lr), epochs), start_lr


def _step(epochs: int, start_lr: Optional[float] = 0.01, end_lr: Optional[float] = None, step: int = 10,
          mult: float = 0.1) -> Tuple[np.ndarray, float]:
    if end_lr is not None:
        if start_lr is None:
            start_lr = end_lr / (mult ** (epochs // step))
        else:
            mult = math.pow(end_lr / start_lr, 1.0 / (epochs // step))
    return start_lr * (mult ** (np.arange(epochs) // step)), start_lr


def _multi_step(epochs: int, start_lr: Optional[float] = 0.01, end_lr: Optional[float] = None,
                steps: Sequence[int] = (10, 20, 30, 40), mult: float = 0.5) -> Tuple[np.ndarray, float]:
    if end_lr is not None:
        if start_lr is None:
            start_lr = end_lr / (mult ** len(steps))
        else:
            mult = math.pow(end_lr / start_lr, 1.0 / len(steps))
    lrs, lr = [], start_lr
    for i in range(epochs):
        lrs.append(lr)
        if i in steps:
            lr *= mult
    return np.array(lrs, dtype=np.float64), start_lr


def _linear(epochs: int, start_lr: float = 0.01, end_lr: float = 0.005) -> Tuple[np.ndarray, float]:
    return np.linspace(start_lr, end_lr, epochs), start_lr


def _cos(epochs: int, start_lr: float = 0.01, end_lr: float = 0.0001) -> Tuple[np.ndarray, float]:
    index = np.arange(epochs).astype(np.float32)
    return end_lr + (start_lr - end_lr) * (1.0 + np.cos(index * np.pi / epochs)) * 0.5, start_lr


_SCHEDULES = {"log": _log, "step": _step, "multi-step": _multi_step, "linear": _linear, "cos": _cos}


def lr_spaces(kind: str, epochs: int, **kwargs) -> Tuple[np.ndarray, float]:
    """(lr per epoch, start_lr) of one schedule type."""
    if kind not in _SCHEDULES:
        raise UnknownName(f"unknown TRAIN.LR TYPE '{kind}'; valid: {', '.join(_SCHEDULES)}")
    return _SCHEDULES[kind](epochs, **kwargs)


def build_schedule(train_cfg: CfgNode) -> Tuple[np.ndarray, float]:
    """The whole run's schedule: warm-up epochs (if enabled) followed by the main schedule."""
    epochs = train_cfg.EPOCH
    main_kwargs = dict(train_cfg.LR.KWARGS)
    if not train_cfg.LR_WARMUP.WARMUP:
        return lr_spaces(train_cfg.LR.TYPE, epochs, **main_kwargs)
    warm_epochs = train_cfg.LR_WARMUP.EPOCH
    if not 0 <= warm_epochs < epochs:
        raise BadValue(f"TRAIN.LR_WARMUP.EPOCH ({warm_epochs}) must be below TRAIN.EPOCH ({epochs}); "
                         "shorten the warm-up or set TRAIN.LR_WARMUP.WARMUP False")
    warm, _ = lr_spaces(train_cfg.LR_WARMUP.TYPE, warm_epochs, **dict(train_cfg.LR_WARMUP.KWARGS))
    main, _ = lr_spaces(train_cfg.LR.TYPE, epochs - warm_epochs, **main_kwargs)
    return np.concatenate([warm, main]), float(main[0])


class EpochLR:
    """Sets every group's lr for an epoch; stateless apart from the schedule, so resuming needs only the epoch."""

    def __init__(self, train_cfg: CfgNode) -> None:
        self.spaces, self.start_lr = build_schedule(train_cfg)

    def lr_at(self, epoch: int) -> float:
        return float(self.spaces[min(epoch, len(self.spaces) - 1)])

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = self.lr_at(epoch) * group["initial_lr"] / self.start_lr
