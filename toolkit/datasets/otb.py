"""OTB100 / OTB2015 and its subsets OTB2013 (CVPR13) and OTB50 (TB-50): pysot json or the native download.

Native layout: ``<root>/<Seq>/groundtruth_rect.txt`` (commas, tabs or spaces) and ``<Seq>/img/0001.jpg``.
Sequences with two targets carry ``groundtruth_rect.1.txt`` / ``.2.txt`` and become ``<Seq>-1`` /
``<Seq>-2`` (an empty file is skipped, so Human4 gives ``Human4-2``). A few sequences use only part
of their frames, as the benchmark's own configuration does (see ``FRAME_RANGES``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from toolkit.datasets.parse import DatasetError, list_images, read_boxes
from toolkit.datasets.pysot_json import videos_from_json
from toolkit.datasets.video import Dataset, Video

__all__ = ["load", "NAMES", "FRAME_RANGES"]

# 1-based first and last frame of the images a sequence uses (OTB's configSeqs; Tiger1 omits 5 frames).
FRAME_RANGES = {"David": (300, 770), "Football1": (1, 74), "Freeman3": (1, 460), "Freeman4": (1, 283),
                "Diving": (1, 215), "Tiger1": (6, 354)}

OTB2013 = """Basketball Bolt Boy Car4 CarDark CarScale Coke Couple Crossing David David2 David3 Deer Dog1 Doll
Dudek FaceOcc1 FaceOcc2 Fish FleetFace Football Football1 Freeman1 Freeman3 Freeman4 Girl Ironman Jogging-1
Jogging-2 Jumping Lemming Liquor Matrix Mhyang MotorRolling MountainBike Shaking Singer1 Singer2 Skating1 Skiing
Soccer Subway Suv Sylvester Tiger1 Tiger2 Trellis Walking Walking2 Woman""".split()
OTB50 = """Basketball Biker Bird1 BlurBody BlurCar2 BlurFace BlurOwl Bolt Box Car1 Car4 CarDark CarScale ClifBar
Couple Crowds David Deer Diving DragonBaby Dudek Football Freeman4 Girl Human3 Human4-2 Human6 Human9 Ironman Jump
Jumping Liquor Matrix MotorRolling Panda RedTeam Shaking Singer2 Skating1 Skating2-1 Skating2-2 Skiing Soccer Surfer
Sylvester Tiger2 Trellis Walking Walking2 Woman""".split()
# None: every sequence found.
NAMES: dict[str, Optional[list[str]]] = {"OTB100": None, "OTB2015": None, "OTB2013": OTB2013, "CVPR13": OTB2013,
                                         "OTB50": OTB50}
_FULL_JSON = ("OTB100", "OTB2015")


def load(name: str, root: Path, json_path: Optional[Path], load_img: bool = False) -> Dataset:
    """OTB-style dataset ``name`` (a key of NAMES) from ``root``; ``json_path`` None reads the native layout."""
    subset = NAMES.get(name)
    if json_path is not None:
        # A full-benchmark json serves the subsets too; any other json is taken as it is.
        names = subset if subset is not None and json_path.stem in _FULL_JSON else None
        videos = videos_from_json(json_path, root, result_kind="ope", names=names, load_img=load_img)
        return Dataset(name, root, videos, "json", json_path)
    videos = [v for v in _native_videos(root, load_img) if subset is None or v.name in subset]
    if subset is not None:
        missing = sorted(set(subset) - {v.name for v in videos})
        if missing:
            raise DatasetError(f"{name}: sequences missing under {root}: {', '.join(missing[:8])}")
    return Dataset(name, root, videos, "native")


def _native_videos(root: Path, load_img: bool) -> list[Video]:
    videos = []
    for seq_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        gt_files = sorted(seq_dir.glob("groundtruth_rect*.txt"))
        if not gt_files and (seq_dir / "img").is_dir():
            raise DatasetError(f"{seq_dir}: frames in img/ but no groundtruth_rect.txt")
        for gt_file in gt_files:
            m = re.fullmatch(r"groundtruth_rect(?:\.(\d+))?\.txt", gt_file.name)
            if m is None:
                continue
            if m.group(1) is not None and not gt_file.read_text().strip():
                continue  # an empty per-target file (Human4's first target)
            name = seq_dir.name if m.group(1) is None else f"{seq_dir.name}-{m.group(1)}"
            videos.append(_native_video(name, root, seq_dir, gt_file, load_img))
    return videos


def _native_video(name: str, root: Path, seq_dir: Path, gt_file: Path, load_img: bool) -> Video:
    gt = read_boxes(gt_file, (4,))
    images = list_images(seq_dir / "img")
    first, last = FRAME_RANGES.get(seq_dir.name, (1, len(images)))
    if last > len(images):
        raise DatasetError(f"{seq_dir / 'img'}: {len(images)} frames, sequence {name!r} needs {last}")
    images = images[first - 1:last]
    if len(gt) == last and first > 1:
        gt = gt[first - 1:]  # the file annotates every frame, the benchmark starts later
    if len(gt) != len(images):
        raise DatasetError(f"{gt_file}: {len(gt)} boxes for {len(images)} frames of sequence {name!r}")
    img_names = [str(p.relative_to(root)) for p in images]
    return Video(name, root, seq_dir.name, gt[0], img_names, gt, [], result_kind="ope", load_img=load_img,
                 source=root)
