"""The shared tracking loops against the published test script's runs on the reference sequence.

A scripted tracker replays the published boxes (it finds the frame it is shown by the image's
content), so the loops' own logic is what is checked: init boxes, the VOT 1/2/0 markers and
re-initialisation frames, lost counts, the result-file text, and batch lanes == single runs.
"""
from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

from toolkit.boxes import init_box_from_gt
from toolkit.datasets import DatasetFactory
from toolkit.protocols import (
    ProtocolResult,
    SingleLane,
    TrackingInputWarning,
    run_longterm,
    run_ope,
    run_ope_batch,
    run_protocol,
    run_vot_reset,
    run_vot_reset_batch,
)
from toolkit.results import format_ope_line, write_video_result

FAR_AWAY = [-500.0, -500.0, 10.0, 10.0]  # no overlap with any ground truth: forces a failure


def _key(img: np.ndarray) -> str:
    return hashlib.sha1(img.tobytes()).hexdigest()


def _read_lines(path):
    return [[float(v) for v in s.split(",")] for s in path.read_text().split()]


class ScriptedTracker:
    """Returns a scripted box per frame index (recognised from the image) and records its calls."""

    def __init__(self, video, boxes_by_frame):
        self.index = {_key(video.load_frame(i)): i for i in range(len(video))}
        assert len(self.index) == len(video), "frames must be distinct for the replay"
        self.boxes = boxes_by_frame
        self.inits: list[tuple[int, list[float]]] = []
        self.tracked: list[int] = []

    def init(self, img, box):
        self.inits.append((self.index[_key(img)], list(box)))

    def track(self, img):
        i = self.index[_key(img)]
        self.tracked.append(i)
        return {"bbox": list(self.boxes(i)), "best_score": 0.5 + i / 100}


class Lanes:
    """K independent single trackers behind the batch interface (what a batch tracker must match)."""

    def __init__(self, trackers):
        self.trackers = trackers
        self.calls = 0

    def init_lanes(self, img, boxes):
        self.calls += 1
        for lane, box in boxes.items():
            self.trackers[lane].init(img, box)

    def track_lanes(self, img, lanes):
        self.calls += 1
        return {lane: self.trackers[lane].track(img) for lane in lanes}


class CountingVideo:
    """Wraps a Video and counts frame reads."""

    def __init__(self, video):
        self.video, self.reads = video, 0
        self.gt_traj = video.gt_traj

    def __len__(self):
        return len(self.video)

    def load_frame(self, i):
        self.reads += 1
        return self.video.load_frame(i)


@pytest.fixture
def seqs(reference_dir):
    return reference_dir / "seqs"


@pytest.fixture
def otb_video(seqs):
    return DatasetFactory.create_dataset("OTB100", seqs, json_name="SynthOTB", load_img=True)["Synth1"]


@pytest.fixture
def vot_video(seqs):
    return DatasetFactory.create_dataset("VOT2018", seqs, json_name="SynthVOT", load_img=True)["Synth1"]


def test_ope_replay_reproduces_published_result_file(reference_dir, otb_video, tmp_path):
    expected = _read_lines(reference_dir / "tracker_ope.txt")
    tracker = ScriptedTracker(otb_video, lambda i: expected[i])
    seen = []
    result = run_ope(tracker, otb_video, progress=seen.append)
    assert tracker.inits == [(0, [134.5, 106.5, 56.0, 55.0])]
    assert tracker.tracked == list(range(1, len(otb_video)))
    assert result.boxes == expected and result.boxes[0] == [134.5, 106.5, 56.0, 55.0]
    assert result.scores[0] is None and result.scores[1:] == [0.5 + i / 100 for i in range(1, 25)]
    assert len(result.times) == len(otb_video) == sum(seen) and all(t >= 0 for t in result.times)
    path = write_video_result(tmp_path, "OTB100", "replay", "Synth1", result.boxes)
    assert path.read_text() == (reference_dir / "tracker_ope.txt").read_text()


def test_vot_replay_reproduces_markers_reinit_and_file(reference_dir, vot_video, tmp_path):
    published = _read_lines(reference_dir / "tracker_vot_full.txt")
    # Replay the published boxes; at the published failure frames return a box far from the target.
    tracker = ScriptedTracker(vot_video, lambda i: FAR_AWAY if published[i] == [2.0] else published[i])
    result = run_vot_reset(tracker, vot_video)
    lines = [[float(x)] if isinstance(x, int) else x for x in result.boxes]
    assert lines == published
    assert all(isinstance(x, int) for x in result.boxes if len(np.atleast_1d(x)) == 1)
    assert result.lost == sum(1 for x in published if x == [2.0])
    debug = np.load(reference_dir / "tracker_vot_debug.npz")
    assert [f for f, _ in tracker.inits] == debug["init_frame"].tolist()
    np.testing.assert_array_equal([b for _, b in tracker.inits], debug["init_box"])
    # Failure at frame f: frames f+1..f+4 skipped (0), re-initialised at f+5 (1).
    for f in (i for i, x in enumerate(result.boxes) if x == 2):
        assert result.boxes[f + 1:f + 5] == [0] * 4 and result.boxes[f + 5:f + 6] in ([1], [])
    assert set(tracker.tracked).isdisjoint(f for f, _ in tracker.inits)
    assert len(result.times) == len(vot_video)
    path = write_video_result(tmp_path, "VOT2018", "replay", "Synth1", result.boxes)
    assert path == tmp_path / "VOT2018" / "replay" / "baseline" / "Synth1" / "Synth1_001.txt"
    assert path.read_text() == (reference_dir / "tracker_vot.txt").read_text()


