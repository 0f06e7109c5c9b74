"""pysot's prepared training crops: the 511x511 search-area crop around each annotated box.

A box (x1, y1, x2, y2) in frame pixels gets the SiamFC context square s_z = sqrt((w + c(w+h))(h + c(w+h)))
with c = 0.5; the saved crop covers s_x = s_z * 511 / 127 centred on the box, so the exemplar-sized
context square maps to 127 pixels and the target always sits at the crop centre ((511-1)/2, (511-1)/2).
Pixels outside the frame take the frame's mean colour. This is pysot's `crop_like_SiamFC` (search crop),
used unchanged by every `scripts/prepare_dataset.py` source and by the synthetic data generator.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Optional, Sequence, Tuple

import cv2
import numpy as np

from toolkit.atomic import atomic_write

__all__ = [
    "INSTANCE_SIZE", "EXEMPLAR_SIZE", "CONTEXT_AMOUNT", "crop_path", "search_region", "crop_hwc",
    "crop_like_siamfc", "write_image_atomic", "write_json_atomic",
]

INSTANCE_SIZE = 511
EXEMPLAR_SIZE = 127
CONTEXT_AMOUNT = 0.5


def crop_path(crop_root: str, video: str, frame: int, track: str) -> str:
    """Path of a prepared search crop: `<crop_root>/<video>/<frame:06d>.<track>.x.jpg`."""
    return os.path.join(crop_root, video, f"{int(frame):06d}.{track}.x.jpg")


def search_region(box: Sequence[float], context_amount: float = CONTEXT_AMOUNT, exemplar_size: int = EXEMPLAR_SIZE,
                  instance_size: int = INSTANCE_SIZE) -> Tuple[float, float, float, float]:
    """The square (x1, y1, x2, y2) of frame pixels that the `instance_size` crop of `box` covers."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if not (w > 0 and h > 0):
        raise ValueError(f"box {list(box)} has no area (w={w}, h={h})")
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    context = context_amount * (w + h)
    s_z = math.sqrt((w + context) * (h + context))
    # pysot: s_x = s_z + 2 * pad with pad = (instance - exemplar) / 2 / (exemplar / s_z)
    s_x = s_z + (instance_size - exemplar_size) * s_z / exemplar_size
    return cx - s_x / 2.0, cy - s_x / 2.0, cx + s_x / 2.0, cy + s_x / 2.0


def crop_hwc(image: np.ndarray, region: Sequence[float], out_size: int,
             padding: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Warp `region` (x1, y1, x2, y2) of `image` onto an out_size square (corners onto pixels 0 and out_size-1)."""
    x1, y1, x2, y2 = (float(v) for v in region)
    a = (out_size - 1) / (x2 - x1)
    b = (out_size - 1) / (y2 - y1)
    mapping = np.array([[a, 0.0, -a * x1], [0.0, b, -b * y1]], dtype=np.float64)
    return cv2.warpAffine(image, mapping, (out_size, out_size), borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in padding))


def crop_like_siamfc(image: np.ndarray, box: Sequence[float], instance_size: int = INSTANCE_SIZE,
                     context_amount: float = CONTEXT_AMOUNT, exemplar_size: int = EXEMPLAR_SIZE,
                     padding: Optional[Sequence[float]] = None) -> np.ndarray:
    """The pysot training crop of `box` (corners, frame pixels); padding defaults to the frame's mean colour."""
    if padding is None:
        padding = image.reshape(-1, image.shape[2]).mean(axis=0)
    region = search_region(box, context_amount, exemplar_size, instance_size)
    return crop_hwc(image, region, instance_size, padding)


def write_image_atomic(path: str, image: np.ndarray, quality: int = 95) -> None:
    """Encode `image` (JPEG for .jpg/.jpeg, else by extension) and write it atomically.

    Atomic (toolkit.atomic): an interrupted run never leaves a half-written crop under its final name,
    so "the file exists" means "the file is complete" when a preparation resumes.
    """
    ext = os.path.splitext(path)[1].lower() or ".jpg"
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise OSError(f"cannot encode image for {path}")
    atomic_write(path, buf.tobytes())


def write_json_atomic(path: str, data: Any, indent: Optional[int] = None) -> None:
    """Write `data` as JSON (sorted keys) atomically."""
    atomic_write(path, json.dumps(data, indent=indent, sort_keys=True).encode("utf-8"))
