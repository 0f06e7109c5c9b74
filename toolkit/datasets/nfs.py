"""Need for Speed (NFS30 / NFS240): pysot json or the native download.

Native layout: ``<root>/<seq>/<fps>/<seq>.txt`` and frames ``<root>/<seq>/<fps>/<seq>/00001.jpg``. The
annotation lines are ``id xmin ymin xmax ymax frame lost occluded generated "label"``; a 30 fps
folder may carry the 240 fps annotation, which is then sampled every 8th line (as got10k does).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from toolkit.datasets.parse import DatasetError, list_images
from toolkit.datasets.pysot_json import videos_from_json
from toolkit.datasets.video import Dataset, Video

__all__ = ["load", "read_nfs_anno"]


def load(name: str, root: Path, json_path: Optional[Path], load_img: bool = False) -> Dataset:
    """NFS30 or NFS240 from ``root``."""
    if json_path is not None:
        videos = videos_from_json(json_path, root, result_kind="ope", load_img=load_img)
        return Dataset(name, root, videos, "json", json_path)
    fps = {"NFS30": "30", "NFS240": "240"}[name]
    videos = []
    for anno_file in sorted(root.glob(f"*/{fps}/*.txt")):
        seq = anno_file.stem
        images = list_images(anno_file.parent / seq)
        gt = read_nfs_anno(anno_file)
        if len(gt) != len(images) and abs(len(gt) / max(len(images), 1) - 8) < 1:
            gt = gt[0::8]
        if 0 < abs(len(gt) - len(images)) <= 1:
            n = min(len(gt), len(images))
            gt, images = gt[:n], images[:n]
        if len(gt) != len(images):
            raise DatasetError(f"{anno_file}: {len(gt)} boxes for {len(images)} frames in {anno_file.parent / seq}")
        img_names = [str(p.relative_to(root)) for p in images]
        videos.append(Video(seq, root, str((anno_file.parent / seq).relative_to(root)), gt[0], img_names, gt,
                            result_kind="ope", load_img=load_img, source=anno_file.parent))
    return Dataset(name, root, videos, "native")


def read_nfs_anno(path: Path) -> list[list[float]]:
    """NFS annotation -> ``x, y, w, h`` boxes (from columns xmin, ymin, xmax, ymax)."""
    boxes = []
    for i, raw in enumerate(Path(path).read_text().splitlines(), 1):
        tok = raw.split()
        if not tok:
            continue
        try:
            x1, y1, x2, y2 = (float(v) for v in tok[1:5])
        except ValueError:
            raise DatasetError(f"{path}, line {i}: expected 'id xmin ymin xmax ymax …': {raw[:60]!r}") from None
        boxes.append([x1, y1, x2 - x1, y2 - y1])
    if not boxes:
        raise DatasetError(f"{path}: empty annotation file")
    return boxes
