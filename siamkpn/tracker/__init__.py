"""Trackers, by cfg.TRACK.TYPE: `build_tracker(model, cfg)`, or `tracker_from_snapshot(cfg, path)`."""
from __future__ import annotations

from typing import Optional, Union

import torch

from siamkpn.tracker.siamkpn_tracker import BatchSiamKPNTracker, SiamKPNTracker
from siamkpn.utils.registry import Registry

__all__ = ["TRACKERS", "build_tracker", "tracker_from_snapshot", "SiamKPNTracker", "BatchSiamKPNTracker"]

TRACKERS = Registry("tracker", {"SiamKPNTracker": SiamKPNTracker})


def build_tracker(model, cfg) -> SiamKPNTracker:
    """The tracker named by cfg.TRACK.TYPE around `model` (KeyError listing the valid names if unknown)."""
    return TRACKERS.build(cfg.TRACK.TYPE, model, cfg)


def tracker_from_snapshot(cfg, snapshot: str, device: Optional[Union[str, torch.device]] = None,
                          backend: Optional[str] = None) -> SiamKPNTracker:
    """A tracker on the model of `snapshot` for `cfg` on `device` (default: cuda when available).

    `backend` ('torch' or 'onnx', default cfg.TRACK.BACKEND): torch prepares ModelBuilder(cfg) with the .pth
    weights for inference (BatchNorm folded, template side cached; TRACK.FAST adds reduced precision where
    the device supports it); onnx runs the export folder `snapshot` under ONNX Runtime. See
    `siamkpn.models.backends.load_tracker_model`. A .pth must hold the whole model (`load_tracking_checkpoint`):
    a partial file is a CheckpointError, never a tracker with random heads.
    """
    from siamkpn.models.backends import load_tracker_model

    return build_tracker(load_tracker_model(cfg, snapshot, device, backend), cfg)
