"""Region overlaps: the VOT region library's rasterised polygon overlap, and OTB's continuous box IoU.

`vot_overlaps` reproduces `compute_polygon_overlap` of the VOT/trax `region.c` (the library the
published toolkit wraps), vectorised over frames: float32 vertices rounded half away from zero,
scan-line rasterisation with inclusive spans inside the canvas made of the two rounded bounding
boxes clipped to the bounds, and an early 0 when those boxes do not overlap with positive area.
Each polygon is rasterised as per-row spans, never as a pixel mask.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["vot_overlap", "vot_overlaps", "vot_overlaps_multi", "box_iou", "regions_to_polygons",
           "polygon_overlaps"]

Bounds = Optional[Union[Tuple[float, float], np.ndarray]]

_MAX_ROWS_PER_CHUNK = 1 << 15  # (pair, row) entries per step: temporaries stay in cache


def regions_to_polygons(regions: Sequence[Sequence[float]]) -> Tuple[np.ndarray, np.ndarray]:
    """Regions (4-value box, even-length >= 6 polygon, or 1-value marker) -> (float32 [N,K,2] vertices, marker mask)."""
    if isinstance(regions, np.ndarray) and regions.ndim == 2:
        arr = regions.astype(np.float64, copy=False)
        if arr.shape[1] == 4:
            return _boxes_to_polygons(arr), np.zeros(len(arr), bool)
        if arr.shape[1] >= 6 and arr.shape[1] % 2 == 0:
            return arr.reshape(len(arr), -1, 2).astype(np.float32), np.zeros(len(arr), bool)
        if arr.shape[1] == 1:
            return np.zeros((len(arr), 4, 2), np.float32), np.ones(len(arr), bool)
        raise ValueError(f"a region has 4 (box), 1 (marker) or an even number >= 6 (polygon) of values, "
                         f"got {arr.shape[1]}")
    lengths = np.fromiter((len(r) for r in regions), dtype=np.int64, count=len(regions))
    bad = (lengths != 1) & (lengths != 4) & ((lengths < 6) | (lengths % 2 == 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"region {i} has {lengths[i]} values; expected 4 (box), 1 (marker) or an even number >= 6")
    k = max(4, int(lengths.max(initial=0)) // 2)
    polys = np.zeros((len(regions), k, 2), np.float32)
    for n in np.unique(lengths):
        idx = np.flatnonzero(lengths == n)
        if n == 1:
            continue
        vals = np.array([regions[i] for i in idx], dtype=np.float64)
        v = _boxes_to_polygons(vals) if n == 4 else vals.reshape(len(idx), n // 2, 2).astype(np.float32)
        polys[idx] = _pad_vertices(v, k)
    return polys, lengths == 1


def _boxes_to_polygons(boxes: np.ndarray) -> np.ndarray:
    """[N,4] x,y,w,h (float64) -> float32 corners (x,y),(x+w,y),(x+w,y+h),(x,y+h), as the published wrapper."""
    x, y, w, h = boxes.T
    xs = np.stack([x, x + w, x + w, x], axis=1)
    ys = np.stack([y, y, y + h, y + h], axis=1)
    return np.stack([xs, ys], axis=2).astype(np.float32)


def vot_overlap(a: Sequence[float], b: Sequence[float], bounds: Bounds = None) -> float:
    """Rasterised VOT overlap of two regions (4-value box or polygon); NaN if either is a 1-value marker."""
    return float(vot_overlaps([list(a)], [list(b)], bounds)[0])


def vot_overlaps(pred_list, gt_list, bounds: Bounds = None) -> np.ndarray:
    """Per-frame VOT overlaps (float32) of two region lists; bounds None, (W, H) or an [N, 2] array of (W, H)."""
    return vot_overlaps_multi(pred_list, gt_list, [bounds])[0]


def vot_overlaps_multi(pred_list, gt_list, bounds_list: Sequence[Bounds]) -> np.ndarray:
    """Overlaps [len(bounds_list), N] under several bounds, rasterising once the pairs no bound clips."""
    if len(pred_list) != len(gt_list):
        raise ValueError(f"{len(pred_list)} predicted regions but {len(gt_list)} ground-truth regions")
    n = len(pred_list)
    out = np.full((len(bounds_list), n), np.nan, np.float32)
    if n == 0:
        return out
    p1, m1 = regions_to_polygons(pred_list)
    p2, m2 = regions_to_polygons(gt_list)
    k = max(p1.shape[1], p2.shape[1])
    keep = np.flatnonzero(~(m1 | m2))
    p1, p2 = _pad_vertices(p1, k)[keep], _pad_vertices(p2, k)[keep]
    whs = [np.full((len(keep), 2), np.inf, np.float32) if b is None
           else np.broadcast_to(np.asarray(b, np.float32), (n, 2))[keep] for b in bounds_list]
    shared = np.ones(len(keep), bool)
    if len(whs) > 1:
        # rounded boxes inside every bound are clipped by none, so one rasterisation serves all bounds
        for p in (p1, p2):
            lo, hi = np.floor(p.min(axis=1)), np.ceil(p.max(axis=1))
            for wh in whs:
                shared &= (lo >= 0).all(axis=1) & (hi <= wh).all(axis=1)
    first = polygon_overlaps(p1[shared], p2[shared], whs[0][shared])
    rest = ~shared
    for i, wh in enumerate(whs):
        out[i, keep[shared]] = first
        out[i, keep[rest]] = polygon_overlaps(p1[rest], p2[rest], wh[rest])
    return out


def _pad_vertices(p: np.ndarray, k: int) -> np.ndarray:
    """Pad [N,k0,2] polygons to k vertices by repeating the last one: a zero-length edge adds no scan-line node."""
    if p.shape[1] == k:
        return p
    return np.concatenate([p, np.repeat(p[:, -1:], k - p.shape[1], axis=1)], axis=1)


def polygon_overlaps(p1: np.ndarray, p2: np.ndarray, wh: np.ndarray) -> np.ndarray:
    """Overlaps (float32) of float32 polygons [N,K,2] within bounds 0..W x 0..H per pair ([N,2], inf = unbounded)."""
    n = len(p1)
    out = np.zeros(n, np.float32)
    finite = np.isfinite(p1).all(axis=(1, 2)) & np.isfinite(p2).all(axis=(1, 2))
    zero = np.float32(0)
    l1, t1, r1, b1 = _clipped_bounds(p1, wh)
    l2, t2, r2, b2 = _clipped_bounds(p2, wh)
    x0, y0 = np.minimum(l1, l2), np.minimum(t1, t2)
    with np.errstate(all="ignore"):
        width = np.trunc(np.maximum(r1, r2) - x0) + 1
        height = np.trunc(np.maximum(b1, b2) - y0) + 1
        # float32 products, as region.c computes them; the ratio tests run in double
        a1 = ((r1 - l1) * (b1 - t1)).astype(np.float64)
        a2 = ((r2 - l2) * (b2 - t2)).astype(np.float64)
        degenerate = (a1 / a2 < 1e-10) | (a2 / a1 < 1e-10) | (width < 1) | (height < 1)
        inter = (np.minimum(r1, r2) - np.maximum(l1, l2)) * (np.minimum(b1, b2) - np.maximum(t1, t2))
        ratio = inter / ((a1.astype(np.float32) + a2.astype(np.float32)) - inter)
        box_overlap = np.where(zero > ratio, zero, ratio)  # keeps NaN, like C's MAX(0, r)
    active = finite & ~degenerate & (box_overlap != 0)
    idx = np.flatnonzero(active)
    if len(idx) == 0:
        return out
    origin = np.stack([x0[idx], y0[idx]], axis=1)[:, None, :]
    q1 = _round_half_away((p1[idx] - origin).astype(np.float32))
    q2 = _round_half_away((p2[idx] - origin).astype(np.float32))
    counts = _rasterised_counts(q1, q2, width[idx].astype(np.int64), height[idx].astype(np.int64))
    inter_px, vol1, vol2 = counts
    union = vol1 + vol2 - inter_px
    with np.errstate(all="ignore"):
        out[idx] = inter_px.astype(np.float32) / union.astype(np.float32)
    return out


def _clipped_bounds(p: np.ndarray, wh: np.ndarray):
    """Rounded (floor/ceil) bounding box of each polygon, intersected with bounds 0..W x 0..H (float32)."""
    left = np.floor(p[..., 0].min(axis=1))
    right = np.ceil(p[..., 0].max(axis=1))
    top = np.floor(p[..., 1].min(axis=1))
    bottom = np.ceil(p[..., 1].max(axis=1))
    bounded = np.isfinite(wh)
    lo = np.where(bounded, np.float32(0), np.float32(-np.inf))
    return (np.maximum(left, lo[:, 0]), np.maximum(top, lo[:, 1]),
            np.minimum(right, wh[:, 0]), np.minimum(bottom, wh[:, 1]))


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C round() of float32 values, returned as float64 integers."""
    v = v.astype(np.float64)
    return np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5))


