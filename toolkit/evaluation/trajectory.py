"""Reset-protocol (VOT) trajectories: markers, failures, burn-in, and one tracker's overlaps on a dataset.

A trajectory is a list of result lines: ``[1]`` (initialised), ``[2]`` (failure), ``[0]`` (skipped) or a
region (4-value box, 8-value polygon). Overlaps of marker lines are unknown (NaN).
"""
from __future__ import annotations

import weakref
from typing import Dict, List, NamedTuple, Sequence

import numpy as np

from toolkit.evaluation.common import load_prediction
from toolkit.region import vot_overlaps_multi

__all__ = ["INIT", "FAILURE", "SKIPPED", "marker_codes", "failure_frames", "burnin_mask", "RunOverlaps",
           "tracker_overlaps"]

INIT, FAILURE, SKIPPED = 1, 2, 0
_NOT_A_MARKER = -1.0


def marker_codes(traj: Sequence[Sequence[float]]) -> np.ndarray:
    """Per frame: the value of a one-value (marker) line, else -1 (a region)."""
    return np.array([x[0] if len(x) == 1 else _NOT_A_MARKER for x in traj], np.float64)


def failure_frames(codes: np.ndarray) -> np.ndarray:
    """0-based frames holding a failure marker ``2``."""
    return np.flatnonzero(np.asarray(codes) == FAILURE)


def burnin_mask(codes: np.ndarray, burnin: int) -> np.ndarray:
    """True for each initialisation frame and the burnin-1 frames after it (not scored for accuracy)."""
    codes = np.asarray(codes)
    n = len(codes)
    if burnin <= 0:
        return np.zeros(n, bool)
    starts = np.flatnonzero(codes == INIT)
    edges = np.zeros(n + burnin + 1, np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + burnin, -1)
    return np.cumsum(edges)[:n] > 0


class RunOverlaps(NamedTuple):
    """One run (repetition) of a tracker on a video: markers and per-frame overlaps under both bounds."""

    codes: np.ndarray     # marker per frame (-1 = region), length min(result, ground truth)
    overlaps_wh: np.ndarray   # float32, bounds (W, H): accuracy, robustness, long-term
    overlaps_eao: np.ndarray  # float32, bounds (W-1, H-1): EAO


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def tracker_overlaps(dataset, tracker: str) -> Dict[str, List[RunOverlaps]]:
    """{video: [run, ...]} for a reset-protocol tracker; every frame of the dataset in one vectorised call.

    Cached per dataset object, so the accuracy/robustness and EAO benchmarks share one computation.
    Videos without a result file are left out (with a warning).
    """
    cache = _CACHE.setdefault(dataset, {})
    # results stored on the videos may be replaced between calls: the entry remembers (and keeps) what it read
    key = (getattr(dataset, "tracker_path", None), *(v.pred_trajs.get(tracker) for v in dataset))
    if tracker in cache and len(cache[tracker][0]) == len(key) and all(
            a is b for a, b in zip(cache[tracker][0], key)):
        return cache[tracker][1]
    preds, gts, wh, spans = [], [], [], []
    for video in dataset:
        runs = load_prediction(dataset, video, tracker)
        if runs is None:
            continue
        for traj in runs:
            n = min(len(traj), len(video.gt_traj))
            spans.append((video.name, len(preds), n))
            preds.extend(traj[:n])
            gts.extend(video.gt_traj[:n])
            wh.append(np.broadcast_to(np.array([video.width, video.height], np.float64), (n, 2)))
    wh_all = np.concatenate(wh) if wh else np.zeros((0, 2))
    ov_wh, ov_eao = vot_overlaps_multi(preds, gts, [wh_all, wh_all - 1])
    codes = marker_codes(preds)
    out: Dict[str, List[RunOverlaps]] = {}
    for name, start, n in spans:
        sl = slice(start, start + n)
        out.setdefault(name, []).append(RunOverlaps(codes[sl], ov_wh[sl], ov_eao[sl]))
    cache[tracker] = (key, out)
    return out
