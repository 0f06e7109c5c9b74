"""The tracking loops every caller shares: one-pass (OPE), VOT reset-based and long-term.

A tracker is anything with ``init(img, [x, y, w, h])`` and ``track(img) -> {'bbox': [x, y, w, h],
'best_score': float, ...}``. The loops are written once, for a *batch tracker* that runs K lanes
(e.g. K hyper-parameter configurations) in lockstep over one video, sharing each frame read:
``init_lanes(img, {lane: box})`` and ``track_lanes(img, [lanes]) -> {lane: output}``. A single
tracker runs as the one-lane case through :class:`SingleLane`, so both give identical lines.

The loops follow the published test script: the init box is the ground truth turned into the
axis-aligned box of :func:`toolkit.boxes.init_box_from_gt`; VOT failures are frames whose
region-library overlap with the ground-truth polygon (bounds = image size) is 0, followed by
``skip - 1`` skipped frames and a re-initialisation ``skip`` frames after the failure.
Per-frame times cover the tracker calls (and the overlap test), not the image read; in a batch a
call's time is shared equally among the lanes it served.

Inputs that are tracked as given but are likely wrong raise a :class:`TrackingInputWarning` naming the video,
the frame and its file, once per video for each kind: an init box (first frame or a VOT re-initialisation)
with no overlap with the image, a frame whose size differs from the video's first frame.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

import numpy as np

from toolkit.boxes import init_box_from_gt, xywh_to_vot_polygon
from toolkit.region import vot_overlap

__all__ = [
    "ProtocolResult",
    "SingleLane",
    "TrackingInputWarning",
    "run_ope",
    "run_ope_batch",
    "run_longterm",
    "run_longterm_batch",
    "run_vot_reset",
    "run_vot_reset_batch",
    "run_protocol",
    "run_protocol_batch",
]

Progress = Optional[Callable[[int], Any]]


class Tracker(Protocol):
    def init(self, img: np.ndarray, box: list[float]) -> Any: ...
    def track(self, img: np.ndarray) -> Mapping[str, Any]: ...


class BatchTracker(Protocol):
    def init_lanes(self, img: np.ndarray, boxes: dict[int, list[float]]) -> Any: ...
    def track_lanes(self, img: np.ndarray, lanes: list[int]) -> Mapping[int, Mapping[str, Any]]: ...


@dataclass
class ProtocolResult:
    """One run over one video: per-frame lines (boxes or VOT markers), scores and seconds.

    ``boxes[i]`` is a list of floats, or an int marker (1 init, 2 failure, 0 skipped) for VOT, or ``[1]``
    on the first long-term frame; ``scores[i]`` is None where no tracking output exists.
    """

    boxes: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    times: list = field(default_factory=list)
    lost: int = 0


class SingleLane:
    """Adapter running one ordinary tracker as a one-lane batch tracker."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker

    def init_lanes(self, img: np.ndarray, boxes: dict[int, list[float]]) -> None:
        for box in boxes.values():
            self.tracker.init(img, box)

    def track_lanes(self, img: np.ndarray, lanes: list[int]) -> dict[int, Mapping[str, Any]]:
        return {lane: self.tracker.track(img) for lane in lanes}


class TrackingInputWarning(UserWarning):
    """An input tracked as given that is likely wrong (an init box outside the image, frames of other sizes)."""


