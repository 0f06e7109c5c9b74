"""KeypointTarget against the published labels (targets.npz) and the label formulas of MODEL_SPEC."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from siamkpn.config import get_cfg, load_cfg
from siamkpn.datasets.targets import KeypointTarget


def _cfg(reference_dir, compat: bool):
    return load_cfg(str(reference_dir / "config.yaml"), ["TRAIN.COMPAT_REFERENCE", str(compat)])


def _tolerances(reference_dir) -> dict:
    return json.loads((reference_dir / "meta.json").read_text())["tolerances"]


def _dist2(heat_c: np.ndarray, size: int = 31) -> np.ndarray:
    """Squared distance of every cell (row i, column j) to the fixture's label-grid centre (hx, hy)."""
    hx, hy = heat_c
    rows, cols = np.mgrid[0:size, 0:size]
    return (rows - hy) ** 2 + (cols - hx) ** 2


@pytest.fixture(scope="module")
def targets_cache():
    return {}


def _targets(reference_dir, cache):
    if reference_dir not in cache:
        cache[reference_dir] = dict(np.load(reference_dir / "targets.npz"))
    return cache[reference_dir]


@pytest.mark.parametrize("compat", [False, True])
def test_regression_labels_match_published(reference_dir, targets_cache, compat):
    ref = _targets(reference_dir, targets_cache)
    tol = _tolerances(reference_dir)
    target = KeypointTarget(_cfg(reference_dir, compat))
    for b, box in enumerate(ref["boxes"]):
        heatmaps, offsets, objsize = target(box)
        assert heatmaps.shape == ref["heatmap"][b].shape and heatmaps.dtype == np.float32
        assert offsets.dtype == np.float32 and objsize.dtype == np.float32
        np.testing.assert_allclose(offsets, ref["offsets"][b], rtol=0, atol=tol["labels_heatmap_offsets_abs"])
        np.testing.assert_allclose(objsize, ref["objsize"][b], rtol=0, atol=tol["labels_objsize_abs"])
        # Every stage has the published support (d < R) and peak.
        for s in range(heatmaps.shape[0]):
            np.testing.assert_array_equal(heatmaps[s] > 0, ref["heatmap"][b, s] > 0)
            np.testing.assert_array_equal(heatmaps[s] == 1, ref["heatmap"][b, s] == 1)


def test_compat_reproduces_aliased_published_heatmaps(reference_dir, targets_cache):
    ref = _targets(reference_dir, targets_cache)
    tol = _tolerances(reference_dir)["labels_heatmap_offsets_abs"]
    target = KeypointTarget(_cfg(reference_dir, compat=True))
    for b, box in enumerate(ref["boxes"]):
        heatmaps, _, _ = target(box)
        np.testing.assert_allclose(heatmaps, ref["heatmap"][b], rtol=0, atol=tol)
        for s in range(1, heatmaps.shape[0]):  # the published aliasing: every stage is the same label
            np.testing.assert_array_equal(heatmaps[s], heatmaps[0])


def test_default_heatmaps_follow_variance_decay(reference_dir, targets_cache):
    ref = _targets(reference_dir, targets_cache)
    cfg = _cfg(reference_dir, compat=False)
    tol = _tolerances(reference_dir)["labels_heatmap_offsets_abs"]
    target = KeypointTarget(cfg)
    stack = int(ref["stack"])
    sigma = cfg.TRAIN.OUTPUT_SIZE / 8 / 2
    decay = 0.9 if cfg.TRAIN.DIF_STD else 1.0
    for b, box in enumerate(ref["boxes"]):
        heatmaps, _, _ = target(box)
        support = ref["heatmap"][b, 0, 0] > 0
        d2 = _dist2(ref["heat_c"][b])
        peak_x, peak_y = ref["peak"][b]
        in_grid = 0 <= peak_x < 31 and 0 <= peak_y < 31
        for s in range(stack):
            sigma_s = sigma * decay**s
            expected = np.where(support, np.exp(-d2 / (2 * sigma_s**2)), 0.0)
            if in_grid:
                expected[peak_y, peak_x] = 1.0
            np.testing.assert_allclose(heatmaps[s, 0], expected, rtol=0, atol=tol)
        # The published labels are all the last stage's (sigma * 0.81 for r18 3 stages): ours match it there.
        np.testing.assert_allclose(heatmaps[-1], ref["heatmap"][b, 0], rtol=0, atol=tol)
        # log-ratio check independent of the centre: log h_s / log h_last = (sigma_last / sigma_s)**2.
        cells = support & (ref["heatmap"][b, 0, 0] < 0.999)  # log of values near 1 carries no precision
        for s in range(stack):
            ratio = np.log(heatmaps[s, 0][cells].astype(np.float64)) / np.log(ref["heatmap"][b, 0, 0][cells])
            np.testing.assert_allclose(ratio, decay ** (2 * (stack - 1 - s)), rtol=1e-4)


def test_default_stages_are_independent_arrays():
    cfg = get_cfg()
    cfg.TRAIN.STACK, cfg.TRAIN.DIF_STD = 3, False  # equal values, yet each stage its own memory
    heatmaps, _, _ = KeypointTarget(cfg)([100.0, 110.0, 160.0, 150.0])
    np.testing.assert_array_equal(heatmaps[0], heatmaps[2])
    before = heatmaps[1:].copy()
    heatmaps[0] += 5.0
    np.testing.assert_array_equal(heatmaps[1:], before)
    # A second call returns fresh arrays, untouched by edits of the first result.
    again, _, _ = KeypointTarget(cfg)([100.0, 110.0, 160.0, 150.0])
    np.testing.assert_array_equal(again[0], before[0])


