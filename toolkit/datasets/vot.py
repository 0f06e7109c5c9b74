"""VOT2016/2017/2018/2019 (reset-based) and VOT2018-LT: pysot json or the native VOT layout.

Native layout: ``<root>/list.txt`` (else every folder with a ground truth), ``<seq>/groundtruth.txt``
(8-value polygons or 4-value boxes), per-frame tags ``<seq>/<tag>.tag`` or ``<tag>.label`` (a missing
tag file means the tag never occurs) and frames in ``<seq>/color/``, ``<seq>/`` or ``<seq>/img/``.
VOT2018-LT annotates absent targets with NaN boxes, which become pysot's ``[0]`` (``Video.absent`` True).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from toolkit.boxes import polygon_bounds
from toolkit.datasets.parse import DatasetError, list_images, read_boxes, read_flags, read_names
from toolkit.datasets.pysot_json import videos_from_json
from toolkit.datasets.video import VOT_TAGS, Dataset, Video
from toolkit.names import check_name

__all__ = ["load", "load_lt", "sequence_names", "find_frames"]


def load(name: str, root: Path, json_path: Optional[Path], load_img: bool = False) -> Dataset:
    """A reset-based VOT dataset (tags included) from ``root``."""
    if json_path is not None:
        videos = videos_from_json(json_path, root, result_kind="vot", widths=(4, 8), with_tags=True,
                                  load_img=load_img)
        return Dataset(name, root, videos, "json", json_path)
    videos = []
    for seq in sequence_names(root):
        seq_dir = root / seq
        gt = read_boxes(seq_dir / "groundtruth.txt", (4, 8))
        img_names = find_frames(root, seq_dir, len(gt))
        tags = {}
        for tag in VOT_TAGS:
            files = [f for f in (seq_dir / f"{tag}.tag", seq_dir / f"{tag}.label") if f.is_file()]
            tags[tag] = read_flags(files[0], len(gt)) if files else [0] * len(gt)
        init = polygon_bounds(gt[0]).tolist() if len(gt[0]) == 8 else gt[0]
        videos.append(Video(seq, root, seq, init, img_names, gt, tags=tags, result_kind="vot", load_img=load_img,
                            source=root))
    return Dataset(name, root, videos, "native")


def load_lt(name: str, root: Path, json_path: Optional[Path], load_img: bool = False) -> Dataset:
    """VOT2018-LT (long-term: NaN boxes mark frames without the target)."""
    if json_path is not None:
        videos = videos_from_json(json_path, root, result_kind="longterm", nan_as_marker=True, load_img=load_img)
    else:
        videos = []
        for seq in sequence_names(root):
            gt_file = root / seq / "groundtruth.txt"
            gt = read_boxes(gt_file, (4,), allow_nan=True)
            if math.isnan(gt[0][0]):
                raise DatasetError(f"{gt_file}, line 1: the first frame must show the target")
            absent = [math.isnan(b[0]) for b in gt]
            gt = [[0.0] if a else b for a, b in zip(absent, gt)]
            img_names = find_frames(root, root / seq, len(gt))
            videos.append(Video(seq, root, seq, gt[0], img_names, gt, absent=absent, result_kind="longterm",
                                load_img=load_img, source=root))
    return Dataset(name, root, videos, "json" if json_path else "native", json_path)


def sequence_names(root: Path) -> list[str]:
    """Sequences of a VOT-style root: ``list.txt``, else every folder holding a ``groundtruth.txt``."""
    list_file = root / "list.txt"
    if list_file.is_file():
        names = read_names(list_file)
        for i, seq in enumerate(names, 1):
            check_name(seq, "sequence name", f"{list_file}, line {i}")  # before it is used as a path
            if not (root / seq / "groundtruth.txt").is_file():
                raise DatasetError(f"{list_file}, line {i}: {root / seq / 'groundtruth.txt'} not found")
        return names
    return sorted(p.name for p in root.iterdir() if (p / "groundtruth.txt").is_file())


def find_frames(root: Path, seq_dir: Path, n_gt: int) -> list[str]:
    """Frame paths (relative to root) of a VOT-style sequence; their count must match the ground truth."""
    for folder in (seq_dir / "color", seq_dir, seq_dir / "img"):
        if folder.is_dir():
            images = list_images(folder)
            if images:
                if len(images) != n_gt:
                    raise DatasetError(f"{folder}: {len(images)} frames but {seq_dir / 'groundtruth.txt'} "
                                       f"has {n_gt} lines")
                return [str(p.relative_to(root)) for p in images]
    raise DatasetError(f"{seq_dir}: no frames in color/, the sequence folder or img/")