class _InputCheck:
    """Warns about suspicious inputs of one video, once per kind (not once per frame); results are unchanged."""

    def __init__(self, video: Any) -> None:
        self.video, self.first_size, self.warned = video, None, set()

    def _warn(self, kind: str, idx: int, text: str) -> None:
        if kind in self.warned:
            return
        self.warned.add(kind)
        name = getattr(self.video, "name", None)
        where = f"video {name!r} frame {idx}" if name is not None else f"frame {idx}"
        files = getattr(self.video, "img_names", None)
        if files is not None and idx < len(files):
            where += f" ({files[idx]})"
        warnings.warn(f"{where}: {text}; tracked as given", TrackingInputWarning, stacklevel=4)

    def frame(self, idx: int, img: np.ndarray) -> None:
        """Frames of one video should all have the size of its first frame."""
        size = (int(img.shape[1]), int(img.shape[0]))
        if self.first_size is None:
            self.first_size = size
        elif size != self.first_size:
            self._warn("size", idx, f"a {size[0]}x{size[1]} image in a video whose first frame is "
                                    f"{self.first_size[0]}x{self.first_size[1]}")

    def init_box(self, idx: int, box: Sequence[float], img: np.ndarray) -> None:
        """An init box should overlap the image (a box wholly outside it is a wrong ground truth or frame)."""
        x, y, w, h = (float(v) for v in box)
        width, height = img.shape[1], img.shape[0]
        if x + w <= 0 or y + h <= 0 or x >= width or y >= height:
            self._warn("init", idx, f"the init box [{x:g}, {y:g}, {w:g}, {h:g}] lies entirely outside the "
                                    f"{width}x{height} image")


def _frame(video: Any, idx: int) -> np.ndarray:
    load = getattr(video, "load_frame", None)
    return load(idx) if load is not None else video[idx][0]


def _box(output: Mapping[str, Any], lane: int) -> list[float]:
    try:
        box = [float(v) for v in output["bbox"]]
    except (KeyError, TypeError) as e:
        raise ValueError(f"lane {lane}: tracker output needs a 'bbox' sequence, got {output!r}") from e
    if len(box) not in (4, 8):
        raise ValueError(f"lane {lane}: 'bbox' must have 4 (or 8) values, got {box}")
    return box


def _score(output: Mapping[str, Any]) -> Optional[float]:
    s = output.get("best_score")
    return None if s is None else float(s)


def _check_k(k: int) -> list[int]:
    if k < 1:
        raise ValueError(f"need at least one lane, got k={k}")
    return list(range(k))


def _one_pass(batch: BatchTracker, video: Any, k: int, progress: Progress, first_line: Optional[list]
              ) -> list[ProtocolResult]:
    lanes = _check_k(k)
    results = [ProtocolResult() for _ in lanes]
    gts = video.gt_traj
    check = _InputCheck(video)
    for idx in range(len(video)):
        img = _frame(video, idx)
        check.frame(idx, img)
        if idx == 0:
            box = init_box_from_gt(gts[0])
            check.init_box(idx, box, img)  # before the clock: a warning may print
        tic = time.perf_counter()
        if idx == 0:
            batch.init_lanes(img, {lane: list(box) for lane in lanes})
            outputs = None
        else:
            outputs = batch.track_lanes(img, lanes)
        share = (time.perf_counter() - tic) / k
        for lane, res in zip(lanes, results):
            if outputs is None:
                res.boxes.append(list(first_line) if first_line is not None else list(box))
                res.scores.append(None)
            else:
                res.boxes.append(_box(outputs[lane], lane))
                res.scores.append(_score(outputs[lane]))
            res.times.append(share)
        if progress is not None:
            progress(1)
    return results


def run_ope_batch(batch_tracker: BatchTracker, video: Any, k: int, progress: Progress = None
                  ) -> list[ProtocolResult]:
    """One-pass protocol for K lanes in lockstep; the first line of each lane is the init box."""
    return _one_pass(batch_tracker, video, k, progress, first_line=None)


def run_ope(tracker: Tracker, video: Any, progress: Progress = None) -> ProtocolResult:
    """One-pass protocol (OTB, UAV, LaSOT, GOT-10k, NFS, TrackingNet) for one tracker."""
    return run_ope_batch(SingleLane(tracker), video, 1, progress)[0]


def run_longterm_batch(batch_tracker: BatchTracker, video: Any, k: int, progress: Progress = None
                       ) -> list[ProtocolResult]:
    """Long-term protocol (VOT2018-LT) for K lanes: like one-pass, but the first line is ``[1]``."""
    return _one_pass(batch_tracker, video, k, progress, first_line=[1])


