"""Box conventions of the benchmarks, written once.

All boxes are 0-based pixel coordinates. ``xywh`` is ``x, y, w, h`` with the right edge at ``x + w``.
The *pixel* centre ``x + (w-1)/2`` is the convention of the published test script, the tracker state and
the OTB precision metric. (Only the conversions the toolkit uses live here; the tracker keeps its own
centre/size state in siamkpn, which never imports the toolkit.) Every function takes one box (4 or 8 numbers) or an
``(N, 4)`` / ``(N, 8)`` array and returns float64 numpy arrays of the same leading shape.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "xywh_to_pixel_center",
    "xywh_to_vot_polygon",
    "polygon_bounds",
    "axis_aligned_center",
    "init_box_from_gt",
]


def _arr(box: Sequence[float] | np.ndarray, n: int | tuple[int, ...] = 4) -> np.ndarray:
    a = np.asarray(box, dtype=np.float64)
    sizes = (n,) if isinstance(n, int) else n
    if a.ndim not in (1, 2) or a.shape[-1] not in sizes:
        raise ValueError(f"expected a box of {' or '.join(map(str, sizes))} numbers (or an N x that array), "
                         f"got shape {a.shape}")
    return a


def xywh_to_pixel_center(box: Sequence[float] | np.ndarray) -> np.ndarray:
    """``x, y, w, h`` -> pixel centre ``x + (w-1)/2, y + (h-1)/2, w, h`` (test script, OTB precision)."""
    a = _arr(box)
    return np.stack([a[..., 0] + (a[..., 2] - 1) / 2, a[..., 1] + (a[..., 3] - 1) / 2, a[..., 2], a[..., 3]],
                    axis=-1)


def xywh_to_vot_polygon(box: Sequence[float] | np.ndarray) -> np.ndarray:
    """4-value ground truth -> 8-value polygon as the published VOT test loop builds it.

    The corners are ``(x, y), (x, y+h-1), (x+w-1, y+h-1), (x+w-1, y)``: inclusive pixel extents, which
    is not the region library's own box-to-polygon rule (``x + w``); the two serve different steps.
    """
    a = _arr(box)
    x, y = a[..., 0], a[..., 1]
    x2, y2 = x + a[..., 2] - 1, y + a[..., 3] - 1
    return np.stack([x, y, x, y2, x2, y2, x2, y], axis=-1)


def polygon_bounds(poly: Sequence[float] | np.ndarray) -> np.ndarray:
    """8-value polygon -> its min/max axis-aligned ``x, y, w, h`` (the pysot json ``init_rect`` of VOT)."""
    a = _arr(poly, 8)
    xs, ys = a[..., 0::2], a[..., 1::2]
    x1, y1 = xs.min(axis=-1), ys.min(axis=-1)
    return np.stack([x1, y1, xs.max(axis=-1) - x1, ys.max(axis=-1) - y1], axis=-1)


def axis_aligned_center(region: Sequence[float] | np.ndarray) -> tuple[float, float, float, float]:
    """One ground-truth region (4 or 8 values) -> ``cx, cy, w, h`` as the published test script computes it.

    A polygon becomes the axis-aligned box of equal area about the corners' mean: with A1 the product of
    the first two edge lengths and A2 the min/max box area, ``s = sqrt(A1/A2)``, ``w = s*(x2-x1) + 1``,
    ``h = s*(y2-y1) + 1``. A box ``x, y, w, h`` gives its continuous centre ``x + w/2``.
    """
    r = _arr(region, (4, 8))
    if r.ndim != 1:
        raise ValueError(f"expected one region, got shape {r.shape}")
    if r.size == 8:
        # Operation order follows the published code so the init box is bit-identical.
        cx, cy = np.mean(r[0::2]), np.mean(r[1::2])
        x1, x2 = min(r[0::2]), max(r[0::2])
        y1, y2 = min(r[1::2]), max(r[1::2])
        a1 = np.linalg.norm(r[0:2] - r[2:4]) * np.linalg.norm(r[2:4] - r[4:6])
        a2 = (x2 - x1) * (y2 - y1)
        s = np.sqrt(a1 / a2)
        w, h = s * (x2 - x1) + 1, s * (y2 - y1) + 1
    else:
        x, y, w, h = r
        cx, cy = x + w / 2, y + h / 2
    return float(cx), float(cy), float(w), float(h)


def init_box_from_gt(region: Sequence[float] | np.ndarray) -> list[float]:
    """Initialisation box ``[cx - (w-1)/2, cy - (h-1)/2, w, h]`` of a ground-truth region (4 or 8 values).

    For a 4-value ``x, y, w, h`` this is ``[x + 0.5, y + 0.5, w, h]``, the first line of a one-pass result.
    """
    cx, cy, w, h = axis_aligned_center(region)
    return [cx - (w - 1) / 2, cy - (h - 1) / 2, w, h]
