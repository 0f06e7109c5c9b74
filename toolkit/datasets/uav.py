"""UAV123 and UAV20L: pysot json or the native download.

Native layout: ``<root>/anno/<NAME>/<seq>.txt`` (``x,y,w,h``; NaN lines where the target is out of
view) and ``<root>/data_seq/UAV123/<folder>/000001.jpg``. UAV123 cuts some long recordings into
sub-sequences ``<folder>_<k>``; each starts at the frame ``SUBSEQ_START`` gives (the benchmark's
configuration) and runs for as many frames as its annotation has lines.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional

from toolkit.datasets.parse import DatasetError, read_boxes
from toolkit.datasets.pysot_json import videos_from_json
from toolkit.datasets.video import Dataset, Video

__all__ = ["load", "SUBSEQ_START"]

# 1-based first frame of the UAV123 sub-sequences that do not start at frame 1.
SUBSEQ_START = {
    "bird1_2": 775, "bird1_3": 1573, "car1_2": 751, "car1_3": 1627, "car16_2": 415, "car6_2": 487,
    "car6_3": 1807, "car6_4": 2953, "car6_5": 3925, "car8_2": 1357, "group1_2": 1333, "group1_3": 2515,
    "group1_4": 3925, "group2_2": 907, "group2_3": 1771, "group3_2": 1567, "group3_3": 2827, "group3_4": 4369,
    "person12_2": 601, "person14_2": 847, "person14_3": 1813, "person17_2": 1501, "person19_2": 1243,
    "person19_3": 2791, "person2_2": 1189, "person4_2": 1501, "person5_2": 877, "person7_2": 1249,
    "person8_2": 1075, "truck4_2": 577, "uav1_2": 1555, "uav1_3": 2473,
}


def load(name: str, root: Path, json_path: Optional[Path], load_img: bool = False) -> Dataset:
    """UAV123 / UAV20L from ``root`` (NaN ground truth kept, ``Video.absent`` marks it)."""
    if json_path is not None:
        videos = videos_from_json(json_path, root, result_kind="ope", allow_nan=True, load_img=load_img)
        return Dataset(name, root, videos, "json", json_path)
    anno_dir = root / "anno" / name
    if not anno_dir.is_dir():
        raise DatasetError(f"{name}: annotation folder {anno_dir} not found (expected anno/{name}/<seq>.txt)")
    videos = [_video(f, root, load_img) for f in sorted(anno_dir.glob("*.txt"))]
    return Dataset(name, root, videos, "native")


def _video(anno_file: Path, root: Path, load_img: bool) -> Video:
    seq = anno_file.stem
    gt = read_boxes(anno_file, (4,), allow_nan=True)
    if math.isnan(gt[0][0]):
        raise DatasetError(f"{anno_file}, line 1: the first frame must show the target")
    frames = root / "data_seq" / "UAV123"
    folder, start = seq, 1
    m = re.fullmatch(r"(.+)_(\d+)", seq)
    if not (frames / seq).is_dir() and m is not None:
        folder, start = m.group(1), SUBSEQ_START.get(seq, 1)
    seq_dir = frames / folder
    last = start + len(gt) - 1
    for k in (start, last):
        if not (seq_dir / f"{k:06d}.jpg").is_file():
            raise DatasetError(f"{anno_file}: needs frames {start}..{last} but {seq_dir / f'{k:06d}.jpg'} "
                               "is missing")
    img_names = [str((seq_dir / f"{k:06d}.jpg").relative_to(root)) for k in range(start, last + 1)]
    absent = [math.isnan(b[0]) for b in gt]
    return Video(seq, root, str(seq_dir.relative_to(root)), gt[0], img_names, gt, absent=absent,
                 result_kind="ope", load_img=load_img, source=anno_file.parent)
