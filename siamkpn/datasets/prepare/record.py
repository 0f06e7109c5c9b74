"""What shaped a video's crops: a record next to them, so that a rerun re-cuts the videos whose inputs changed.

`<crop_root>/<video>/crop_inputs.json` holds the sha256 of the video's annotation as the run used it (every crop
job's image name, boxes, tracks and frames, after visibility flags) and the crop settings (JPEG quality, crop and
exemplar sizes, context amount, the crop code's version). Before any crop is cut, a video whose record differs
or is missing has its record and its old crops removed, then gets the new record; so every crop file under a
record was cut from the recorded inputs, and an interrupted run resumes by cutting only the missing crops.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from typing import Dict, Iterable, List, Optional, Tuple

from toolkit.atomic import temp_files
from toolkit.names import check_name

from .crop import CONTEXT_AMOUNT, EXEMPLAR_SIZE, INSTANCE_SIZE, write_json_atomic

__all__ = ["RECORD_FILE", "CROP_VERSION", "crop_settings", "video_folder", "video_record", "video_records",
           "renew_record"]

logger = logging.getLogger(__name__)

RECORD_FILE = "crop_inputs.json"
CROP_VERSION = 1  # raise when crop_like_siamfc or the file format changes what a crop holds
_CROP_FILE = re.compile(r"^\d+\.[^./]+\.x\.jpg$")  # crop_path's `<frame:06d>.<track>.x.jpg`


def crop_settings(quality: int) -> Dict:
    """The settings that change a crop's pixels."""
    return {"quality": int(quality), "instance_size": INSTANCE_SIZE, "exemplar_size": EXEMPLAR_SIZE,
            "context_amount": CONTEXT_AMOUNT, "padding": "frame mean colour", "crop_version": CROP_VERSION}


def video_folder(crop_root: str, video: str, source: str = "") -> str:
    """`<crop_root>/<video>` after every component of the video key passed toolkit.names.check_name."""
    parts = video.split("/")
    for part in parts:
        check_name(part, f"video {video!r}: component", source)
    return os.path.join(crop_root, *parts)


def video_record(jobs: Iterable, settings: Dict) -> Dict:
    """The record of one video's crop jobs under `settings` (no paths or times: reruns compare it byte for byte)."""
    annotation = sorted([os.path.basename(job.image), bool(job.normalized), [list(item) for item in job.items]]
                        for job in jobs)
    text = json.dumps(annotation, separators=(",", ":"))
    return {"annotation_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "settings": settings}


def _read(path: str) -> Optional[Dict]:
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _reasons(recorded: Optional[Dict], current: Dict) -> List[str]:
    """Why a video's old crops cannot be kept ([] when they can)."""
    if recorded is None:
        return ["no record of their inputs"]
    reasons = ["annotation changed"] if recorded.get("annotation_sha256") != current["annotation_sha256"] else []
    old = recorded.get("settings") if isinstance(recorded.get("settings"), dict) else {}
    reasons += [f"{key} {old.get(key, '<absent>')} -> {value}" for key, value in current["settings"].items()
                if old.get(key) != value]
    return reasons


def _clear(folder: str) -> bool:
    """Remove the record, the crops and leftover temporary files of one video folder; True if it held any."""
    if not os.path.isdir(folder):
        return False
    names = [n for n in os.listdir(folder) if n == RECORD_FILE or _CROP_FILE.match(n)]
    paths = [os.path.join(folder, n) for n in sorted(names, key=lambda n: n != RECORD_FILE)]  # the record first
    for path in paths + temp_files(folder):
        os.remove(path)
    return bool(names)


def video_records(jobs: Iterable, crop_root: str, quality: int) -> List[Tuple[str, Dict]]:
    """(crop folder, record of its current inputs) per video of `jobs`; every video name is checked, nothing is
    written."""
    by_video: Dict[str, list] = {}
    for job in jobs:
        by_video.setdefault(job.video, []).append(job)
    settings = crop_settings(quality)
    return [(video_folder(crop_root, video, getattr(video_jobs[0], "source", "")), video_record(video_jobs, settings))
            for video, video_jobs in sorted(by_video.items())]


def renew_record(folder_record: Tuple[str, Dict]) -> List[str]:
    """Give one video folder the record of its current inputs, first removing its old crops if the record there
    differs or is missing; return why old crops were removed ([] when none were)."""
    folder, current = folder_record
    reasons = _reasons(_read(os.path.join(folder, RECORD_FILE)), current)
    if not reasons:
        return []
    removed = _clear(folder)
    if removed:
        logger.debug("%s: old crops removed (%s)", folder, ", ".join(reasons))
    write_json_atomic(os.path.join(folder, RECORD_FILE), current, indent=1)
    return reasons if removed else []
