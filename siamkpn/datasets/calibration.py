"""(template, search) crop pairs for the ONNX export: its PyTorch comparison and its int8 calibration.

The crops are cut as the tracker cuts them (`siamkpn.tracker.subwindow`), as float32 [1,3,E,E] / [1,3,X,X]
arrays: from a pysot crop511 training set (never a benchmark), or from a rendered synthetic video when there is
no training set to hand. `siamkpn.models.onnx_export` takes them as arguments.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from siamkpn.datasets.synthetic import render_video
from siamkpn.tracker.subwindow import get_subwindow
from toolkit.errors import BadInput

__all__ = ["CalibrationSetError", "calibration_pairs", "synthetic_pairs", "check_pairs"]

Pair = Tuple[np.ndarray, np.ndarray]


class CalibrationSetError(BadInput, ValueError):
    """The calibration set holds no crop511 training crops, or one of them cannot be read."""


def _chw(crop: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None].astype(np.float32))


def _crop(img: np.ndarray, center: Tuple[float, float], size: int) -> np.ndarray:
    return get_subwindow(img, np.asarray(center, dtype=np.float64), size, size, img.mean(axis=(0, 1)))


def calibration_pairs(root: str, exemplar: int, instance: int, count: int, seed: int = 0) -> List[Pair]:
    """`count` (template, search) crop pairs [1,3,E,E] / [1,3,X,X] from a pysot crop511 training set under `root`.

    Each crop511 image has its target centred at the exemplar scale (pysot's layout), so the template is the
    centre E x E and the search region an X x X crop around a shifted centre of another frame of the same track.
    Raises CalibrationSetError naming `root` when it holds no `*.x.jpg` crops, or naming a crop it cannot read.
    """
    import cv2

    tracks: Dict[Tuple[Path, str], List[Path]] = {}
    for path in sorted(Path(root).rglob("*.x.jpg")):
        track = path.name.split(".")[1] if path.name.count(".") >= 3 else "00"
        tracks.setdefault((path.parent, track), []).append(path)
    if not tracks:
        raise CalibrationSetError(f"{root}: no crop511 training crops (*.x.jpg) to calibrate on")
    rng = random.Random(seed)
    keys = sorted(tracks)
    pairs = []
    for i in range(count):
        frames = tracks[keys[rng.randrange(len(keys))] if i >= len(keys) else keys[i * len(keys) // count]]
        first, second = rng.choice(frames), rng.choice(frames)
        z_img, x_img = cv2.imread(str(first)), cv2.imread(str(second))
        if z_img is None or x_img is None:
            raise CalibrationSetError(f"cannot read the training crop {first if z_img is None else second}")
        c = (z_img.shape[1] - 1) / 2, (z_img.shape[0] - 1) / 2
        shift = rng.uniform(-0.1, 0.1) * instance, rng.uniform(-0.1, 0.1) * instance
        pairs.append((_chw(_crop(z_img, c, exemplar)), _chw(_crop(x_img, (c[0] + shift[0], c[1] + shift[1]),
                                                                     instance))))
    return pairs


def synthetic_pairs(exemplar: int, instance: int, count: int, seed: int = 0) -> List[Pair]:
    """(template, search) crop pairs from a rendered synthetic video (for checking without a training set)."""
    video = render_video(np.random.default_rng(seed), count + 1)
    x1, y1, x2, y2 = video.boxes[0]
    w, h = x2 - x1, y2 - y1
    s_z = float(np.sqrt((w + (w + h) / 2) * (h + (w + h) / 2)))
    avg = video.frames[0].mean(axis=(0, 1))
    cz = ((x1 + x2 - 1) / 2, (y1 + y2 - 1) / 2)
    pairs = []
    for t in range(1, count + 1):
        bx1, by1, bx2, by2 = video.boxes[t]
        cx = ((bx1 + bx2 - 1) / 2, (by1 + by2 - 1) / 2)
        z = get_subwindow(video.frames[0], np.asarray(cz), exemplar, round(s_z), avg)
        x = get_subwindow(video.frames[t], np.asarray(cx), instance, round(s_z * instance / exemplar), avg)
        pairs.append((_chw(z), _chw(x)))
    return pairs


def check_pairs(calib: Optional[str], exemplar: int, instance: int, count: int = 4) -> Tuple[List[Pair], str]:
    """The crops an export is compared with PyTorch on, and what they are (recorded in its settings): held-out pairs
    of the calibration set `calib` (another seed than the calibration's), else a rendered synthetic video."""
    if calib:
        return calibration_pairs(calib, exemplar, instance, count, seed=1), "calibration set (held-out pairs)"
    return synthetic_pairs(exemplar, instance, count), "rendered synthetic video"
