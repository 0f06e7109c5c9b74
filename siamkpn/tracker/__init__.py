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


def tracker_from_snapshot(cfg, snapshot: str, device: Optional[Union[str, torch.device]] = None) -> SiamKPNTracker:
    """A tracker on ModelBuilder(cfg) with the weights of `snapshot` on `device` (default: cuda when available).

    The model is prepared for inference (BatchNorm folded, template side cached; TRACK.FAST adds reduced
    precision where the device supports it), see `siamkpn.models.inference`. The snapshot must hold the whole
    model (`load_tracking_checkpoint`): a partial file is a CheckpointError, never a tracker with random heads.
    """
    from siamkpn.models.checkpoint import load_tracking_checkpoint
    from siamkpn.models.inference import prepare_for_inference
    from siamkpn.models.model_builder import ModelBuilder

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = ModelBuilder(cfg)
    load_tracking_checkpoint(model, snapshot)
    return build_tracker(prepare_for_inference(model.eval(), fast=cfg.TRACK.FAST, device=device), cfg)
