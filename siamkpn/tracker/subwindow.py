"""The square crop around the target that the tracker feeds to the model (pysot's `get_subwindow`).

Only the crop window is built (not a padded copy of the whole frame): pixels outside the frame take the
channel-average colour, written into a uint8 array as the published code does (127.8 -> 127).
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

__all__ = ["crop_window", "get_subwindow", "check_image"]


def check_image(img: np.ndarray) -> np.ndarray:
    """Return `img` if it is an HxWx3 uint8 array (BGR, as OpenCV reads it), else raise ValueError."""
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        desc = f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ValueError(f"expected an HxWx3 uint8 BGR image, got {desc}")
    return img


def crop_window(pos: Sequence[float], original_sz: int) -> tuple:
    """Top-left corner (xmin, ymin) of the `original_sz` square centred on `pos`, as integers."""
    half = (original_sz + 1) / 2
    # floor(v + 0.5) rather than round(): the published code's choice, ties go up
    return int(math.floor(pos[0] - half + 0.5)), int(math.floor(pos[1] - half + 0.5))


def get_subwindow(img: np.ndarray, pos: Sequence[float], model_sz: int, original_sz: int,
                  avg_chans: Sequence[float]) -> np.ndarray:
    """Crop the `original_sz` square centred on `pos` (x, y), pad with `avg_chans`, resize to `model_sz`.

    Returns a contiguous uint8 array [model_sz, model_sz, 3]; resizing is cv2.resize's bilinear default.
    """
    check_image(img)
    original_sz = int(original_sz)
    if original_sz < 1:
        raise ValueError(f"crop size must be positive, got {original_sz}")
    height, width = img.shape[:2]
    xmin, ymin = crop_window(pos, original_sz)
    x0, y0 = max(xmin, 0), max(ymin, 0)
    x1, y1 = min(xmin + original_sz, width), min(ymin + original_sz, height)
    if x0 == xmin and y0 == ymin and x1 == xmin + original_sz and y1 == ymin + original_sz:
        patch = img[y0:y1, x0:x1]
    else:
        patch = np.empty((original_sz, original_sz, 3), np.uint8)
        patch[...] = np.asarray(avg_chans, dtype=np.float64).astype(np.uint8)  # truncation, as numpy casts
        if x1 > x0 and y1 > y0:
            patch[y0 - ymin:y1 - ymin, x0 - xmin:x1 - xmin] = img[y0:y1, x0:x1]
    if original_sz != model_sz:
        patch = cv2.resize(patch, (int(model_sz), int(model_sz)))
    return np.ascontiguousarray(patch)
