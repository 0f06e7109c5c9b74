"""The public Python API: one call from a config and a snapshot to a tracker, as every command line builds it.

    import siamkpn

    tracker = siamkpn.load_tracker("experiments/siamkpn_quickstart/config.yaml", "snapshot/checkpoint_e20.pth")
    tracker.init(first_frame, (x, y, w, h))      # BGR uint8 image (as cv2.imread gives), 0-based box
    out = tracker.track(next_frame)              # {"bbox": [x, y, w, h], "best_score": float}

The boxes are those ``siamkpn-test`` writes for the same frames and initial box, with either backend.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Protocol, Sequence, Union

import numpy as np
from yacs.config import CfgNode

from siamkpn.config import check_cfg, load_cfg
from siamkpn.models.backends import backend_for, backend_holding
from siamkpn.tracker import build_tracker

__all__ = ["Tracker", "load_tracker"]


class Tracker(Protocol):
    """What ``load_tracker`` returns: one target, initialised once, then tracked frame by frame."""

    model: Any  # the inference model: PyTorch prepared for inference, or ONNX Runtime sessions

    def init(self, img: np.ndarray, bbox: Sequence[float]) -> None:
        """Start tracking the box [x, y, w, h] (0-based pixels) in the BGR uint8 image `img`."""

    def track(self, img: np.ndarray) -> Dict[str, Any]:
        """Locate the target in the next BGR frame: {'bbox': [x, y, w, h], 'best_score': float}."""


def load_tracker(config: Union[str, os.PathLike, CfgNode], snapshot: Union[str, os.PathLike], device: str = "auto",
                 fast: bool = False, opts: Optional[Sequence[str]] = None) -> Tracker:
    """A tracker on `snapshot`'s model, configured by `config`.

    Args:
        config: the experiment yaml (as ``--config``), or a CfgNode (``siamkpn.config.load_cfg``).
        snapshot: a .pth file (backend torch) or a folder ``siamkpn-export-onnx`` wrote (backend onnx): the
            backend follows the snapshot. A yaml that sets TRACK.BACKEND (or `opts` that do) must name the same
            backend; a CfgNode's TRACK.BACKEND is taken as set.
        device: ``auto`` (CUDA when available; the CPU for onnx), ``cpu``, ``cuda`` or ``cuda:N``.
        fast: fast mode (TRACK.FAST; README, Performance); False keeps the config's TRACK.FAST.
        opts: config overrides as KEY VALUE pairs, as ``--opts`` (e.g. ``["TRACK.LR", "0.4"]``).

    A snapshot, device or config the backend cannot run raises a ``toolkit.errors.BadInput`` subclass whose message
    says what to do.
    """
    snapshot = os.fspath(snapshot)
    cfg = _config(config, snapshot, fast, list(opts or []))
    backend = backend_for(cfg)
    backend.check(snapshot, device)
    return build_tracker(backend.load(cfg, snapshot, device), cfg)


def _config(config: Union[str, os.PathLike, CfgNode], snapshot: str, fast: bool, opts: list) -> CfgNode:
    """The frozen config: `config` with `opts`, fast mode if asked, and the snapshot's backend unless it names one."""
    opts = opts + (["TRACK.FAST", "True"] if fast else [])
    if isinstance(config, CfgNode):
        cfg = config.clone()
        cfg.defrost()
        cfg.merge_from_list(opts)
        check_cfg(cfg, "", opts[0::2])
        cfg.freeze()
        return cfg
    path = os.fspath(config)
    cfg = load_cfg(path, opts)
    if not _names_backend(path, opts):
        cfg.TRACK.BACKEND = backend_holding(snapshot).name
    cfg.freeze()
    return cfg


def _names_backend(path: str, opts: Sequence[str]) -> bool:
    """True when the yaml at `path` or `opts` set TRACK.BACKEND (then it must agree with the snapshot)."""
    import yaml

    with open(path, encoding="utf-8") as f:
        loaded = yaml.safe_load(f) or {}
    return "TRACK.BACKEND" in opts[0::2] or "BACKEND" in (loaded.get("TRACK") or {})
