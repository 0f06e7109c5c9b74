"""Keypoint training labels of SiamKPN: per-stage Gaussian heat maps, sub-cell offsets and object size.

Label geometry (MODEL_SPEC "Training labels"): the output grid of `size` x `size` cells sits centred on
the search crop with one cell per `STRIDE` pixels; a target of centre (tcx, tcy) lands at grid position
hx = size//2 + (tcx - (SEARCH_SIZE-1)/2) / STRIDE (hy likewise). Cells closer than R = OUTPUT_SIZE/8 to
(hx, hy) get a Gaussian value (the peak cell round(hy), round(hx) exactly 1), the offset from their
keypoint to the target centre and the target size.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["KeypointTarget", "stage_sigmas"]

# Published variance decay per stage (paper: 1, 0.9, 0.81); later stages continue the geometric series.
_DECAY = 0.9
# Offsets and the NORMWH log-size are expressed in units of 64 search-crop pixels.
_UNIT = 64.0


def stage_sigmas(base_sigma: float, stack: int, dif_std: bool, compat_reference: bool = False) -> Tuple[float, ...]:
    """Gaussian sigma of each stage: sigma*0.9**s with DIF_STD, else sigma (compat: all take the last stage's)."""
    sigmas = [base_sigma * _DECAY**s if dif_std else base_sigma for s in range(stack)]
    if compat_reference:
        # Published defect: one array shared by every stage, written stage by stage, so the last one wins.
        sigmas = [sigmas[-1]] * stack
    return tuple(sigmas)


class KeypointTarget:
    """Builds (heatmaps [S,1,O,O], offsets [2,O,O], objsize [2,O,O]) float32 labels from a corner box.

    Args:
        cfg: the experiment config (its `TRAIN` node is read: OUTPUT_SIZE, SEARCH_SIZE, STRIDE, STACK,
            DIF_STD, OFFSETS, SAMEOFF, NORMWH, COMPAT_REFERENCE); a bare `TRAIN` node is accepted too.
    """

    def __init__(self, cfg) -> None:
        train = cfg.TRAIN if hasattr(cfg, "TRAIN") else cfg
        self.output_size = int(train.OUTPUT_SIZE)
        self.search_size = int(train.SEARCH_SIZE)
        self.stride = float(train.STRIDE)
        # The published code treats STACK 0 as a single (non-cascaded) stage.
        self.stack = max(int(train.STACK), 1)
        self.use_offsets = bool(train.OFFSETS)
        self.same_offsets = bool(train.SAMEOFF)
        self.norm_wh = bool(train.NORMWH)
        self.compat_reference = bool(train.COMPAT_REFERENCE)
        if self.output_size <= 0 or self.stride <= 0:
            raise ValueError(
                f"TRAIN.OUTPUT_SIZE and TRAIN.STRIDE must be positive, got {self.output_size} and {self.stride}"
            )
        self._crop_centre = (self.search_size - 1) / 2.0
        self.radius = self.output_size / 8.0
        self.sigma = self.radius / 2.0
        self.sigmas = stage_sigmas(self.sigma, self.stack, bool(train.DIF_STD), self.compat_reference)
        self._two_var = np.array([2.0 * sigma**2 for sigma in self.sigmas])[:, None, None]

    def _zeros(self, size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.zeros((self.stack, 1, size, size), dtype=np.float32),
            np.zeros((2, size, size), dtype=np.float32),
            np.zeros((2, size, size), dtype=np.float32),
        )

    def __call__(
        self, box_corner: Sequence[float], size: Optional[int] = None, neg: bool = False
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels for the corner box (x1, y1, x2, y2) in search-crop pixels; all zero for a negative pair.

        `size` (default OUTPUT_SIZE) is the grid side, centred on the crop at cell size//2; R stays OUTPUT_SIZE/8.
        """
        size = self.output_size if size is None else int(size)
        if size <= 0:
            raise ValueError(f"KeypointTarget: output size must be positive, got {size}")
        heatmaps, offsets, objsize = self._zeros(size)
        if neg:
            return heatmaps, offsets, objsize

        box = np.asarray(box_corner, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not all(math.isfinite(v) for v in box.tolist()):
            raise ValueError(f"KeypointTarget: box_corner must be 4 finite values x1,y1,x2,y2, got {box_corner!r}")
        x1, y1, x2, y2 = box.tolist()
        tcx, tcy = (x1 + x2) * 0.5, (y1 + y2) * 0.5
        tw, th = x2 - x1, y2 - y1
        if self.norm_wh and (tw <= 0 or th <= 0):
            raise ValueError(f"KeypointTarget: TRAIN.NORMWH needs a positive box size, got w={tw}, h={th}")

        half = size // 2
        hx = half + (tcx - self._crop_centre) / self.stride
        hy = half + (tcy - self._crop_centre) / self.stride
        # Only cells within R of (hx, hy) are labelled: compute on that window of the grid, clipped to it.
        rows = np.arange(max(math.floor(hy - self.radius), 0), min(math.ceil(hy + self.radius) + 1, size))
        cols = np.arange(max(math.floor(hx - self.radius), 0), min(math.ceil(hx + self.radius) + 1, size))
        if rows.size and cols.size:
            window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            rows_f, cols_f = rows.astype(np.float64)[:, None], cols.astype(np.float64)[None, :]
            dist2 = (rows_f - hy) ** 2 + (cols_f - hx) ** 2
            inside = np.sqrt(dist2) < self.radius
            heatmaps[(slice(None), 0) + window] = np.where(inside, np.exp(-dist2 / self._two_var), 0.0)
            if self.use_offsets:
                if self.same_offsets:
                    offsets[(0,) + window] = np.where(inside, (hx - round(hx)) * self.stride / _UNIT, 0.0)
                    offsets[(1,) + window] = np.where(inside, (hy - round(hy)) * self.stride / _UNIT, 0.0)
                else:
                    # float32 arithmetic (float32 keypoint grid): the published labels bit for bit.
                    unit = np.float32(_UNIT)
                    kx = (self._crop_centre + self.stride * (cols_f - half)).astype(np.float32)
                    ky = (self._crop_centre + self.stride * (rows_f - half)).astype(np.float32)
                    offsets[(0,) + window] = np.where(inside, (np.float32(tcx) - kx) / unit, 0.0)
                    offsets[(1,) + window] = np.where(inside, (np.float32(tcy) - ky) / unit, 0.0)
            size_w, size_h = (math.log(tw / _UNIT), math.log(th / _UNIT)) if self.norm_wh else (tw, th)
            objsize[(0,) + window] = np.where(inside, size_w, 0.0)
            objsize[(1,) + window] = np.where(inside, size_h, 0.0)
        # Python's round: ties to even, as the published labels (and the tracker's grid) expect.
        px, py = round(hx), round(hy)
        if 0 <= px < size and 0 <= py < size:
            heatmaps[:, 0, py, px] = 1.0
        return heatmaps, offsets, objsize
