"""VOT region overlap (region.c semantics) and OTB box IoU: published probes, a literal mask reference, edge cases."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from toolkit.region import box_iou, vot_overlap, vot_overlaps, vot_overlaps_multi

W, H = 640, 360
BOUND_KEYS = {(W, H): "vot_overlap_bounds_WH(AR)", (W - 1, H - 1): "vot_overlap_bounds_W-1H-1(EAO)",
              None: "vot_overlap_unbounded"}


@pytest.fixture(scope="module")
def probes(eval_fixture_dir):
    return json.loads((eval_fixture_dir / "eval_ref.json").read_text())["overlap_probes"]["rows"]


@pytest.mark.parametrize("bounds", list(BOUND_KEYS), ids=["WH", "W-1H-1", "unbounded"])
def test_published_probes(probes, bounds):
    for row in probes:
        got = vot_overlap(row["a"], row["b"], bounds)
        assert got == pytest.approx(row[BOUND_KEYS[bounds]], abs=1e-7), row["name"]
    # the vectorised path gives the same numbers as one pair at a time
    batch = vot_overlaps([r["a"] for r in probes], [r["b"] for r in probes], bounds)
    np.testing.assert_allclose(batch, [r[BOUND_KEYS[bounds]] for r in probes], atol=1e-7)


def test_published_probes_otb_iou(probes):
    rows = [r for r in probes if "overlap_ratio(OTB)" in r]
    got = box_iou(np.array([r["a"] for r in rows]), np.array([r["b"] for r in rows]))
    np.testing.assert_allclose(got, [r["overlap_ratio(OTB)"] for r in rows], atol=1e-12)


# ---------------------------------------------------------------- a literal reference: explicit masks
def _f32(v):
    return float(np.float32(v))


def _c_round(v):
    return math.floor(v + 0.5) if v >= 0 else math.ceil(v - 0.5)


def _mask(poly, width, height):
    """region.c's rasterize_polygon (non-legacy branch) on an explicit boolean mask."""
    mask = np.zeros((height, width), bool)
    pts = [(_c_round(x), _c_round(y)) for x, y in poly]
    for py in range(height):
        nodes = []
        for i in range(len(pts)):
            (xi, yi), (xj, yj) = pts[i], pts[i - 1]
            if ((yi <= py < yj) or (yj <= py < yi) or (yi < py <= yj) or (yj < py <= yi)) and yj != yi:
                nodes.append(int(xi + (py - yi) / (yj - yi) * (xj - xi)))
        nodes.sort()
        i = 0
        while i < len(nodes) - 1:
            if nodes[i] == nodes[i + 1]:
                i += 1
                continue
            if nodes[i] >= width:
                break
            if nodes[i + 1] >= 0:
                mask[py, max(nodes[i], 0):min(nodes[i + 1], width - 1) + 1] = True
            i += 2
    return mask


def reference_overlap(a, b, bounds):
    if len(a) == 4:
        x, y, w, h = a
        a = [x, y, x + w, y, x + w, y + h, x, y + h]
    if len(b) == 4:
        x, y, w, h = b
        b = [x, y, x + w, y, x + w, y + h, x, y + h]
    polys = [[(_f32(r[i]), _f32(r[i + 1])) for i in range(0, len(r), 2)] for r in (a, b)]
    lim = (-math.inf, -math.inf, math.inf, math.inf) if bounds is None else (0, 0, bounds[0], bounds[1])
    boxes = [(max(math.floor(min(p[0] for p in q)), lim[0]), max(math.floor(min(p[1] for p in q)), lim[1]),
              min(math.ceil(max(p[0] for p in q)), lim[2]), min(math.ceil(max(p[1] for p in q)), lim[3]))
             for q in polys]
    (l1, t1, r1, b1), (l2, t2, r2, b2) = boxes
    ox, oy = min(l1, l2), min(t1, t2)
    width, height = int(max(r1, r2) - ox) + 1, int(max(b1, b2) - oy) + 1
    a1, a2 = (r1 - l1) * (b1 - t1), (r2 - l2) * (b2 - t2)
    if _div(a1, a2) < 1e-10 or _div(a2, a1) < 1e-10 or width < 1 or height < 1:
        return 0.0
    inter = (min(r1, r2) - max(l1, l2)) * (min(b1, b2) - max(t1, t2))
    if _div(inter, a1 + a2 - inter) <= 0:
        return 0.0  # rounded boxes overlapping with no area (touching) give 0 without rasterising
    m1, m2 = (_mask([(_f32(x - ox), _f32(y - oy)) for x, y in q], width, height) for q in polys)
    union = (m1 | m2).sum()
    return float(np.float32((m1 & m2).sum()) / np.float32(union)) if union else math.nan


def _div(u, v):
    """C float division: x/0 is +-inf, 0/0 is NaN (which fails every comparison)."""
    if v == 0:
        return math.nan if u == 0 else math.copysign(math.inf, u)
    return u / v