def test_peak_cell_uses_round_half_to_even(reference_dir, targets_cache):
    ref = _targets(reference_dir, targets_cache)
    target = KeypointTarget(_cfg(reference_dir, compat=False))
    for b, box in enumerate(ref["boxes"]):
        heatmaps, _, _ = target(box)
        hx, hy = ref["heat_c"][b]
        px, py = ref["peak"][b]
        assert (round(hx), round(hy)) == (px, py)
        ones = np.argwhere(heatmaps[0, 0] == 1)
        if 0 <= px < 31 and 0 <= py < 31:
            assert ones.tolist() == [[py, px]]
        else:  # centre outside the grid: no cell is 1
            assert len(ones) == 0
    half_cells = [b for b, (hx, hy) in enumerate(ref["heat_c"]) if hx % 1 == 0.5 or hy % 1 == 0.5]
    assert half_cells, "the fixture should contain half-cell centres"


@pytest.mark.parametrize("compat", [False, True])
def test_negative_pair_is_all_zero(reference_dir, targets_cache, compat):
    ref = _targets(reference_dir, targets_cache)
    heatmaps, offsets, objsize = KeypointTarget(_cfg(reference_dir, compat))(ref["neg_box"], neg=True)
    for ours, theirs in ((heatmaps, ref["neg_heatmap"]), (offsets, ref["neg_offsets"]), (objsize, ref["neg_objsize"])):
        assert ours.shape == theirs.shape and ours.dtype == np.float32
        assert not ours.any() and not theirs.any()


def _naive_labels(train, box, size):
    """Cell-by-cell reference written from MODEL_SPEC (float64), for options the fixtures do not cover."""
    stack = max(train.STACK, 1)
    radius = train.OUTPUT_SIZE / 8
    sigmas = [radius / 2 * (0.9**s if train.DIF_STD else 1.0) for s in range(stack)]
    tcx, tcy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    tw, th = box[2] - box[0], box[3] - box[1]
    hx = size // 2 + (tcx - (train.SEARCH_SIZE - 1) / 2) / train.STRIDE
    hy = size // 2 + (tcy - (train.SEARCH_SIZE - 1) / 2) / train.STRIDE
    hm = np.zeros((stack, 1, size, size))
    off = np.zeros((2, size, size))
    wh = np.zeros((2, size, size))
    for i in range(size):
        for j in range(size):
            d = math.hypot(i - hy, j - hx)
            if d < radius:
                for s in range(stack):
                    hm[s, 0, i, j] = math.exp(-d * d / (2 * sigmas[s] ** 2))
                if train.SAMEOFF:
                    off[:, i, j] = ((hx - round(hx)) * train.STRIDE / 64, (hy - round(hy)) * train.STRIDE / 64)
                else:
                    kx = (train.SEARCH_SIZE - 1) / 2 + train.STRIDE * (j - size // 2)
                    ky = (train.SEARCH_SIZE - 1) / 2 + train.STRIDE * (i - size // 2)
                    off[:, i, j] = ((tcx - kx) / 64, (tcy - ky) / 64)
                wh[:, i, j] = (math.log(tw / 64), math.log(th / 64)) if train.NORMWH else (tw, th)
            if (i, j) == (round(hy), round(hx)):
                hm[:, 0, i, j] = 1.0
    return hm, off, wh


@pytest.mark.parametrize("sameoff,normwh,stack,dif_std,size", [
    (True, False, 2, True, 31), (False, True, 3, False, 31), (True, True, 1, False, 25), (False, False, 2, True, 17),
])
def test_options_match_cell_by_cell_formula(sameoff, normwh, stack, dif_std, size):
    cfg = get_cfg()
    cfg.TRAIN.SAMEOFF, cfg.TRAIN.NORMWH, cfg.TRAIN.STACK, cfg.TRAIN.DIF_STD = sameoff, normwh, stack, dif_std
    target = KeypointTarget(cfg)
    rng = np.random.default_rng(7)
    for _ in range(6):
        centre = rng.uniform(60, 195, 2)
        wh = rng.uniform(8, 150, 2)
        box = np.concatenate([centre - wh / 2, centre + wh / 2])
        heatmaps, offsets, objsize = target(box, size=size)
        hm_ref, off_ref, wh_ref = _naive_labels(cfg.TRAIN, box, size)
        assert heatmaps.shape == (stack, 1, size, size)
        np.testing.assert_allclose(heatmaps, hm_ref, rtol=0, atol=1e-6)
        np.testing.assert_allclose(offsets, off_ref, rtol=0, atol=1e-6)
        np.testing.assert_allclose(objsize, wh_ref, rtol=1e-6, atol=1e-5)
    if stack > 1 and dif_std:  # compat: every stage carries the last stage's label
        cfg.TRAIN.COMPAT_REFERENCE = True
        aliased, _, _ = KeypointTarget(cfg)(box, size=size)
        for s in range(stack):
            np.testing.assert_allclose(aliased[s], hm_ref[-1], rtol=0, atol=1e-6)


def test_without_offsets_the_offsets_label_stays_zero():
    cfg = get_cfg()
    cfg.TRAIN.OFFSETS = False
    _, offsets, objsize = KeypointTarget(cfg)([100.0, 110.0, 160.0, 150.0])
    assert not offsets.any() and objsize.any()


@pytest.mark.parametrize("box", [[1.0, 2.0, 3.0], [0.0, float("nan"), 10.0, 10.0]])
def test_bad_box_is_a_clear_error(box):
    with pytest.raises(ValueError, match="box_corner"):
        KeypointTarget(get_cfg())(box)
