"""run_videos: K videos in lockstep give each video run_protocol's lines, with one tracker call per step.

The stand-in tracker finds the bright square in the image it is shown (pure numpy), so every lane's lines depend
only on its own video's frames: any mix-up of lanes, frames or protocol state between videos changes them.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from toolkit.lanes import run_videos
from toolkit.protocols import TrackingInputWarning, run_protocol

KINDS = ["ope", "vot", "longterm", "got10k"]


class SquareVideo:
    """A bright square drifting over noise; the ground truth of frame `off` lies elsewhere (a VOT failure)."""

    def __init__(self, name, frames, seed, off=None):
        rng = np.random.default_rng(seed)
        self.name, self.frames, self.gt_traj = name, [], []
        self.img_names = [f"{name}/{i:08d}.jpg" for i in range(frames)]
        for i in range(frames):
            img = rng.integers(0, 120, (90, 120, 3), dtype=np.uint8)
            x, y = 10 + 3 * i + seed, 12 + 2 * i
            img[y:y + 20, x:x + 24] = (200, 220, 240)
            self.frames.append(img)
            self.gt_traj.append([x, y, x + 23, y, x + 23, y + 19, x, y + 19])
        if off is not None:
            self.gt_traj[off] = [100, 70, 110, 70, 110, 80, 100, 80]

    def __len__(self):
        return len(self.frames)

    def load_frame(self, idx):
        return self.frames[idx]


class FindSquare:
    """A plain tracker: the bounding box of the bright pixels, scored by their share of the image."""

    def init(self, img, box):
        self.box = list(box)

    def track(self, img):
        ys, xs = np.nonzero(img[:, :, 0] > 150)
        self.box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
        return {"bbox": self.box, "best_score": float(len(xs)) / img[:, :, 0].size}


class RecordingLanes:
    """K FindSquare lanes behind the per-lane-image batch interface; records each call's lanes."""

    def __init__(self, k):
        self.lanes = [FindSquare() for _ in range(k)]
        self.num_lanes = k
        self.calls = []

    def init_lanes_images(self, lanes):
        self.calls.append(("init", sorted(lanes)))
        for lane, (img, box) in lanes.items():
            self.lanes[lane].init(img, box)

    def track_lanes_images(self, images):
        self.calls.append(("track", sorted(images)))
        return {lane: self.lanes[lane].track(img) for lane, img in images.items()}


def _videos(fail=True):
    """Five videos of different lengths; with `fail`, some have a ground truth away from the square (VOT)."""
    lengths, offs = [6, 9, 4, 7, 5], [2, None, 1, 5, None]
    return [SquareVideo(f"v{i}", n, seed=i, off=off if fail else None) for i, (n, off) in enumerate(zip(lengths, offs))]


def _same(result, expected):
    assert result.boxes == expected.boxes
    assert result.scores == expected.scores
    assert result.lost == expected.lost
    assert len(result.times) == len(expected.times) and all(t >= 0 for t in result.times)


@pytest.mark.parametrize("kind", KINDS)
def test_one_lane_equals_run_protocol(kind):
    videos = _videos()
    for tracker in (FindSquare(), RecordingLanes(1)):
        out = list(run_videos(tracker, videos, kind, 1))
        assert [v.name for v, _ in out] == [v.name for v in videos]
        for video, result in out:
            _same(result, run_protocol(FindSquare(), video, kind))
    if kind == "vot":
        assert [r.lost for _, r in out] == [1, 0, 1, 1, 0]
        assert out[0][1].boxes[2:] == [2, 0, 0, 0] and out[2][1].boxes == [1, 2, 0, 0]


@pytest.mark.parametrize("kind", KINDS)
def test_three_lanes_over_five_videos_give_each_video_its_own_lines_once(kind):
    videos = _videos()
    frames = {}
    out = list(run_videos(RecordingLanes(3), videos, kind, 3,
                          on_frames=lambda v, n: frames.__setitem__(v.name, frames.get(v.name, 0) + n)))
    assert sorted(v.name for v, _ in out) == [v.name for v in videos]  # each video yielded exactly once
    assert frames == {v.name: len(v) for v in videos}
    for video, result in out:
        _same(result, run_protocol(FindSquare(), video, kind))


def test_one_track_call_per_step_for_every_tracking_lane():
    """OPE, lengths 6, 9, 4, 7, 5 on 3 lanes: v3 joins lane 2 at step 4, v4 lane 0 at step 6; 11 steps."""
    tracker = RecordingLanes(3)
    out = [v.name for v, _ in run_videos(tracker, _videos(fail=False), "ope", 3)]
    assert out == ["v2", "v0", "v1", "v4", "v3"]  # in the order they finish (v4, v3: the same step, lane order)
    inits = [lanes for call, lanes in tracker.calls if call == "init"]
    tracks = [lanes for call, lanes in tracker.calls if call == "track"]
    assert inits == [[0, 1, 2], [2], [0]]
    assert [len(lanes) for lanes in tracks] == [3, 3, 3, 2, 3, 2, 3, 3, 2, 2]
    assert tracks[3] == [0, 1] and tracks[5] == [1, 2] and tracks[-1] == [0, 2]


def test_vot_lanes_skip_and_reinitialise_on_their_own():
    tracker = RecordingLanes(2)
    videos = _videos()[:2]  # v0 fails at frame 2 (re-init at 7 > its 6 frames); v1 never fails
    out = dict((v.name, r) for v, r in run_videos(tracker, videos, "vot", 2))
    assert out["v0"].boxes[0] == 1 and out["v0"].boxes[2:] == [2, 0, 0, 0] and out["v0"].lost == 1
    assert out["v1"].lost == 0 and all(isinstance(b, list) for b in out["v1"].boxes[1:])
    # while v0 skips its last frames, v1 tracks alone: one lane per call, never a call for v0's skipped frames
    assert [lanes for call, lanes in tracker.calls if call == "track"][2:] == [[1]] * 6


def test_videos_are_pulled_lazily():
    pulled, videos = [], _videos()

    def source():
        for video in videos:
            pulled.append(video.name)
            yield video

    seen = []
    for video, _ in run_videos(RecordingLanes(3), source(), "ope", 3):
        seen.append(video.name)
        assert len(pulled) <= len(seen) + 2  # the finished video's lane has not pulled yet; the others hold one
    assert pulled == [v.name for v in videos]


def test_input_warnings_stay_per_video():
    videos = _videos(fail=False)[:2]
    for v in videos:
        v.gt_traj[0] = [500, 500, 510, 500, 510, 510, 500, 510]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(run_videos(RecordingLanes(2), videos, "ope", 2))
    messages = [str(w.message) for w in caught if w.category is TrackingInputWarning]
    assert len(messages) == 2 and "'v0' frame 0 (v0/00000000.jpg)" in messages[0] and "'v1'" in messages[1]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="k=2 needs a batch tracker"):
        next(run_videos(FindSquare(), _videos(), "ope", 2))
    with pytest.raises(ValueError, match="4 lanes asked of a batch tracker with 3"):
        next(run_videos(RecordingLanes(3), _videos(), "ope", 4))
    with pytest.raises(ValueError, match="unknown result kind 'otb'"):
        next(run_videos(FindSquare(), _videos(), "otb", 1))
    assert list(run_videos(FindSquare(), [], "vot", 1)) == []