def _random_region(rng):
    kind = rng.integers(0, 4)
    if kind == 0:  # box, fractional or half-integer coordinates, possibly degenerate
        return [*np.round(rng.uniform(-15, 60, 2), 1), *np.round(rng.uniform(0, 30, 2), int(rng.integers(0, 2)))]
    if kind == 1:  # rotated rectangle
        c, s, t = rng.uniform(-5, 55, 2), rng.uniform(1, 30, 2), rng.uniform(0, np.pi)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        return list(np.round((np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * s / 2) @ rot.T + c, 2).ravel())
    if kind == 2:  # any quadrilateral, self-intersecting ones included
        return list(np.round(rng.uniform(-10, 60, 8), 1))
    return list(np.round(rng.uniform(-10, 60, 2 * int(rng.integers(3, 7))), 0))  # 3- to 6-gons


@pytest.mark.parametrize("bounds", [(50, 40), (49, 39), None], ids=["WH", "W-1H-1", "unbounded"])
def test_matches_literal_reference(bounds):
    rng = np.random.default_rng(7)
    a = [_random_region(rng) for _ in range(400)]
    b = [_random_region(rng) for _ in range(400)]
    got = vot_overlaps(a, b, bounds)
    want = np.array([reference_overlap(x, y, bounds) for x, y in zip(a, b)], np.float32)
    assert got.dtype == np.float32
    mismatch = np.flatnonzero((got != want) & ~(np.isnan(got) & np.isnan(want)))
    assert len(mismatch) == 0, [(a[i], b[i], got[i], want[i]) for i in mismatch[:3]]
    assert (want > 0).sum() > 100  # the random pairs do overlap


def test_inclusive_pixels_and_rounding():
    # a w x h box covers (w+1)(h+1) pixels: a half-height box gives 51*21 / (51*41), not 0.5
    assert vot_overlap([100, 100, 50, 40], [100, 100, 50, 20]) == pytest.approx(np.float32(21 / 41))
    # vertices round half away from zero: 10.5 -> 11 shifts the box by one pixel column
    assert vot_overlap([10.5, 0, 10, 10], [11, 0, 10, 10]) == 1.0
    assert vot_overlap([10.49, 0, 10, 10], [11, 0, 10, 10]) == pytest.approx(np.float32(10 / 12))
    # touching rounded boxes give 0 without rasterising (they would share a pixel column)
    assert vot_overlap([0, 0, 10, 10], [10, 0, 10, 10]) == 0.0


def test_bounds_clip_to_the_image():
    # bounds (W, H) keep pixel column W; (W-1, H-1) is exactly the image
    a, b = [620, 100, 40, 40], [610, 100, 40, 40]
    assert vot_overlap(a, b, (W, H)) == pytest.approx(np.float32(21 / 31))
    assert vot_overlap(a, b, (W - 1, H - 1)) == pytest.approx(np.float32(20 / 30))
    assert vot_overlap(a, b) == pytest.approx(np.float32(31 / 51))


def test_markers_bounds_arrays_and_errors():
    assert math.isnan(vot_overlap([1], [0, 0, 5, 5]))
    assert math.isnan(vot_overlap([0, 0, 5, 5], [2]))
    a = [[620, 100, 40, 40], [2], [0, 0, 10, 10]]
    b = [[610, 100, 40, 40], [0, 0, 10, 10], [0, 0, 10, 10]]
    per_frame = vot_overlaps(a, b, np.array([[W, H], [W, H], [W - 1, H - 1]]))
    np.testing.assert_allclose(per_frame, [21 / 31, np.nan, 1.0], rtol=1e-6)
    multi = vot_overlaps_multi(a, b, [(W, H), (W - 1, H - 1), None])
    for row, bounds in zip(multi, [(W, H), (W - 1, H - 1), None]):
        np.testing.assert_array_equal(row, vot_overlaps(a, b, bounds))
    assert vot_overlaps([], [], (W, H)).shape == (0,)
    with pytest.raises(ValueError, match="region 1 has 3 values"):
        vot_overlaps([[0, 0, 1, 1], [1, 2, 3]], [[0, 0, 1, 1], [0, 0, 1, 1]])
    with pytest.raises(ValueError, match="2 predicted regions but 1"):
        vot_overlaps([[1], [1]], [[1]])
    # a non-finite prediction never counts as unknown (NaN would drop it from accuracy)
    assert vot_overlap([np.nan, 0, 10, 10], [0, 0, 10, 10]) == 0.0


def test_box_iou_ground_truth_rule():
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 0, 10], [0, 0, 10, 10]], float)
    gt = np.array([[0, 0, 10, 10], [0, 0, 0, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, -1]], float)
    np.testing.assert_allclose(box_iou(pred, gt), [1.0, -1.0, 50 / 150, 0.0, -1.0])