def test_vot_with_box_ground_truth_initialises_on_the_box(otb_video):
    # A 4-value gt becomes the polygon (x,y)…(x+w-1,y+h-1), whose equal-area box is the gt itself.
    tracker = ScriptedTracker(otb_video, lambda i: otb_video.gt_traj[i])
    result = run_vot_reset(tracker, otb_video)
    assert tracker.inits == [(0, otb_video.gt_traj[0])]
    assert result.lost == 0 and result.boxes[0] == 1 and result.boxes[1:] == otb_video.gt_traj[1:]


def _behaviours(video, published):
    """Three lanes that fail at different frames."""
    gt = [init_box_from_gt(g) for g in video.gt_traj]
    return [
        lambda i: FAR_AWAY if published[i] == [2.0] else published[i],
        lambda i: gt[i],  # never fails
        lambda i: FAR_AWAY if i % 4 == 3 else gt[i],  # fails often, on its own schedule
    ]


def test_vot_batch_lanes_equal_single_runs(reference_dir, vot_video):
    published = _read_lines(reference_dir / "tracker_vot_full.txt")
    behaviours = _behaviours(vot_video, published)
    singles = [run_vot_reset(ScriptedTracker(vot_video, b), vot_video) for b in behaviours]
    assert len({tuple(map(str, s.boxes)) for s in singles}) == 3, "lanes must differ for the test to mean much"
    counting = CountingVideo(vot_video)
    lanes = run_vot_reset_batch(Lanes([ScriptedTracker(vot_video, b) for b in behaviours]), counting, 3)
    for lane, single in zip(lanes, singles):
        assert lane.boxes == single.boxes and lane.lost == single.lost and lane.scores == single.scores
    assert counting.reads <= len(vot_video)  # one read per frame, shared by the lanes


def test_ope_batch_lanes_equal_single_runs(reference_dir, otb_video):
    published = _read_lines(reference_dir / "tracker_ope.txt")
    behaviours = [lambda i: published[i], lambda i: otb_video.gt_traj[i], lambda i: [1.0, 2.0, 3.0, 4.0 + i]]
    singles = [run_ope(ScriptedTracker(otb_video, b), otb_video) for b in behaviours]
    counting = CountingVideo(otb_video)
    batch = Lanes([ScriptedTracker(otb_video, b) for b in behaviours])
    lanes = run_ope_batch(batch, counting, 3)
    assert [r.boxes for r in lanes] == [s.boxes for s in singles]
    assert [r.scores for r in lanes] == [s.scores for s in singles]
    assert counting.reads == len(otb_video) and batch.calls == len(otb_video)


def test_vot_skipped_frames_are_not_read_when_every_lane_skips(otb_video):
    counting = CountingVideo(otb_video)
    result = run_vot_reset(ScriptedTracker(otb_video, lambda i: FAR_AWAY), counting)
    # init, fail, 4 skipped, init, fail, ...: only init and failure frames are read.
    assert result.boxes[:8] == [1, 2, 0, 0, 0, 0, 1, 2]
    assert counting.reads == sum(1 for x in result.boxes if x != 0)


def test_longterm_first_line_is_marker(otb_video):
    result = run_longterm(ScriptedTracker(otb_video, lambda i: otb_video.gt_traj[i]), otb_video)
    assert result.boxes[0] == [1] and result.scores[0] is None
    assert result.boxes[1:] == otb_video.gt_traj[1:] and len(result.scores) == len(otb_video)


