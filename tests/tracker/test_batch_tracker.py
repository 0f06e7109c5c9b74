"""BatchSiamKPNTracker: K hyper-parameter lanes in one forward pass behave as K separate trackers, and K lanes
with their own videos (``build_video_batch_tracker`` + ``toolkit.lanes.run_videos``) as K separate runs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_cfg, torch_threads
from siamkpn.tracker import BatchSiamKPNTracker, SiamKPNTracker, build_video_batch_tracker
from toolkit.errors import BadValue
from toolkit.lanes import run_videos
from toolkit.protocols import run_ope, run_ope_batch, run_protocol, run_vot_reset, run_vot_reset_batch

LANE_PARAMS = [(0.04, 0.44, 0.4), (0.3, 0.1, 0.9), (0.0, 0.8, 0.05)]


class PoolModel(torch.nn.Module):
    """A deterministic, batch-invariant stand-in for the network: every output is a per-sample pooling."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.batch_sizes = []

    def template(self, z):
        return [F.adaptive_avg_pool2d(z, 15), {"mean": z.mean(dim=(1, 2, 3), keepdim=True)}]

    def track(self, zf, x):
        self.batch_sizes.append(x.shape[0])
        pooled = F.adaptive_avg_pool2d(x, 31)
        heat = (pooled[:, :1] - zf[1]["mean"]) / 16 + zf[0][:, :1, 7:8, 7:8] / 64 - 3
        return {"heatmap": [heat], "offsets": [(pooled[:, 1:] - 128) / 500],
                "objsize": [30 + pooled[:, 1:] / 4]}


class SquareVideo:
    """A bright square drifting over noise, jumping across the frame at frame 5; VOT-style 8-value ground truth."""

    def __init__(self, frames=14, seed=0, name="square"):
        rng = np.random.default_rng(seed)
        self.name, self.frames, self.gt_traj = name, [], []
        for i in range(frames):
            img = rng.integers(0, 120, (120, 160, 3), dtype=np.uint8)
            x, y = (40 + 3 * i, 30 + 2 * i) if i < 5 else (126 - i, 90 - i)
            img[y:y + 24, x:x + 30] = (200, 220, 240)
            self.frames.append(img)
            self.gt_traj.append([x, y, x + 29, y, x + 29, y + 23, x, y + 23])
        # frame 4's ground truth lies off the square: only lanes with a large box still overlap it
        if frames > 4:
            self.gt_traj[4] = [30, 90, 40, 90, 40, 100, 30, 100]

    def __len__(self):
        return len(self.frames)

    def load_frame(self, idx):
        return self.frames[idx]


def _cfgs(base):
    out = []
    for pk, wi, lr in LANE_PARAMS:
        cfg = base.clone()
        cfg.TRACK.PENALTY_K, cfg.TRACK.WINDOW_INFLUENCE, cfg.TRACK.LR = pk, wi, lr
        out.append(cfg)
    return out


@pytest.mark.parametrize("protocol", ["ope", "vot"])
def test_lanes_equal_separate_trackers_exactly(protocol):
    cfgs = _cfgs(tiny_cfg(stack=1))
    video = SquareVideo()
    model = PoolModel()
    if protocol == "ope":
        lanes = run_ope_batch(BatchSiamKPNTracker(model, cfgs), video, len(cfgs))
        singles = [run_ope(SiamKPNTracker(PoolModel(), cfg), video) for cfg in cfgs]
    else:
        lanes = run_vot_reset_batch(BatchSiamKPNTracker(model, cfgs), video, len(cfgs), skip=2)
        singles = [run_vot_reset(SiamKPNTracker(PoolModel(), cfg), video, skip=2) for cfg in cfgs]
        assert sorted(lane.lost for lane in lanes) == [0, 1, 1]  # lanes fail and re-initialise separately
    for lane, single in zip(lanes, singles):
        assert lane.boxes == single.boxes
        assert lane.scores == single.scores
    assert len({str(lane.boxes) for lane in lanes}) == len(cfgs), "lanes should differ"
    assert max(model.batch_sizes) == len(cfgs)  # one forward pass per frame for all lanes


