"""GOT-10k (val / test): pysot json or the native download.

Native layout: ``<split>/list.txt`` (else every folder with a ground truth), ``<seq>/groundtruth.txt``,
``<seq>/00000001.jpg…``, and on the val split ``absence.label`` (1 = target absent) or ``cover.label``
(0 = not visible). The test split annotates the first frame only: later frames get NaN boxes.
``GOT-10k`` reads ``root`` itself (or ``root/val`` when root only holds the splits);
``GOT-10k-val`` / ``GOT-10k-test`` pick ``root/val`` / ``root/test`` when present.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from toolkit.datasets.parse import DatasetError, list_images, read_boxes, read_flags
from toolkit.datasets.pysot_json import videos_from_json
from toolkit.datasets.video import Dataset, Video, nan_box
from toolkit.datasets.vot import sequence_names

__all__ = ["load", "split_root"]


def split_root(name: str, root: Path) -> Path:
    """The folder holding the sequences of ``name``'s split."""
    split = {"GOT-10k-val": "val", "GOT-10k-test": "test"}.get(name, "val")
    if (root / split).is_dir() and not (root / "list.txt").is_file():
        return root / split
    return root


def load(name: str, root: Path, json_path: Optional[Path], load_img: bool = False) -> Dataset:
    """A GOT-10k split; results use the GOT-10k layout (``<video>/<video>_001.txt``)."""
    if json_path is not None:
        videos = videos_from_json(json_path, root, result_kind="got10k", first_frame_only=True, load_img=load_img)
        return Dataset(name, root, videos, "json", json_path)
    base = split_root(name, root)
    videos = []
    for seq in sequence_names(base):
        seq_dir = base / seq
        gt_file = seq_dir / "groundtruth.txt"
        gt = read_boxes(gt_file, (4,))
        images = list_images(seq_dir)
        if len(gt) == 1 and len(images) > 1:
            gt = gt + [nan_box() for _ in images[1:]]  # test split: first frame only
        elif len(gt) != len(images):
            raise DatasetError(f"{gt_file}: {len(gt)} boxes for {len(images)} frames")
        absent = None
        if (seq_dir / "absence.label").is_file():
            absent = [bool(a) for a in read_flags(seq_dir / "absence.label", len(images))]
        elif (seq_dir / "cover.label").is_file():
            absent = [c == 0 for c in _read_cover(seq_dir / "cover.label", len(images))]
        img_names = [str(p.relative_to(root)) for p in images]
        videos.append(Video(seq, root, str(seq_dir.relative_to(root)), gt[0], img_names, gt, absent=absent,
                            result_kind="got10k", load_img=load_img, source=base))
    return Dataset(name, root, videos, "native")


def _read_cover(path: Path, length: int) -> list[int]:
    # cover.label holds visible-fraction levels 0..8, not 0/1 flags.
    lines = [s.strip() for s in path.read_text().splitlines() if s.strip()]
    try:
        values = [int(s) for s in lines]
    except ValueError:
        raise DatasetError(f"{path}: cover levels must be integers") from None
    if len(values) != length:
        raise DatasetError(f"{path}: {len(values)} values, expected {length} (one per frame)")
    return values