def test_single_lane_adapter_and_errors(otb_video):
    tracker = ScriptedTracker(otb_video, lambda i: otb_video.gt_traj[i])
    lane = SingleLane(tracker)
    lane.init_lanes(otb_video.load_frame(0), {0: [1.0, 2.0, 3.0, 4.0]})
    assert tracker.inits == [(0, [1.0, 2.0, 3.0, 4.0])]
    assert lane.track_lanes(otb_video.load_frame(3), [0])[0]["bbox"] == otb_video.gt_traj[3]
    with pytest.raises(ValueError, match="at least one lane"):
        run_ope_batch(lane, otb_video, 0)

    class Broken:
        def init(self, img, box):
            pass

        def track(self, img):
            return {"box": [1, 2, 3, 4]}

    with pytest.raises(ValueError, match="'bbox'"):
        run_ope(Broken(), otb_video)
    assert format_ope_line(ProtocolResult(boxes=[[1, 2.5, 3, 4]]).boxes[0]) == "1.0,2.5,3.0,4.0"


def test_run_protocol_dispatches_on_result_kind(otb_video):
    def make():
        return ScriptedTracker(otb_video, lambda i: FAR_AWAY if i == 2 else otb_video.gt_traj[i])

    assert run_protocol(make(), otb_video, "vot").boxes[:4] == [1, otb_video.gt_traj[1], 2, 0]
    assert run_protocol(make(), otb_video, "longterm").boxes[0] == [1]
    assert run_protocol(make(), otb_video, "got10k").boxes == run_ope(make(), otb_video).boxes
    with pytest.raises(ValueError, match="valid kinds"):
        run_protocol(make(), otb_video, "bogus")


class FramesVideo:
    """An in-memory video: frames of the given (h, w) sizes, one ground-truth box per frame."""

    def __init__(self, name, sizes, gts):
        self.name, self.gt_traj = name, [list(map(float, g)) for g in gts]
        self.sizes = sizes
        self.img_names = [f"/data/{name}/{i + 1:04d}.jpg" for i in range(len(sizes))]

    def __len__(self):
        return len(self.sizes)

    def load_frame(self, i):
        return np.full((*self.sizes[i], 3), i, np.uint8)


class Constant:
    """Tracks nothing: always answers the same box."""

    def __init__(self, box):
        self.box = box

    def init(self, img, box):
        pass

    def track(self, img):
        return {"bbox": list(self.box), "best_score": 0.5}


def _input_warnings(run):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run()
    return result, [str(w.message) for w in caught if issubclass(w.category, TrackingInputWarning)]


INSIDE = [5, 5, 10, 10]


@pytest.mark.parametrize("kind", ["ope", "longterm", "got10k", "vot"])
def test_init_box_outside_the_image_warns_naming_video_frame_and_file(kind):
    video = FramesVideo("Far", [(30, 40)] * 4, [[100, 50, 10, 10]] + [INSIDE] * 3)  # 40x30 frames
    result, caught = _input_warnings(lambda: run_protocol(Constant(INSIDE), video, kind))
    box = "100.5, 50.5" if kind != "vot" else "100, 50"  # VOT goes through the gt's polygon, as published
    assert caught == [f"video 'Far' frame 0 (/data/Far/0001.jpg): the init box [{box}, 10, 10] lies entirely outside "
                      "the 40x30 image; tracked as given"]
    assert len(result.boxes) == 4  # tracked as before


def test_vot_reinit_outside_the_image_warns_once_per_video():
    # fails every frame: re-inits at frames 6, 12 and 18, all on a box right of the image
    video = FramesVideo("Gone", [(30, 40)] * 20, [INSIDE] * 6 + [[40, 5, 10, 10]] * 14)
    result, caught = _input_warnings(lambda: run_vot_reset(Constant(FAR_AWAY), video))
    assert [i for i, b in enumerate(result.boxes) if b == 1] == [0, 6, 12, 18]
    assert len(caught) == 1 and caught[0].startswith("video 'Gone' frame 6 (/data/Gone/0007.jpg): the init box "
                                                      "[40, 5, 10, 10] lies entirely outside")


@pytest.mark.parametrize("kind", ["ope", "vot"])
def test_frames_of_another_size_warn_once_per_video(kind):
    video = FramesVideo("Mixed", [(30, 40)] * 3 + [(30, 50), (20, 40)], [INSIDE] * 5)
    result, caught = _input_warnings(lambda: run_protocol(Constant(INSIDE), video, kind))
    assert caught == ["video 'Mixed' frame 3 (/data/Mixed/0004.jpg): a 50x30 image in a video whose first frame "
                      "is 40x30; tracked as given"]
    assert len(result.boxes) == 5


@pytest.mark.parametrize("kind", ["ope", "vot"])
def test_ordinary_videos_and_boxes_touching_the_border_are_silent(otb_video, kind):
    video = FramesVideo("Edge", [(30, 40)] * 3, [[-9, -9, 10, 10], [39, 29, 10, 10], [39, 29, 10, 10]])
    assert _input_warnings(lambda: run_protocol(Constant(INSIDE), video, kind))[1] == []
    replay = ScriptedTracker(otb_video, lambda i: otb_video.gt_traj[i])
    assert _input_warnings(lambda: run_protocol(replay, otb_video, kind))[1] == []