def test_track_lanes_subset_and_reinit():
    cfgs = _cfgs(tiny_cfg(stack=1))
    video = SquareVideo()
    batch = BatchSiamKPNTracker(PoolModel(), cfgs)
    single = SiamKPNTracker(PoolModel(), cfgs[2])
    box = [40.0, 30.0, 30.0, 24.0]
    batch.init_lanes(video.frames[0], {0: box, 2: box})
    single.init(video.frames[0], box)
    with pytest.raises(RuntimeError, match="lane 1"):
        batch.track_lanes(video.frames[1], [0, 1])
    with pytest.raises(KeyError, match="lane 3"):
        batch.track_lanes(video.frames[1], [3])
    for idx in range(1, 5):
        out = batch.track_lanes(video.frames[idx], [2])
        assert set(out) == {2} and out[2] == single.track(video.frames[idx])
    batch.init_lanes(video.frames[5], {2: [50.0, 40.0, 30.0, 24.0]})
    single.init(video.frames[5], [50.0, 40.0, 30.0, 24.0])
    out = batch.track_lanes(video.frames[6], [0, 2])
    assert out[2] == single.track(video.frames[6])
    assert batch.track_lanes(video.frames[7], []) == {}


def test_real_network_lanes_match_single_trackers():
    """With a (tiny, random) SiamKPN: K=1 is bit-identical, K=2 matches up to batched-conv rounding."""
    torch.manual_seed(0)
    from siamkpn.models.model_builder import ModelBuilder

    cfgs = _cfgs(tiny_cfg(stack=2))[:2]
    model = ModelBuilder(cfgs[0]).eval()
    video = SquareVideo(frames=3)
    [one] = run_ope_batch(BatchSiamKPNTracker(model, cfgs[:1]), video, 1)
    assert one.boxes == run_ope(SiamKPNTracker(model, cfgs[0]), video).boxes
    lanes = run_ope_batch(BatchSiamKPNTracker(model, cfgs), video, len(cfgs))
    for lane, cfg in zip(lanes, cfgs):
        single = run_ope(SiamKPNTracker(model, cfg), video)
        np.testing.assert_allclose(lane.boxes, single.boxes, rtol=0, atol=1e-3)


def test_fast_mode_bfloat16_tracks_close_to_exact_mode():
    """TRACK.FAST's bfloat16 network (forced here: this CPU may lack native bf16) still tracks the square."""
    torch.manual_seed(0)
    from siamkpn.models.inference import prepare_for_inference
    from siamkpn.models.model_builder import ModelBuilder

    cfg = tiny_cfg(stack=1)
    model = ModelBuilder(cfg).eval()
    exact = run_ope(SiamKPNTracker(prepare_for_inference(model), cfg), SquareVideo(frames=4))
    fast_model = prepare_for_inference(model, fast=True, fast_dtype=torch.bfloat16)
    outputs = fast_model.track(fast_model.template(torch.zeros(1, 3, cfg.TRACK.EXEMPLAR_SIZE, cfg.TRACK.EXEMPLAR_SIZE)),
                                  torch.zeros(1, 3, cfg.TRACK.INSTANCE_SIZE, cfg.TRACK.INSTANCE_SIZE))
    assert outputs["heatmap"][-1].dtype == torch.float32  # the output layer stays float32 for the decision
    fast = run_ope(SiamKPNTracker(fast_model, cfg), SquareVideo(frames=4))
    assert all(np.isfinite(box).all() and len(box) == 4 for box in fast.boxes)
    assert np.abs(np.array(fast.boxes) - np.array(exact.boxes)).max() < 8.0


def _video_set(lengths):
    return [SquareVideo(frames=n, seed=i, name=f"v{i}") for i, n in enumerate(lengths)]


@pytest.mark.parametrize("kind", ["ope", "vot", "longterm"])
def test_video_lanes_equal_separate_runs_exactly(kind):
    """A batch-invariant model: 3 lanes over 5 videos (lanes pulling the next ones) give run_protocol's lines."""
    cfg = tiny_cfg(stack=1)
    videos = _video_set([6, 9, 4, 7, 5])
    model = PoolModel()
    out = list(run_videos(build_video_batch_tracker(model, cfg, 3), videos, kind, 3))
    assert sorted(v.name for v, _ in out) == [v.name for v in videos]
    for video, result in out:
        single = run_protocol(SiamKPNTracker(PoolModel(), cfg), video, kind)
        assert (result.boxes, result.scores, result.lost) == (single.boxes, single.scores, single.lost)
    if kind == "vot":
        assert sum(r.lost for _, r in out) > 0  # failures and re-initialisations happen
    assert max(model.batch_sizes) == 3 and len(model.batch_sizes) < sum(len(v) for v in videos) // 2


