"""The tracker's decision rules on hand-made model outputs: candidate count, strict threshold, NaN sizes."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from helpers import tiny_cfg
from siamkpn.tracker import SiamKPNTracker

N = 31
CENTRE = (15, 15)
CORNERS = [(2, 3), (3, 27), (28, 2), (27, 28), (4, 4), (26, 5)]  # near-zero cosine window
IMG = np.full((200, 200, 3), 90, np.uint8)
INIT = [90.0, 90.0, 20.0, 20.0]  # centre (99.5, 99.5); s_z = 40, scale_z = 127/40


class ConstModel(torch.nn.Module):
    """Returns the same outputs for every crop."""

    def __init__(self, heatmap, objsize):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.out = {"heatmap": [torch.from_numpy(heatmap).reshape(1, 1, N, N)],
                    "offsets": [torch.zeros(1, 2, N, N)],
                    "objsize": [torch.from_numpy(objsize).reshape(1, 2, N, N)]}

    def template(self, z):
        return [z[:, :, :15, :15]]

    def track(self, zf, x):
        return self.out


def _tracker(cells, th=0.15, size_at_centre=None):
    """Logits: `cells` in descending order from -1 (score 0.27), the rest -20; window-only choice."""
    heat = np.full((N, N), -20.0, np.float32)
    for k, (i, j) in enumerate(cells):
        heat[i, j] = -1.0 - 0.01 * k
    objsize = np.full((2, N, N), 20 * 127 / 40, np.float32)  # the current size: no scale/aspect penalty
    if size_at_centre is not None:
        objsize[:, CENTRE[0], CENTRE[1]] = size_at_centre  # (w, h)
    cfg = tiny_cfg(stack=1)
    cfg.TRACK.TH, cfg.TRACK.WINDOW_INFLUENCE, cfg.TRACK.LR = th, 1.0, 0.5
    tracker = SiamKPNTracker(ConstModel(heat, objsize), cfg)
    tracker.init(IMG, INIT)
    return tracker, heat


def _chose_centre(out):
    # the centre cell has offset 0: the box stays where it was
    return out["bbox"][:2] == pytest.approx([89.5, 89.5], abs=1e-9)


def test_at_least_four_candidates_even_below_threshold():
    tracker, _ = _tracker(CORNERS[:3] + [CENTRE], th=0.99)
    assert _chose_centre(tracker.track(IMG))  # 4th best logit is a candidate: mink = 4


def test_fifth_candidate_only_when_its_score_is_above_threshold():
    tracker, _ = _tracker(CORNERS[:4] + [CENTRE], th=0.2)
    assert _chose_centre(tracker.track(IMG))
    tracker, _ = _tracker(CORNERS[:4] + [CENTRE], th=0.9)
    assert not _chose_centre(tracker.track(IMG))


def test_threshold_is_strict_in_float32():
    cells = CORNERS[:4] + [CENTRE]
    _, heat = _tracker(cells)
    fifth = float(torch.sigmoid(torch.tensor(heat[CENTRE], dtype=torch.float32)))
    tracker, _ = _tracker(cells, th=fifth)  # score == TH: not above it, so only 4 candidates
    assert not _chose_centre(tracker.track(IMG))
    tracker, _ = _tracker(cells, th=np.nextafter(np.float32(fifth), np.float32(0)).item())
    assert _chose_centre(tracker.track(IMG))


def test_at_most_sixteen_candidates():
    cells = [(i, j) for i in (1, 2, 28, 29) for j in (1, 2, 28, 29)]  # 16 cells, all far from the centre
    tracker, _ = _tracker(cells + [CENTRE], th=0.01)
    assert not _chose_centre(tracker.track(IMG))
    tracker, _ = _tracker(cells[:15] + [CENTRE], th=0.01)
    assert _chose_centre(tracker.track(IMG))


def test_negative_size_output_gives_minimum_size_not_nan():
    # w < 0 makes the scale penalty sqrt(negative) = NaN; argmax takes the NaN; min/max then give 10
    tracker, _ = _tracker([CENTRE] + CORNERS, th=0.01, size_at_centre=(-30.0, 20.0))
    out = tracker.track(IMG)
    assert out["bbox"][2:] == [10.0, 10.0] and all(np.isfinite(out["bbox"]))
    assert tracker.state.size.tolist() == [10.0, 10.0]


@pytest.mark.parametrize("log_size", [88.0, 100.0, 1e30])
def test_huge_size_outputs_track_without_numpy_overflow_warnings(log_size):
    # a barely trained model (TRAIN.NORMWH: sizes are exp(output) * 64) can output log-sizes that overflow float32
    heat = np.full((N, N), 30.0, np.float32)
    cfg = tiny_cfg(stack=1)
    cfg.TRAIN.NORMWH = True
    tracker = SiamKPNTracker(ConstModel(heat, np.full((2, N, N), log_size, np.float32)), cfg)
    tracker.init(IMG, INIT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in exp / multiply" would raise here
        out = tracker.track(IMG)
    assert all(np.isfinite(out["bbox"])) and out["bbox"][2:] == [10.0, 10.0]  # inf sizes end at the minimum