def _rasterised_counts(q1: np.ndarray, q2: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Pixel counts [3, N] (intersection, polygon 1, polygon 2) per pair of integer-vertex polygons on its canvas."""
    n = len(q1)
    ys = np.concatenate([q1[..., 1], q2[..., 1]], axis=1)
    lo = np.maximum(ys.min(axis=1), 0).astype(np.int64)
    hi = np.minimum(ys.max(axis=1), height - 1).astype(np.int64)
    rows = np.maximum(hi - lo + 1, 0)
    totals = np.zeros((3, n), np.float64)
    convex = _strictly_convex(q1) & _strictly_convex(q2)
    for subset, counter in ((np.flatnonzero(convex), _convex_chunk), (np.flatnonzero(~convex), _general_chunk)):
        for sel in _chunks(subset, rows):
            pair_rows = rows[sel]
            owner = np.repeat(np.arange(len(sel)), pair_rows)  # the pair of each (pair, row) entry
            y = (lo[sel][owner] + _ramp(pair_rows, owner)).astype(np.float64)
            per_row = counter(q1[sel], q2[sel], owner, y, width[sel][owner])
            totals[:, sel] = _segment_sums(per_row, pair_rows)
    return totals


def _chunks(subset: np.ndarray, rows: np.ndarray):
    """Split pair indices into runs whose (pair, row) tables stay below the chunk size."""
    if len(subset) == 0:
        return
    ends = np.cumsum(rows[subset])
    start = 0
    while start < len(subset):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + _MAX_ROWS_PER_CHUNK, side="right")), start + 1)
        yield subset[start:stop]
        start = stop


def _ramp(lengths: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """0..L-1 for each length L, concatenated (owner: the segment of each entry)."""
    return np.arange(len(owner)) - (np.cumsum(lengths) - lengths)[owner]


def _segment_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments (of the given lengths) along the last axis; values [C, M] -> [C, len(lengths)]."""
    cs = np.concatenate([np.zeros((len(values), 1)), np.cumsum(values, axis=1)], axis=1)
    ends = np.cumsum(lengths)
    return cs[:, ends] - cs[:, ends - lengths]


def _strictly_convex(q: np.ndarray) -> np.ndarray:
    """Quadrilaterals whose turns all have the same strict sign: their rows are single spans [min node, max node]."""
    if q.shape[1] != 4:
        return np.zeros(len(q), bool)
    e = np.roll(q, -1, axis=1) - q
    cross = e[:, :, 0] * np.roll(e, -1, axis=1)[:, :, 1] - e[:, :, 1] * np.roll(e, -1, axis=1)[:, :, 0]
    return (cross > 0).all(axis=1) | (cross < 0).all(axis=1)


def _edges(q: np.ndarray) -> np.ndarray:
    """Per polygon edge (i-1 -> i): [N, K, 4] = x_i, y_i, y_j - y_i, x_j - x_i (the first edge closes the polygon)."""
    xi, yi = q[..., 0], q[..., 1]
    return np.stack([xi, yi, np.roll(yi, 1, axis=1) - yi, np.roll(xi, 1, axis=1) - xi], axis=2)


def _edge_node(x0, y0, dy, dx, y):
    """Node of one edge on each row (region.c: (int)(x_i + (y - y_i) / dy * dx)), NaN where the edge misses the row.

    t = (y - y_i) / dy lies in [0, 1] exactly when the row is within the edge's rows (ends included); horizontal
    edges give inf or NaN and no node, as in region.c.
    """
    with np.errstate(all="ignore"):
        t = (y - y0) / dy
        node = np.trunc(x0 + t * dx)
    node[~((t >= 0) & (t <= 1))] = np.nan
    return node


def _convex_chunk(q1, q2, owner, y, width) -> np.ndarray:
    """Per-row pixel counts [3, M] for strictly convex quadrilaterals: one span [min node, max node] per row."""
    spans = []
    for q in (q1, q2):
        fields = np.ascontiguousarray(_edges(q).reshape(len(q), -1).T)  # [K*4, pairs], one row per field
        first = last = None
        for e in range(q.shape[1]):
            node = _edge_node(*(fields[4 * e + f].take(owner) for f in range(4)), y)
            first = node if first is None else np.fmin(first, node)
            last = node if last is None else np.fmax(last, node)
        ok = (first < last) & (first < width) & (last >= 0)
        start = np.where(ok, np.maximum(first, 0), 0)
        end = np.where(ok, np.minimum(last, width - 1), -1)
        spans.append((start, end))
    (s1, e1), (s2, e2) = spans
    both = np.maximum(np.minimum(e1, e2) - np.maximum(s1, s2) + 1, 0)
    return np.stack([both, e1 - s1 + 1, e2 - s2 + 1])


def _general_chunk(q1, q2, owner, y, width) -> np.ndarray:
    """Per-row pixel counts [3, M] for any polygons, following region.c's node pairing exactly."""
    s1, e1 = _row_spans(_edges(q1)[owner], y, width)
    s2, e2 = _row_spans(_edges(q2)[owner], y, width)
    both = np.maximum(np.minimum(e1[:, :, None], e2[:, None, :]) - np.maximum(s1[:, :, None], s2[:, None, :]) + 1, 0)
    return np.stack([both.sum(axis=(1, 2)), np.maximum(e1 - s1 + 1, 0).sum(axis=1),
                     np.maximum(e2 - s2 + 1, 0).sum(axis=1)])


def _row_spans(edges: np.ndarray, y: np.ndarray, width: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Filled spans [start, end] (inclusive, disjoint) of each (polygon, row): region.c's scan line, vectorised.

    edges: [M,K,4] edges of the row's polygon (see `_edges`); y: [M] row; width: [M] canvas width.
    Returns start, end of shape [M, K//2]; unused slots have end < start.
    """
    m, k = edges.shape[:2]
    node = _edge_node(*np.moveaxis(edges, 2, 0), y[:, None])
    count = (~np.isnan(node)).sum(axis=1)
    nodes = np.sort(np.where(np.isnan(node), np.inf, node), axis=1)
    wcol = width.astype(np.float64)
    slots = k // 2
    start = np.zeros((m, slots))
    end = np.full((m, slots), -1.0)
    # region.c pairs sorted nodes left to right; equal neighbours (a vertex on the row) skip one node
    pos = np.zeros(m, np.int64)
    filled = np.zeros(m, np.int64)
    alive = np.ones(m, bool)
    rows = np.arange(m)
    for _ in range(k):
        alive &= pos < count - 1
        if not alive.any():
            break
        a = nodes[rows, np.minimum(pos, k - 1)]
        b = nodes[rows, np.minimum(pos + 1, k - 1)]
        same = alive & (a == b)
        pair_ok = alive & ~same
        stop = pair_ok & (a >= wcol)
        take = pair_ok & ~stop & (b >= 0)
        tr = rows[take]
        slot = filled[take]
        start[tr, slot] = np.maximum(a[take], 0)
        end[tr, slot] = np.minimum(b[take], wcol[take] - 1)
        filled += take
        pos += np.where(same, 1, np.where(pair_ok, 2, 0))
        alive &= ~stop
    if slots > 1:
        # consecutive spans may share their end pixel; a mask counts it once
        prev_end = np.maximum.accumulate(end, axis=1)
        start[:, 1:] = np.maximum(start[:, 1:], prev_end[:, :-1] + 1)
    return start, end


def box_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """OTB IoU of [N,4] x,y,w,h boxes (right edge x+w) clipped to [0,1]; -1 where the ground truth has w<=0 or h<=0."""
    pred = np.asarray(pred, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    iou = np.full(len(gt), -1.0)
    ok = (gt[:, 2] > 0) & (gt[:, 3] > 0)
    a, b = pred[ok], gt[ok]
    iw = np.maximum(0, np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]))
    ih = np.maximum(0, np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]))
    inter = iw * ih
    with np.errstate(all="ignore"):
        iou[ok] = np.clip(inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter), 0, 1)
    return iou