def test_video_lanes_init_and_track_per_image():
    cfg = tiny_cfg(stack=1)
    a, b = SquareVideo(frames=3, seed=0), SquareVideo(frames=3, seed=1)
    batch = build_video_batch_tracker(PoolModel(), cfg, 2)
    singles = [SiamKPNTracker(PoolModel(), cfg), SiamKPNTracker(PoolModel(), cfg)]
    boxes = [[40.0, 30.0, 30.0, 24.0], [44.0, 32.0, 28.0, 22.0]]
    batch.init_lanes_images({1: (b.frames[0], boxes[1]), 0: (a.frames[0], boxes[0])})
    for single, video, box in zip(singles, (a, b), boxes):
        single.init(video.frames[0], box)
    out = batch.track_lanes_images({0: a.frames[1], 1: b.frames[1]})
    assert out == {0: singles[0].track(a.frames[1]), 1: singles[1].track(b.frames[1])}
    assert batch.track_lanes_images({}) == {}
    with pytest.raises(KeyError, match="lane 2"):
        batch.track_lanes_images({2: a.frames[2]})
    with pytest.raises(RuntimeError, match="lane 0 tracked before init_lanes_images"):
        build_video_batch_tracker(PoolModel(), cfg, 1).track_lanes_images({0: a.frames[1]})
    with pytest.raises(BadValue, match="at least one lane"):
        build_video_batch_tracker(PoolModel(), cfg, 0)


class ClipVideo:
    """Frames [start, stop) of the reference fixture's Synth1 sequence, with its VOT ground truth."""

    def __init__(self, seq, start, stop):
        import cv2

        self.name = f"Synth1_{start}_{stop}"
        files = sorted((seq / "img").glob("*.png"))[start:stop]
        self.frames = [cv2.imread(str(p)) for p in files]
        lines = (seq / "groundtruth.txt").read_text().split()[start:stop]
        self.gt_traj = [[float(v) for v in line.split(",")] for line in lines]

    def __len__(self):
        return len(self.frames)

    def load_frame(self, idx):
        return self.frames[idx]


@pytest.mark.slow
def test_trained_network_video_lanes_match_one_lane():
    """The reference fixture's trained network on 5 clips of its sequence: one lane is byte-identical to
    run_protocol; 3 lanes (pulling the next clips) stay within 1e-2 px, with the same VOT markers."""
    from conftest import FIXTURES, require
    from siamkpn.config import load_cfg
    from siamkpn.models.checkpoint import load_checkpoint
    from siamkpn.models.model_builder import ModelBuilder

    folder = require(FIXTURES / "reference" / "fixture_r18_l23_stack3")
    cfg = load_cfg(str(folder / "config.yaml"))
    model = ModelBuilder(cfg).eval()
    load_checkpoint(model, str(folder / "weights_fp16.pth"), strict=True)
    videos = [ClipVideo(folder / "seqs" / "Synth1", a, b) for a, b in ((0, 25), (5, 25), (11, 25), (12, 20), (6, 19))]
    with torch_threads(1):
        singles = {v.name: run_protocol(SiamKPNTracker(model, cfg), v, "vot") for v in videos}
        one = dict((v.name, r) for v, r in run_videos(build_video_batch_tracker(model, cfg, 1), videos[:2], "vot", 1))
        three = list(run_videos(build_video_batch_tracker(model, cfg, 3), videos, "vot", 3))
    assert singles[videos[0].name].lost == 3  # the fixture's published run: failures and re-initialisations
    assert {name: r.boxes for name, r in one.items()} == {v.name: singles[v.name].boxes for v in videos[:2]}
    assert sorted(v.name for v, _ in three) == sorted(singles)
    counts = []
    for video, result in three:
        expected = singles[video.name].boxes
        assert [b if isinstance(b, int) else None for b in result.boxes] == \
            [b if isinstance(b, int) else None for b in expected]  # the marker lines, at the same frames
        tracked = [(b, e) for b, e in zip(result.boxes, expected) if not isinstance(b, int)]
        counts.append(len(tracked))
        np.testing.assert_allclose([b for b, _ in tracked], [e for _, e in tracked], rtol=0, atol=1e-2)
    assert sum(counts) >= 30  # tracked boxes compared, not only markers
