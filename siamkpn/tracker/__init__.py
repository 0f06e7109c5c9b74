"""Trackers, by cfg.TRACK.TYPE: `build_tracker(model, cfg)` (from a snapshot: `siamkpn.load_tracker`), and
`build_video_batch_tracker(model, cfg, k)`: K videos at once on the same model object (``toolkit.lanes``).

The names are imported on first use (``siamkpn.tracker.builders``), so the torch-free modules of this package
(``provenance``: a result folder's record) do not load torch: a ``siamkpn-test --workers N`` parent on CPU never
imports it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers and editors see the names; at run time they load on first use
    from siamkpn.tracker.builders import (
        TRACKERS,
        VIDEO_BATCH_TRACKERS,
        BatchSiamKPNTracker,
        SiamKPNTracker,
        build_tracker,
        build_video_batch_tracker,
    )

__all__ = ["TRACKERS", "VIDEO_BATCH_TRACKERS", "build_tracker", "build_video_batch_tracker", "SiamKPNTracker",
           "BatchSiamKPNTracker"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from siamkpn.tracker import builders

        return getattr(builders, name)  # the tracker classes are imported there too
    raise AttributeError(f"module 'siamkpn.tracker' has no attribute {name!r}")
