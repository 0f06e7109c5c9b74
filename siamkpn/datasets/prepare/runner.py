"""Run crop jobs (one source image each) in parallel and collect pysot's annotation json.

Resumable: a crop whose file already exists is not recomputed (files are written atomically, so an
existing file is complete, and `record.renew_record` has first removed the crops of every video whose
annotation or crop settings changed), and the json is rebuilt from the annotations every run.
"""
from __future__ import annotations

import functools
import logging
import multiprocessing
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
from tqdm import tqdm

from .crop import crop_like_siamfc, crop_path, write_image_atomic
from .record import renew_record, video_records

__all__ = ["CropJob", "JobResult", "RunStats", "process_job", "run_jobs"]

logger = logging.getLogger(__name__)

Annotations = Dict[str, Dict[str, Dict[str, List[float]]]]


@dataclass
class CropJob:
    """Crops to cut from one source image: (track, frame, corner box) items of one video."""

    image: str
    video: str
    items: List[Tuple[str, int, Sequence[float]]]
    normalized: bool = False  # boxes as fractions of the image size (YouTube-BB)
    source: str = ""  # the annotation file or folder listing the video's name came from (named in errors)


@dataclass
class JobResult:
    """What one job produced: the usable (track, frame, box) items and the file counts."""

    video: str
    items: List[Tuple[str, int, List[float]]] = field(default_factory=list)
    written: int = 0
    reused: int = 0
    error: Optional[str] = None


@dataclass
class RunStats:
    """Totals of a preparation run."""

    written: int = 0
    reused: int = 0
    failed_images: int = 0
    dropped_boxes: int = 0
    recut_videos: int = 0  # videos whose old crops were removed: their annotation or crop settings changed
    recut_reasons: Dict[str, int] = field(default_factory=dict)


def _valid(box: Sequence[float]) -> bool:
    return len(box) == 4 and box[2] - box[0] > 0 and box[3] - box[1] > 0


def _plain(box: Sequence[float]) -> List[float]:
    return [v if isinstance(v, int) else float(v) for v in box]


def process_job(job: CropJob, crop_root: str, quality: int = 95) -> JobResult:
    """Write the missing crops of `job`; unreadable images are reported in `error`, never raised."""
    result = JobResult(job.video)
    paths = [crop_path(crop_root, job.video, frame, track) for track, frame, _ in job.items]
    image = None
    if job.normalized or not all(os.path.isfile(p) for p in paths):
        image = cv2.imread(job.image, cv2.IMREAD_COLOR)
        if image is None:
            result.error = f"cannot read image {job.image} (missing or corrupt)"
            return result
    mean = None
    for (track, frame, box), path in zip(job.items, paths):
        if job.normalized:
            height, width = image.shape[:2]
            box = [box[0] * width, box[1] * height, box[2] * width, box[3] * height]
        if not _valid(box):
            continue
        if os.path.isfile(path):
            result.reused += 1
        else:
            if mean is None:
                mean = image.reshape(-1, 3).mean(axis=0)
            write_image_atomic(path, crop_like_siamfc(image, box, padding=mean), quality)
            result.written += 1
        result.items.append((track, int(frame), _plain(box)))
    return result


def _sorted_annotations(annotations: Annotations) -> Annotations:
    return {video: {track: dict(sorted(frames.items())) for track, frames in sorted(tracks.items())}
            for video, tracks in sorted(annotations.items())}


def _imap(pool, work, items: list, workers: int):
    """`work` over `items`: in the pool's processes (unordered) when there is one, else here."""
    if pool is None:
        return map(work, items)
    return pool.imap_unordered(work, items, chunksize=max(1, min(16, len(items) // (4 * workers))))


def run_jobs(jobs: Iterable[CropJob], crop_root: str, workers: int = 1, desc: str = "crop",
             quality: int = 95, total: Optional[int] = None, progress: bool = True) -> Tuple[Annotations, RunStats]:
    """Process every job (in `workers` processes when > 1) and return the json dict and the totals.

    First every video gets the record of its inputs (its old crops removed where the record differs), then the
    missing crops are cut."""
    jobs = list(jobs)
    stats = RunStats()
    annotations: Annotations = {}
    videos = video_records(jobs, crop_root, quality)  # every video name checked before anything is written
    work = functools.partial(process_job, crop_root=crop_root, quality=quality)
    pool = multiprocessing.Pool(workers) if workers > 1 and len(jobs) > 1 else None
    try:
        reasons: Counter = Counter()
        for removed in _imap(pool, renew_record, videos, workers):
            stats.recut_videos += bool(removed)
            reasons.update(removed)
        stats.recut_reasons = dict(sorted(reasons.items()))
        for res in tqdm(_imap(pool, work, jobs, workers), total=total or len(jobs), desc=desc, unit="img",
                        dynamic_ncols=True, disable=not progress):
            if res.error:
                stats.failed_images += 1
                logger.warning("%s: skipped", res.error)
                continue
            stats.written += res.written
            stats.reused += res.reused
            for track, frame, box in res.items:
                annotations.setdefault(res.video, {}).setdefault(track, {})[f"{frame:06d}"] = box
    except BaseException:
        if pool is not None:
            pool.terminate()  # do not wait for queued crops on Ctrl-C: the finished ones are on disk
        raise
    if pool is not None:
        pool.close()
        pool.join()
    stats.dropped_boxes = sum(len(j.items) for j in jobs) - stats.written - stats.reused
    return _sorted_annotations(annotations), stats
