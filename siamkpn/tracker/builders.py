"""Trackers by cfg.TRACK.TYPE: the registries and their builders (imports torch)."""
from __future__ import annotations

from siamkpn.tracker.siamkpn_tracker import BatchSiamKPNTracker, SiamKPNTracker, video_batch_tracker
from siamkpn.utils.registry import Registry

__all__ = ["TRACKERS", "VIDEO_BATCH_TRACKERS", "build_tracker", "build_video_batch_tracker"]

TRACKERS = Registry("tracker", {"SiamKPNTracker": SiamKPNTracker})
VIDEO_BATCH_TRACKERS = Registry("batched-video tracker", {"SiamKPNTracker": video_batch_tracker})


def build_tracker(model, cfg) -> SiamKPNTracker:
    """The tracker named by cfg.TRACK.TYPE around `model` (KeyError listing the valid names if unknown)."""
    return TRACKERS.build(cfg.TRACK.TYPE, model, cfg)


def build_video_batch_tracker(model, cfg, k: int) -> BatchSiamKPNTracker:
    """K lanes of cfg.TRACK.TYPE's tracker around `model` (e.g. ``load_tracker(...).model``: loaded once), each
    lane its own video and template: ``init_lanes_images`` / ``track_lanes_images``."""
    return VIDEO_BATCH_TRACKERS.build(cfg.TRACK.TYPE, model, cfg, k)
