"""Batched videos: K videos tracked in lockstep, one lane each, with one forward pass per step for all lanes.

``run_videos`` drives the per-lane protocol state of :class:`toolkit.protocols.LaneRun` (the one the K-lane,
one-video loops of the search use) over K *different* videos: each lane its own video, frames, template and
protocol state (OPE, long-term, VOT reset with its skipped frames and re-initialisations). At each step the lanes
that need an (re-)initialisation are initialised in one call, then every lane that needs tracking is tracked in
one call. A lane whose video ends takes the next video from the iterable, pulled only then, so the caller can
decide at pull time (claim a video, or skip one finished elsewhere); each video is yielded as soon as it is done.

With k == 1 the lines equal ``run_protocol``'s (the same calls on the same frames); with k > 1 a batch tracker's
boxes differ from k == 1 only by the rounding of batched convolutions. A lane's per-frame time is its share of the
step's call (init or track) that served it, so GOT-10k ``_time.txt`` stays per frame.

A batch tracker here takes per-lane images: ``init_lanes_images({lane: (img, box)})`` and
``track_lanes_images({lane: img}) -> {lane: output}``. A plain tracker (``init`` / ``track``) runs with k == 1.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Protocol, Tuple

import numpy as np

from toolkit.protocols import INIT, SKIP, LaneRun, ProtocolResult, check_kind, check_lanes, timed_init, timed_track

__all__ = ["ImageLanesTracker", "SingleImageLane", "run_videos"]

Video = Any
OnFrames = Optional[Callable[[Video, int], Any]]


class ImageLanesTracker(Protocol):
    def init_lanes_images(self, lanes: Mapping[int, Tuple[np.ndarray, list]]) -> Any: ...
    def track_lanes_images(self, images: Mapping[int, np.ndarray]) -> Mapping[int, Mapping[str, Any]]: ...


class SingleImageLane:
    """Adapter running one ordinary tracker (``init`` / ``track``) as a one-lane per-image batch tracker."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker

    def init_lanes_images(self, lanes: Mapping[int, Tuple[np.ndarray, list]]) -> None:
        for img, box in lanes.values():
            self.tracker.init(img, box)

    def track_lanes_images(self, images: Mapping[int, np.ndarray]) -> Dict[int, Mapping[str, Any]]:
        return {lane: self.tracker.track(img) for lane, img in images.items()}


def _lanes_tracker(tracker: Any, k: int) -> ImageLanesTracker:
    check_lanes(k)
    if hasattr(tracker, "init_lanes_images") and hasattr(tracker, "track_lanes_images"):
        lanes = getattr(tracker, "num_lanes", None)
        if lanes is not None and lanes < k:
            raise ValueError(f"k={k} lanes asked of a batch tracker with {lanes} lanes")
        return tracker
    if k != 1:
        raise ValueError(f"k={k} needs a batch tracker with per-lane images (init_lanes_images / "
                         f"track_lanes_images, e.g. siamkpn.tracker.build_video_batch_tracker); "
                         f"{type(tracker).__name__} tracks one video at a time (k=1)")
    return SingleImageLane(tracker)


def run_videos(tracker: Any, videos: Iterable[Video], kind: str, k: int, on_frames: OnFrames = None,
               skip: int = 5) -> Iterator[Tuple[Video, ProtocolResult]]:
    """Track `videos` K at a time in lockstep under protocol `kind`; yield (video, result) as each finishes.

    Args:
        tracker: a batch tracker with per-lane images and at least `k` lanes, or a plain tracker (k == 1).
        videos: pulled lazily, one whenever a lane is free (never more than k ahead of those yielded).
        kind: ope, vot, longterm or got10k (``toolkit.results.result_kind``).
        on_frames: called ``(video, n)`` after n more frames of `video` are done (progress).
        skip: VOT frames from a failure to the re-initialisation.
    """
    check_kind(kind)
    batch = _lanes_tracker(tracker, k)
    if skip < 1:
        raise ValueError(f"skip must be >= 1, got {skip}")
    pending = iter(videos)
    runs: Dict[int, LaneRun] = {}
    exhausted = False
    while True:
        for lane in range(k):  # free lanes take the next videos; a video with no frames is done at once
            while lane not in runs and not exhausted:
                video = next(pending, None)
                if video is None:
                    exhausted = True
                    break
                run = LaneRun(video, kind, skip)
                if run.done:
                    yield video, run.result
                else:
                    runs[lane] = run
        if not runs:
            return
        done_frames = _step(batch, runs)
        for lane in sorted(runs):
            run = runs[lane]
            if on_frames is not None and done_frames[lane]:
                on_frames(run.video, done_frames[lane])
            if run.done:
                del runs[lane]
                yield run.video, run.result


def _step(batch: ImageLanesTracker, runs: Dict[int, LaneRun]) -> Dict[int, int]:
    """One lockstep step: each lane skips what it must, then (re-)initialises or tracks one frame. Returns the
    frames each lane advanced."""
    start = {lane: run.idx for lane, run in runs.items()}
    to_init: Dict[int, Tuple[np.ndarray, list]] = {}
    to_track: Dict[int, np.ndarray] = {}
    for lane, run in runs.items():
        while not run.done and run.action() == SKIP:  # skipped VOT frames need no image and no tracker call
            run.skip()
        if run.done:
            continue
        img = run.read_frame()
        if run.action() == INIT:
            box = run.init_box()
            run.check.init_box(run.idx, box, img)  # before the clock: a warning may print
            to_init[lane] = (img, box)
        else:
            to_track[lane] = img
    if to_init:
        timed_init(runs, list(to_init), batch.init_lanes_images,
                   {lane: (img, list(box)) for lane, (img, box) in to_init.items()})
    if to_track:
        timed_track(runs, to_track, batch.track_lanes_images, to_track)
    return {lane: run.idx - start[lane] for lane, run in runs.items()}
