"""Trackers, by cfg.TRACK.TYPE: `build_tracker(model, cfg)` (from a snapshot: `siamkpn.load_tracker`)."""
from __future__ import annotations

from siamkpn.tracker.siamkpn_tracker import BatchSiamKPNTracker, SiamKPNTracker
from siamkpn.utils.registry import Registry

__all__ = ["TRACKERS", "build_tracker", "SiamKPNTracker", "BatchSiamKPNTracker"]

TRACKERS = Registry("tracker", {"SiamKPNTracker": SiamKPNTracker})


def build_tracker(model, cfg) -> SiamKPNTracker:
    """The tracker named by cfg.TRACK.TYPE around `model` (KeyError listing the valid names if unknown)."""
    return TRACKERS.build(cfg.TRACK.TYPE, model, cfg)

