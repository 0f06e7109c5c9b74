"""Reading pysot's ``<root>/<NAME>.json`` dataset descriptions into Videos, with strict checks."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence

from toolkit.datasets.parse import DatasetError, check_box_values, load_json
from toolkit.datasets.video import VOT_TAGS, Video
from toolkit.names import check_name

__all__ = ["videos_from_json", "check_boxes"]


def check_boxes(boxes: Any, where: str, widths: Sequence[int], allow_nan: bool) -> list[list[float]]:
    """Validate a list of boxes from a json (or any source); ``where`` names it in errors."""
    if not isinstance(boxes, list):
        raise DatasetError(f"{where}: gt_rect must be a list of boxes")
    out = []
    for i, box in enumerate(boxes):
        try:
            vals = [float(v) for v in box]
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: frame {i}: not a list of numbers: {box!r}") from None
        check_box_values(vals, f"{where}: frame {i}", widths, allow_nan)
        out.append(vals)
    return out


def videos_from_json(json_path: Path, root: Path, *, result_kind: str, widths: Sequence[int] = (4,),
                     allow_nan: bool = False, with_tags: bool = False, with_absent: bool = False,
                     nan_as_marker: bool = False, first_frame_only: bool = False,
                     names: Optional[Sequence[str]] = None, load_img: bool = False) -> list[Video]:
    """Videos of a pysot json; ``names`` keeps only those videos (subsets such as OTB2013).

    ``nan_as_marker`` turns NaN boxes into ``[0]`` as pysot's VOT-LT loader does (absence kept in
    ``Video.absent``). ``with_absent`` reads pysot's LaSOT ``absent`` field, which holds 1 where the
    target is *visible* (its evaluation keeps the frames with ``absent == 1``), so it is inverted here.
    ``first_frame_only``: a single ground-truth box (test splits) is padded with NaN boxes.
    """
    meta = load_json(json_path)
    for name in meta:  # before anything is read: a name from the json becomes result paths
        check_name(name, "video name", json_path)
    if names is not None:
        missing = [n for n in names if n not in meta]
        if missing:
            raise DatasetError(f"{json_path}: videos {missing[:5]} of the subset are not in the json")
        meta = {n: meta[n] for n in names}
    videos = []
    for name, v in meta.items():
        where = f"{json_path}: video {name!r}"
        # pysot's long-term json may already hold the [0] absence marker.
        gt = check_boxes(v["gt_rect"], where, (*widths, 1) if nan_as_marker else widths, allow_nan or nan_as_marker)
        if first_frame_only and len(gt) == 1 and len(v["img_names"]) > 1:
            gt = gt + [[math.nan] * 4 for _ in v["img_names"][1:]]
        absent = None
        if nan_as_marker:
            absent = [len(b) == 1 or math.isnan(b[0]) for b in gt]
            gt = [[0.0] if a else b for a, b in zip(absent, gt)]
        elif allow_nan:
            absent = [math.isnan(b[0]) for b in gt]
        if with_absent and "absent" in v:
            if len(v["absent"]) != len(gt):
                raise DatasetError(f"{where}: {len(v['absent'])} absent flags for {len(gt)} frames")
            absent = [int(a) == 0 for a in v["absent"]]
        tags = None
        if with_tags:
            tags = {t: v.get(t, [0] * len(gt)) for t in VOT_TAGS}
        try:
            videos.append(Video(name, root, v.get("video_dir", name), v.get("init_rect") or gt[0],
                                v["img_names"], gt, v.get("attr") or [], tags=tags, absent=absent,
                                result_kind=result_kind, load_img=load_img, source=json_path))
        except DatasetError as e:
            raise DatasetError(f"{json_path}: {e}") from None
    return videos
