"""SiamKPN: keypoint-based Siamese tracking. ``siamkpn.load_tracker(config, snapshot)`` builds a tracker
(``siamkpn.api``); it is imported on first use, so ``import siamkpn`` stays free of torch."""
from __future__ import annotations

from typing import Any

__all__ = ["load_tracker"]


def __getattr__(name: str) -> Any:
    if name == "load_tracker":
        from siamkpn.api import load_tracker

        return load_tracker
    raise AttributeError(f"module 'siamkpn' has no attribute {name!r}")
