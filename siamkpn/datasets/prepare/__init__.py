"""Preparation of real training sets into pysot's layout: `<out>/crop511/<video>/<frame>.<track>.x.jpg` + json.

`prepare(source, src, out)` reads an official download (GOT-10k, LaSOT, COCO, YouTube-BB, ImageNet VID/DET),
cuts the 511 search crops in parallel and writes the annotation json that `siamkpn.datasets.training_set` reads.
Resumable: existing crops are kept while the record next to them (`crop_inputs.json`: the video's annotation hash
and the crop settings) matches this run; a video whose annotation or settings changed is re-cut.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

from toolkit.errors import BadValue
from toolkit.names import check_name

from .crop import write_json_atomic
from .runner import RunStats, run_jobs
from .sources import SOURCES

__all__ = ["prepare", "json_name", "recut_summary", "SOURCES"]

logger = logging.getLogger(__name__)


def json_name(source: str, split: str) -> str:
    """Annotation file name written for a split: `train.json`, `val.json`, COCO's `train2017.json`."""
    if source == "coco":
        return f"{split}.json"
    return "val.json" if split in ("val", "validation") else f"{split}.json"


def recut_summary(stats: RunStats) -> str:
    """'N videos re-cut (why: count, ...)' for the run's summary line."""
    n = stats.recut_videos
    why = ", ".join(f"{reason}: {count}" for reason, count in stats.recut_reasons.items())
    return f"{n} video{'' if n == 1 else 's'} re-cut" + (f" ({why})" if n else "")


def prepare(source: str, src: str, out: str, workers: int = 1, split: Optional[str] = None,
            quality: int = 95, progress: bool = True) -> RunStats:
    """Crop `source` (a key of SOURCES) from the download in `src` into `out`; return the run totals."""
    if source not in SOURCES:
        raise BadValue(f"unknown dataset source '{source}'; valid: {', '.join(sorted(SOURCES))}")
    if not os.path.isdir(src):
        raise FileNotFoundError(f"download folder not found: {src}")
    build, default_split = SOURCES[source]
    split = check_name(split or default_split, "split", "--split")  # part of the crop folders and the json name
    jobs = build(src, split)
    if not jobs:
        raise BadValue(f"no annotated images found for {source} ({split}) in {src}")
    annotations, stats = run_jobs(jobs, os.path.join(out, "crop511"), workers=workers, desc=f"{source} {split}",
                                  quality=quality, progress=progress)
    anno_path = os.path.join(out, json_name(source, split))
    write_json_atomic(anno_path, annotations, indent=1)
    logger.info("%s: %d videos, %d crops written, %d reused, %s, %d images unreadable -> %s", source,
                len(annotations), stats.written, stats.reused, recut_summary(stats), stats.failed_images, anno_path)
    return stats
