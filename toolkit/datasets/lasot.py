"""LaSOT: pysot json or the native download.

Native layout: ``<root>/<class>/<class>-N/`` (or ``<root>/<class>-N/``) with ``groundtruth.txt``,
``full_occlusion.txt``, ``out_of_view.txt`` (comma-separated 0/1) and ``img/00000001.jpg``. A
``testing_set.txt`` in the root selects the sequences (the 280-video test set).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from toolkit.datasets.parse import DatasetError, list_images, read_boxes, read_flags, read_names
from toolkit.datasets.pysot_json import videos_from_json
from toolkit.datasets.video import Dataset, Video
from toolkit.names import check_name

__all__ = ["load"]


def load(name: str, root: Path, json_path: Optional[Path], load_img: bool = False) -> Dataset:
    """LaSOT from ``root``; ``Video.absent`` is full occlusion or out of view."""
    if json_path is not None:
        videos = videos_from_json(json_path, root, result_kind="ope", with_absent=True, load_img=load_img)
        return Dataset(name, root, videos, "json", json_path)
    seq_dirs = _sequence_dirs(root)
    split = root / "testing_set.txt"
    if split.is_file():
        wanted = read_names(split)
        for seq in wanted:
            check_name(seq, "sequence name", split)
        missing = [s for s in wanted if s not in seq_dirs]
        if missing:
            raise DatasetError(f"{split}: sequences not found under {root}: {', '.join(missing[:8])}")
        seq_dirs = {s: seq_dirs[s] for s in wanted}
    videos = [_video(seq, d, root, load_img) for seq, d in seq_dirs.items()]
    return Dataset(name, root, videos, "native")


def _sequence_dirs(root: Path) -> dict[str, Path]:
    found = {p.parent.name: p.parent for p in root.glob("*/groundtruth.txt")}
    found.update({p.parent.name: p.parent for p in root.glob("*/*/groundtruth.txt")})
    return dict(sorted(found.items()))


def _video(seq: str, seq_dir: Path, root: Path, load_img: bool) -> Video:
    gt = read_boxes(seq_dir / "groundtruth.txt", (4,))
    images = list_images(seq_dir / "img")
    if len(images) != len(gt):
        raise DatasetError(f"{seq_dir / 'img'}: {len(images)} frames but groundtruth.txt has {len(gt)} lines")
    absent = None
    for flag_file in (seq_dir / "full_occlusion.txt", seq_dir / "out_of_view.txt"):
        if flag_file.is_file():
            flags = np.asarray(read_flags(flag_file, len(gt)), dtype=bool)
            absent = flags if absent is None else absent | flags
    img_names = [str(p.relative_to(root)) for p in images]
    return Video(seq, root, str(seq_dir.relative_to(root)), gt[0], img_names, gt, absent=absent,
                 result_kind="ope", load_img=load_img, source=root)
