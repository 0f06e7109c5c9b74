"""The tracking loops every caller shares: one-pass (OPE), VOT reset-based and long-term.

A tracker is anything with ``init(img, [x, y, w, h])`` and ``track(img) -> {'bbox': [x, y, w, h],
'best_score': float, ...}``. The loops are written once, for a *batch tracker* that runs K lanes
(e.g. K hyper-parameter configurations) in lockstep over one video, sharing each frame read:
``init_lanes(img, {lane: box})`` and ``track_lanes(img, [lanes]) -> {lane: output}``. A single
tracker runs as the one-lane case through :class:`SingleLane`, so both give identical lines. Each lane's
protocol state is a :class:`LaneRun`; ``toolkit.lanes.run_videos`` drives the same lane runs over K videos
at once (a lane per video) instead of K lanes over one video.

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
from toolkit.results import KINDS, check_kind

__all__ = [
    "KINDS",
    "LaneRun",
    "ProtocolResult",
    "SingleLane",
    "TrackingInputWarning",
    "check_kind",
    "check_lanes",
    "timed_init",
    "timed_track",
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


def check_lanes(k: int) -> list[int]:
    """Lanes 0..k-1, or a ValueError when k < 1."""
    if k < 1:
        raise ValueError(f"need at least one lane, got k={k}")
    return list(range(k))


def _gt_polygon(gt: Sequence[float]) -> list[float]:
    return [float(v) for v in (xywh_to_vot_polygon(gt) if len(gt) == 4 else gt)]


SKIP, INIT, TRACK = "skip", "init", "track"


class LaneRun:
    """One lane's protocol over one video, frame by frame: what frame ``idx`` needs, and its result lines.

    The loops ask :meth:`action` (skip, init or track), then call :meth:`skip`, :meth:`init_box` +
    :meth:`record_init`, or :meth:`record_track` with the tracker's output; each advances ``idx``. Lanes on one
    video share its :class:`_InputCheck` (warnings once per video); the loop reads the frames and checks them.
    """

    def __init__(self, video: Any, kind: str, skip: int = 5, check: Optional[_InputCheck] = None) -> None:
        if skip < 1:
            raise ValueError(f"skip must be >= 1, got {skip}")
        self.video, self.vot, self.skip_frames = video, check_kind(kind) == "vot", skip
        self.first_line = [1] if kind == "longterm" else None
        self.check = check if check is not None else _InputCheck(video)
        self.result = ProtocolResult()
        self.idx, self.next_init = 0, 0
        self.length = len(video)
        self._init_box: Optional[list[float]] = None

    @property
    def done(self) -> bool:
        return self.idx >= self.length

    def action(self) -> str:
        """What frame ``idx`` needs: SKIP (VOT frames after a failure; no image), INIT or TRACK."""
        if self.idx < self.next_init:
            return SKIP
        return INIT if self.idx == self.next_init else TRACK

    def read_frame(self) -> np.ndarray:
        """Frame ``idx`` of this lane's video, checked (for a lane with a video of its own)."""
        img = _frame(self.video, self.idx)
        self.check.frame(self.idx, img)
        return img

    def skip(self) -> None:
        """A skipped VOT frame: marker 0, no score, no time."""
        self._append(0, None, 0.0)

    def init_box(self) -> list[float]:
        """The box to (re-)initialise on at frame ``idx``, from its ground truth."""
        gt = self.video.gt_traj[self.idx]
        self._init_box = init_box_from_gt(_gt_polygon(gt) if self.vot else gt)
        return list(self._init_box)

    def record_init(self, seconds: float) -> None:
        """The lane was initialised on frame ``idx`` (with :meth:`init_box`), taking ``seconds``."""
        if self.vot:
            line: Any = 1
        else:
            line = list(self.first_line) if self.first_line is not None else list(self._init_box)
        self._append(line, None, seconds)

    def record_track(self, output: Mapping[str, Any], lane: int, img: np.ndarray, seconds: float) -> None:
        """The tracker's output on frame ``idx``; VOT: a box without overlap with the ground truth is a failure."""
        tic = time.perf_counter()
        box = _box(output, lane)
        if not self.vot:
            self._append(box, _score(output), seconds)
            return
        gt = _gt_polygon(self.video.gt_traj[self.idx])
        if vot_overlap(box, gt, bounds=(img.shape[1], img.shape[0])) > 0:
            self._append(box, _score(output), seconds + time.perf_counter() - tic)
        else:
            self.result.lost += 1
            self.next_init = self.idx + self.skip_frames
            self._append(2, None, seconds + time.perf_counter() - tic)

    def _append(self, line: Any, score: Optional[float], seconds: float) -> None:
        self.result.boxes.append(line)
        self.result.scores.append(score)
        self.result.times.append(seconds)
        self.idx += 1


