"""Index of one prepared training set (pysot layout) and the sampling of template/search frames from it.

Layout: `<ROOT>/<video>/<frame:06d>.<track>.x.jpg` (511 crops centred on the target) and a json
`{video: {track: {frame: [x1, y1, x2, y2]}}}` with boxes in the original frame's pixels (a 2-value
`[w, h]` is accepted as pysot does). Boxes without area are dropped; a video keeps the tracks that
still have frames. Positive pairs take the search frame within FRAME_RANGE positions of the template
frame in the track's sorted frame list (pysot's rule).
"""
from __future__ import annotations

import json
import logging
import math
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from toolkit.errors import BadValue

__all__ = ["Sample", "Track", "SubDataset", "load_annotations"]

logger = logging.getLogger(__name__)


class Sample(NamedTuple):
    """One image of a pair: the crop file, the target box in the original frame, where it comes from."""

    path: str
    box: Tuple[float, ...]
    video: int  # global video index (start index of the sub-dataset + position in it)
    track: str
    frame: int


class Track(NamedTuple):
    """A track of a video: its frame numbers (sorted) and the box of each."""

    name: str
    frames: List[int]
    boxes: Dict[int, Tuple[float, ...]]


def _box_size(box: Sequence[float]) -> Tuple[float, float]:
    return (box[2] - box[0], box[3] - box[1]) if len(box) == 4 else (box[0], box[1])


def _parse_box(value, where: str) -> Tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 4):
        raise BadValue(f"{where}: expected a box [x1, y1, x2, y2] (or [w, h]), got {value!r}")
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise BadValue(f"{where}: box values must be numbers, got {value!r}") from None


def load_annotations(path: str) -> Tuple[List[str], List[List[Track]], int]:
    """Read and check a pysot training json; returns (videos, tracks per video, dropped zero-size boxes)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise BadValue(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(data, dict):
        raise BadValue(f"{path}: expected an object {{video: {{track: {{frame: box}}}}}}, got {type(data).__name__}")
    videos, tracks, dropped = [], [], 0
    for video, video_tracks in data.items():
        if not isinstance(video_tracks, dict):
            raise BadValue(f"{path}: video '{video}': expected an object {{track: {{frame: box}}}}, "
                             f"got {type(video_tracks).__name__}")
        kept = []
        for track, frames in video_tracks.items():
            if not isinstance(frames, dict):
                raise BadValue(f"{path}: video '{video}' track '{track}': expected an object {{frame: box}}, "
                                 f"got {type(frames).__name__}")
            boxes = {}
            for frame, value in frames.items():
                if not str(frame).isdigit():  # pysot ignores non-frame keys (e.g. a cached 'frames' list)
                    continue
                box = _parse_box(value, f"{path}: video '{video}' track '{track}' frame '{frame}'")
                w, h = _box_size(box)
                if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
                    dropped += 1
                    continue
                boxes[int(frame)] = box
            if boxes:
                kept.append(Track(str(track), sorted(boxes), boxes))
        if kept:
            videos.append(str(video))
            tracks.append(kept)
    if not videos:
        raise BadValue(f"{path}: no usable boxes (every box is missing or has zero size)")
    return videos, tracks, dropped


class SubDataset:
    """One prepared training set: the video index and pysot's pair sampling.

    Args:
        name: the DATASET.NAMES entry (for messages).
        root: folder of the crops (`<root>/<video>/<frame:06d>.<track>.x.jpg`).
        anno: the annotation json.
        frame_range: largest distance, in positions of a track's frame list, between template and search.
        num_use: videos drawn per pass (-1: each video once; more than the videos: repeated, reshuffled).
        start_idx: global index of the first video (sub-datasets are numbered one after the other).
    """

    def __init__(self, name: str, root: str, anno: str, frame_range: int, num_use: int, start_idx: int = 0) -> None:
        self.name = name
        self.root = root
        self.anno = anno
        self.frame_range = int(frame_range)
        self.start_idx = int(start_idx)
        self.videos, self.tracks, dropped = load_annotations(anno)
        if dropped:
            logger.info("%s: dropped %d zero-size boxes from %s", name, dropped, anno)
        if not os.path.isdir(root):
            logger.warning("%s: crop folder %s does not exist (every sample will be skipped)", name, root)
        self.num = len(self.videos)
        self.num_use = self.num if int(num_use) == -1 else int(num_use)
        logger.info("%s: %d videos, using %d per pass (%s)", name, self.num, self.num_use, anno)

    def __len__(self) -> int:
        return self.num

    def pick(self, rng: np.random.Generator) -> np.ndarray:
        """`num_use` global video indices: whole shuffled passes over the videos, cut to length."""
        passes = [rng.permutation(self.num) for _ in range(-(-self.num_use // self.num))]
        order = np.concatenate(passes)[: self.num_use] if passes else np.zeros(0, np.int64)
        return order + self.start_idx

    def sample(self, video: int, track: Track, frame: int) -> Sample:
        """The crop file and box of `frame` of `track` in local video `video`."""
        path = os.path.join(self.root, self.videos[video], f"{frame:06d}.{track.name}.x.jpg")
        return Sample(path, track.boxes[frame], video + self.start_idx, track.name, frame)

    def positive_pair(self, video: int, rng: np.random.Generator) -> Tuple[Sample, Sample]:
        """Template and search of one random track of local video `video`, at most frame_range frames apart."""
        track = self.tracks[video][rng.integers(len(self.tracks[video]))]
        frames = track.frames
        t = int(rng.integers(len(frames)))
        left = max(t - self.frame_range, 0)
        right = min(t + self.frame_range, len(frames) - 1) + 1
        s = int(rng.integers(left, right))
        return self.sample(video, track, frames[t]), self.sample(video, track, frames[s])

    def random_target(self, rng: np.random.Generator, video: Optional[int] = None,
                      exclude: Optional[int] = None) -> Sample:
        """A random frame of a random track of local `video` (random video if None, avoiding local `exclude`)."""
        if video is None and exclude is not None and self.num > 1:
            video = int(rng.integers(self.num - 1))  # uniform over the other videos
            video += video >= exclude
        elif video is None:
            video = int(rng.integers(self.num))
        track = self.tracks[video][rng.integers(len(self.tracks[video]))]
        return self.sample(video, track, track.frames[rng.integers(len(track.frames))])
