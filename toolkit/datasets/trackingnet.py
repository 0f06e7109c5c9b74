"""TrackingNet: pysot json or the native download (``TEST`` split by default).

Native layout: ``<root>/TEST/anno/<seq>.txt`` (first frame only on TEST) and
``<root>/TEST/frames/<seq>/0.jpg, 1.jpg, …``; ``root`` may also be the split folder itself (holding
``anno/`` and ``frames/``), e.g. a ``TRAIN_k`` chunk with full annotations.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from toolkit.datasets.parse import DatasetError, list_images, read_boxes
from toolkit.datasets.pysot_json import videos_from_json
from toolkit.datasets.video import Dataset, Video, nan_box

__all__ = ["load"]


def load(name: str, root: Path, json_path: Optional[Path], load_img: bool = False) -> Dataset:
    """TrackingNet from ``root``; test videos carry NaN boxes after the first frame."""
    if json_path is not None:
        videos = videos_from_json(json_path, root, result_kind="ope", first_frame_only=True, load_img=load_img)
        return Dataset(name, root, videos, "json", json_path)
    base = root / "TEST" if (root / "TEST").is_dir() and not (root / "anno").is_dir() else root
    anno_dir = base / "anno"
    if not anno_dir.is_dir():
        raise DatasetError(f"{name}: {anno_dir} not found (expected TEST/anno/<seq>.txt and TEST/frames/<seq>/)")
    videos = []
    for anno_file in sorted(anno_dir.glob("*.txt")):
        seq = anno_file.stem
        images = list_images(base / "frames" / seq)
        gt = read_boxes(anno_file, (4,))
        if len(gt) == 1 and len(images) > 1:
            gt = gt + [nan_box() for _ in images[1:]]
        elif len(gt) != len(images):
            raise DatasetError(f"{anno_file}: {len(gt)} boxes for {len(images)} frames")
        img_names = [str(p.relative_to(root)) for p in images]
        videos.append(Video(seq, root, str((base / "frames" / seq).relative_to(root)), gt[0], img_names, gt,
                            result_kind="ope", load_img=load_img, source=anno_dir))
    return Dataset(name, root, videos, "native")