def run_longterm(tracker: Tracker, video: Any, progress: Progress = None) -> ProtocolResult:
    """Long-term protocol for one tracker: boxes (``[1]`` first), confidences and per-frame times."""
    return run_longterm_batch(SingleLane(tracker), video, 1, progress)[0]


def _gt_polygon(gt: Sequence[float]) -> list[float]:
    return [float(v) for v in (xywh_to_vot_polygon(gt) if len(gt) == 4 else gt)]


def run_vot_reset_batch(batch_tracker: BatchTracker, video: Any, k: int, skip: int = 5,
                        progress: Progress = None) -> list[ProtocolResult]:
    """VOT reset-based protocol for K lanes, each with its own failure / re-initialisation state."""
    lanes = _check_k(k)
    if skip < 1:
        raise ValueError(f"skip must be >= 1, got {skip}")
    results = [ProtocolResult() for _ in lanes]
    next_init = [0] * k
    check = _InputCheck(video)
    for idx in range(len(video)):
        to_init = [lane for lane in lanes if next_init[lane] == idx]
        to_track = [lane for lane in lanes if idx > next_init[lane]]
        for lane in lanes:
            if idx < next_init[lane]:
                results[lane].boxes.append(0)
                results[lane].scores.append(None)
                results[lane].times.append(0.0)
        if not to_init and not to_track:  # every lane is skipping: no need to read the frame
            if progress is not None:
                progress(1)
            continue
        img = _frame(video, idx)
        check.frame(idx, img)
        gt = _gt_polygon(video.gt_traj[idx])
        bounds = (img.shape[1], img.shape[0])
        if to_init:
            box = init_box_from_gt(gt)
            check.init_box(idx, box, img)  # before the clock: a warning may print
            tic = time.perf_counter()
            batch_tracker.init_lanes(img, {lane: list(box) for lane in to_init})
            share = (time.perf_counter() - tic) / len(to_init)
            for lane in to_init:
                results[lane].boxes.append(1)
                results[lane].scores.append(None)
                results[lane].times.append(share)
        if to_track:
            tic = time.perf_counter()
            outputs = batch_tracker.track_lanes(img, to_track)
            share = (time.perf_counter() - tic) / len(to_track)
            for lane in to_track:
                t0 = time.perf_counter()
                box = _box(outputs[lane], lane)
                res = results[lane]
                if vot_overlap(box, gt, bounds=bounds) > 0:
                    res.boxes.append(box)
                    res.scores.append(_score(outputs[lane]))
                else:
                    res.boxes.append(2)
                    res.scores.append(None)
                    res.lost += 1
                    next_init[lane] = idx + skip
                res.times.append(share + time.perf_counter() - t0)
        if progress is not None:
            progress(1)
    return results


def run_vot_reset(tracker: Tracker, video: Any, skip: int = 5, progress: Progress = None) -> ProtocolResult:
    """VOT reset-based protocol (VOT2016/2018/2019) for one tracker; ``lost`` counts the failures."""
    return run_vot_reset_batch(SingleLane(tracker), video, 1, skip=skip, progress=progress)[0]


def run_protocol_batch(batch_tracker: BatchTracker, video: Any, k: int, kind: str, progress: Progress = None
                       ) -> list[ProtocolResult]:
    """The loop a result kind (``toolkit.results.result_kind(dataset)``) calls for, for K lanes."""
    if kind == "vot":
        return run_vot_reset_batch(batch_tracker, video, k, progress=progress)
    if kind == "longterm":
        return run_longterm_batch(batch_tracker, video, k, progress)
    if kind in ("ope", "got10k"):
        return run_ope_batch(batch_tracker, video, k, progress)
    raise ValueError(f"unknown result kind {kind!r}; valid kinds: ope, vot, longterm, got10k")


def run_protocol(tracker: Tracker, video: Any, kind: str, progress: Progress = None) -> ProtocolResult:
    """The loop a result kind calls for (vot: reset-based, longterm, else one-pass), for one tracker."""
    return run_protocol_batch(SingleLane(tracker), video, 1, kind, progress)[0]
