"""Tiny synthetic benchmarks and snapshots for the tools/test.py tests (a bright box moving on noise)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence, Tuple

import cv2
import numpy as np
import torch

from helpers import tiny_cfg
from siamkpn.models.model_builder import ModelBuilder

FRAMES = 5
BOX_W, BOX_H = 18, 14


def frames(seed: int, positions: Sequence[Tuple[int, int]], size=(48, 64)) -> Iterator[Tuple[np.ndarray, tuple]]:
    """Noise images of `size` (h, w) with the box drawn at each (x, y) of `positions`."""
    rng = np.random.default_rng(seed)
    for x, y in positions:
        img = rng.integers(0, 100, (*size, 3), dtype=np.uint8)
        img[y:y + BOX_H, x:x + BOX_W] = 230
        yield img, (x, y)


def drifting(n: int = FRAMES) -> list:
    """Positions of a box drifting slowly right and down."""
    return [(20 + 2 * i, 12 + i) for i in range(n)]


def write_otb_video(root: Path, name: str, seed: int) -> None:
    """An OTB-layout video `root/name` (img/0001.jpg..., groundtruth_rect.txt)."""
    (root / name / "img").mkdir(parents=True)
    lines = []
    for i, (img, (x, y)) in enumerate(frames(seed, drifting()), 1):
        cv2.imwrite(str(root / name / "img" / f"{i:04d}.jpg"), img)
        lines.append(f"{x},{y},{BOX_W},{BOX_H}")
    (root / name / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")


def write_vot(root: Path, name: str, seed: int, positions: Sequence[Tuple[int, int]], size=(48, 64)) -> None:
    """A VOT2018-layout benchmark `root` with one video (color/00000001.jpg..., polygon groundtruth.txt)."""
    (root / name / "color").mkdir(parents=True)
    polys = []
    for i, (img, (x, y)) in enumerate(frames(seed, positions, size), 1):
        cv2.imwrite(str(root / name / "color" / f"{i:08d}.jpg"), img)
        x2, y2 = x + BOX_W - 1, y + BOX_H - 1
        polys.append(f"{x},{y},{x2},{y},{x2},{y2},{x},{y2}")
    (root / name / "groundtruth.txt").write_text("\n".join(polys) + "\n")
    (root / "list.txt").write_text(f"{name}\n")


def write_vot_lt(root: Path, name: str, seed: int, positions: Sequence[Tuple[int, int]],
                 absent: Sequence[int] = ()) -> None:
    """A VOT2018-LT-layout video `root/name` (color/00000001.jpg..., x,y,w,h groundtruth.txt with NaN lines for
    the frames in `absent`, where no box is drawn) and its list.txt line."""
    (root / name / "color").mkdir(parents=True)
    lines = []
    for i, (img, (x, y)) in enumerate(frames(seed, positions), 1):
        if i - 1 in absent:
            img[:] = np.random.default_rng(seed + i).integers(0, 100, img.shape, dtype=np.uint8)
            lines.append("nan,nan,nan,nan")
        else:
            lines.append(f"{x},{y},{BOX_W},{BOX_H}")
        cv2.imwrite(str(root / name / "color" / f"{i:08d}.jpg"), img)
    (root / name / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    with open(root / "list.txt", "a") as f:
        f.write(f"{name}\n")


def write_got10k(root: Path, name: str, seed: int, positions: Sequence[Tuple[int, int]]) -> None:
    """A GOT-10k-layout (val) video `root/name` (00000001.jpg..., x,y,w,h groundtruth.txt) and its list.txt line."""
    (root / name).mkdir(parents=True)
    lines = []
    for i, (img, (x, y)) in enumerate(frames(seed, positions), 1):
        cv2.imwrite(str(root / name / f"{i:08d}.jpg"), img)
        lines.append(f"{x},{y},{BOX_W},{BOX_H}")
    (root / name / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    with open(root / "list.txt", "a") as f:
        f.write(f"{name}\n")


def write_tiny_snapshot(path: Path, seed: int, stack: int = 1) -> Path:
    """The state dict of a tiny_cfg(stack) model initialised with `seed`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(ModelBuilder(tiny_cfg(stack=stack)).state_dict(), path)
    return path