def timed_init(runs: Mapping[int, LaneRun], lanes: Sequence[int], init: Callable[..., Any], *args: Any) -> None:
    """``init(*args)``: one tracker call (re-)initialising `lanes`; each lane records an equal share of its time."""
    tic = time.perf_counter()
    init(*args)
    share = (time.perf_counter() - tic) / len(lanes)
    for lane in lanes:
        runs[lane].record_init(share)


def timed_track(runs: Mapping[int, LaneRun], images: Mapping[int, np.ndarray],
                track: Callable[..., Mapping[int, Mapping[str, Any]]], *args: Any) -> None:
    """``track(*args)``: one tracker call tracking each lane of `images` ({lane: its image}); each lane records
    its output and an equal share of the call's time."""
    tic = time.perf_counter()
    outputs = track(*args)
    share = (time.perf_counter() - tic) / len(images)
    for lane, img in images.items():
        runs[lane].record_track(outputs[lane], lane, img, share)


def _one_video(batch: BatchTracker, video: Any, k: int, kind: str, skip: int, progress: Progress
               ) -> list[ProtocolResult]:
    """K lanes in lockstep over one video, sharing each frame read (not read when every lane skips it)."""
    lanes = check_lanes(k)
    check = _InputCheck(video)
    runs = [LaneRun(video, kind, skip, check) for _ in lanes]
    for idx in range(len(video)):
        actions = [run.action() for run in runs]
        to_init = [lane for lane in lanes if actions[lane] == INIT]
        to_track = [lane for lane in lanes if actions[lane] == TRACK]
        for lane in lanes:
            if actions[lane] == SKIP:
                runs[lane].skip()
        if to_init or to_track:
            img = _frame(video, idx)
            check.frame(idx, img)
            if to_init:
                box = runs[to_init[0]].init_box()
                for lane in to_init[1:]:
                    runs[lane].init_box()
                check.init_box(idx, box, img)  # before the clock: a warning may print
                timed_init(runs, to_init, batch.init_lanes, img, {lane: list(box) for lane in to_init})
            if to_track:
                timed_track(runs, {lane: img for lane in to_track}, batch.track_lanes, img, to_track)
        if progress is not None:
            progress(1)
    return [run.result for run in runs]


def run_ope_batch(batch_tracker: BatchTracker, video: Any, k: int, progress: Progress = None
                  ) -> list[ProtocolResult]:
    """One-pass protocol for K lanes in lockstep; the first line of each lane is the init box."""
    return _one_video(batch_tracker, video, k, "ope", 5, progress)


def run_ope(tracker: Tracker, video: Any, progress: Progress = None) -> ProtocolResult:
    """One-pass protocol (OTB, UAV, LaSOT, GOT-10k, NFS, TrackingNet) for one tracker."""
    return run_ope_batch(SingleLane(tracker), video, 1, progress)[0]


def run_longterm_batch(batch_tracker: BatchTracker, video: Any, k: int, progress: Progress = None
                       ) -> list[ProtocolResult]:
    """Long-term protocol (VOT2018-LT) for K lanes: like one-pass, but the first line is ``[1]``."""
    return _one_video(batch_tracker, video, k, "longterm", 5, progress)


def run_longterm(tracker: Tracker, video: Any, progress: Progress = None) -> ProtocolResult:
    """Long-term protocol for one tracker: boxes (``[1]`` first), confidences and per-frame times."""
    return run_longterm_batch(SingleLane(tracker), video, 1, progress)[0]


def run_vot_reset_batch(batch_tracker: BatchTracker, video: Any, k: int, skip: int = 5,
                        progress: Progress = None) -> list[ProtocolResult]:
    """VOT reset-based protocol for K lanes, each with its own failure / re-initialisation state."""
    return _one_video(batch_tracker, video, k, "vot", skip, progress)


def run_vot_reset(tracker: Tracker, video: Any, skip: int = 5, progress: Progress = None) -> ProtocolResult:
    """VOT reset-based protocol (VOT2016/2018/2019) for one tracker; ``lost`` counts the failures."""
    return run_vot_reset_batch(SingleLane(tracker), video, 1, skip=skip, progress=progress)[0]


def run_protocol_batch(batch_tracker: BatchTracker, video: Any, k: int, kind: str, progress: Progress = None
                       ) -> list[ProtocolResult]:
    """The loop a result kind (``toolkit.results.result_kind(dataset)``) calls for, for K lanes."""
    if check_kind(kind) == "vot":
        return run_vot_reset_batch(batch_tracker, video, k, progress=progress)
    if kind == "longterm":
        return run_longterm_batch(batch_tracker, video, k, progress)
    return run_ope_batch(batch_tracker, video, k, progress)  # ope, got10k


def run_protocol(tracker: Tracker, video: Any, kind: str, progress: Progress = None) -> ProtocolResult:
    """The loop a result kind calls for (vot: reset-based, longterm, else one-pass), for one tracker."""
    return run_protocol_batch(SingleLane(tracker), video, 1, kind, progress)[0]
