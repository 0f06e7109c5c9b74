"""Readers of the official download layouts: each turns a dataset into crop jobs (one per source image).

Boxes become corners (x1, y1, x2, y2) in frame pixels; frames are numbered as pysot's json does
(`%06d` keys): the image index for GOT-10k and LaSOT, the file number for ImageNet VID, 0 for still
images (COCO, DET), whole seconds for YouTube-BB. Video keys are the crop sub-folders.
Names read from an annotation file or a folder listing are data, not paths: each one that becomes part of a path
or a video key passes toolkit.names.check_name, naming the file or folder it came from.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import re
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple

from toolkit.errors import BadValue
from toolkit.names import check_name

from .runner import CropJob

__all__ = ["SOURCES", "read_rows", "got10k_jobs", "lasot_jobs", "coco_jobs", "vid_jobs", "det_jobs", "ytbb_jobs"]

logger = logging.getLogger(__name__)
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


def read_rows(path: str, ncols: int) -> List[List[float]]:
    """Numbers per line (comma, tab or space separated); an error names the file and the line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise BadValue(f"{path}:{lineno}: expected {ncols} numbers, got {line.strip()!r}") from None
            if len(values) != ncols:
                raise BadValue(f"{path}:{lineno}: expected {ncols} numbers, got {len(values)}")
            rows.append(values)
    return rows


def _read_flags(path: str) -> Optional[List[int]]:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return [int(float(v)) for v in re.split(r"[,\s]+", f.read().strip()) if v]


def _xywh_to_corners(row: List[float]) -> List[float]:
    x, y, w, h = row
    return [x, y, x + w, y + h]


def _images(folder: str) -> List[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(_IMAGE_EXT))


def _listed(folder: str, names: List[str], what: str) -> List[str]:
    """`names` (found in the listing of `folder`) after check_name: a name like 'a\\b' is refused, not joined."""
    return [check_name(name, what, folder) for name in names]


def _sequence_jobs(video: str, img_dir: str, gt_path: str, hidden: List[Optional[List[int]]],
                   source: str) -> List[CropJob]:
    """One job per visible frame of a single-object sequence (frame = image index)."""
    names = _images(img_dir)
    rows = read_rows(gt_path, 4)
    if len(rows) < len(names):
        logger.warning("%s: %d boxes for %d images; frames without a box are skipped", gt_path, len(rows), len(names))
    jobs = []
    for i, (name, row) in enumerate(zip(names, rows)):
        if any(flags is not None and i < len(flags) and flags[i] for flags in hidden):
            continue
        if row[2] > 0 and row[3] > 0:
            jobs.append(CropJob(os.path.join(img_dir, name), video, [("00", i, _xywh_to_corners(row))], source=source))
    return jobs


def got10k_jobs(src: str, split: str = "train") -> List[CropJob]:
    """GOT-10k: `<src>/<split>/GOT-10k_*/{00000001.jpg, groundtruth.txt, absence.label}`."""
    base = os.path.join(src, split) if os.path.isdir(os.path.join(src, split)) else src
    found = sorted(d for d in os.listdir(base) if os.path.isfile(os.path.join(base, d, "groundtruth.txt")))
    seqs = _listed(base, found, "sequence name")
    if not seqs:
        raise FileNotFoundError(f"no GOT-10k sequences (<name>/groundtruth.txt) under {base}")
    jobs = []
    for seq in seqs:
        folder = os.path.join(base, seq)
        absent = _read_flags(os.path.join(folder, "absence.label"))
        jobs += _sequence_jobs(f"{split}/{seq}", folder, os.path.join(folder, "groundtruth.txt"), [absent], base)
    return jobs


def _name_list(path: str) -> Optional[set]:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip()}


def lasot_jobs(src: str, split: str = "train") -> List[CropJob]:
    """LaSOT: `<src>/<class>/<class>-<n>/{img/, groundtruth.txt, full_occlusion.txt, out_of_view.txt}`.

    The split comes from `training_set.txt` / `testing_set.txt` in `src` when present, else every video.
    """
    videos = []
    for cls in sorted(os.listdir(src)):
        cls_dir = os.path.join(src, cls)
        if os.path.isdir(cls_dir):
            check_name(cls, "class name", src)
            videos += [(cls, v) for v in _listed(cls_dir, sorted(os.listdir(cls_dir)), "video name")
                       if os.path.isfile(os.path.join(cls_dir, v, "groundtruth.txt"))]
    if not videos:
        raise FileNotFoundError(f"no LaSOT videos (<class>/<video>/groundtruth.txt) under {src}")
    train, test = _name_list(os.path.join(src, "training_set.txt")), _name_list(os.path.join(src, "testing_set.txt"))
    if split == "train":
        keep = (lambda v: v in train) if train is not None else (lambda v: test is None or v not in test)
    else:
        keep = (lambda v: v in test) if test is not None else (lambda v: train is None or v not in train)
    if train is None and test is None:
        logger.warning("%s has no training_set.txt / testing_set.txt: using every video", src)
    jobs = []
    for cls, video in videos:
        if not keep(video):
            continue
        folder = os.path.join(src, cls, video)
        hidden = [_read_flags(os.path.join(folder, n)) for n in ("full_occlusion.txt", "out_of_view.txt")]
        jobs += _sequence_jobs(f"{cls}/{video}", os.path.join(folder, "img"), os.path.join(folder, "groundtruth.txt"),
                               hidden, os.path.join(src, cls))
    return jobs


def coco_jobs(src: str, split: str = "train2017") -> List[CropJob]:
    """COCO: `<src>/annotations/instances_<split>.json` and `<src>/<split>/<file_name>`."""
    anno = os.path.join(src, "annotations", f"instances_{split}.json")
    with open(anno, encoding="utf-8") as f:
        data = json.load(f)
    by_image: Dict[int, list] = {}
    for ann in data.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)
    jobs = []
    for img in data.get("images", []):
        stem = os.path.splitext(check_name(img["file_name"], "image file_name", anno))[0]
        items = []
        # track ids count every annotation of the image (as pysot does), zero-size ones included
        for track, ann in enumerate(by_image.get(img["id"], [])):
            x, y, w, h = ann["bbox"]
            if w > 0 and h > 0:
                items.append((f"{track:02d}", 0, [x, y, x + w, y + h]))
        if items:
            jobs.append(CropJob(os.path.join(src, split, img["file_name"]), f"{split}/{stem}", items, source=anno))
    return jobs


def _ilsvrc_root(src: str) -> str:
    for cand in (src, os.path.join(src, "ILSVRC2015"), os.path.join(src, "ILSVRC")):
        if os.path.isdir(os.path.join(cand, "Annotations")):
            return cand
    raise FileNotFoundError(f"no ILSVRC 'Annotations' folder in {src} (or its ILSVRC2015/ILSVRC sub-folder)")


def _xml_objects(path: str) -> List[Tuple[Optional[int], List[int]]]:
    """(trackid or None, [xmin, ymin, xmax, ymax]) of every object of an ILSVRC xml file."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise BadValue(f"{path}: malformed xml ({err})") from None
    objects = []
    for obj in root.findall("object"):
        bnd = obj.find("bndbox")
        if bnd is None:
            continue
        try:
            box = [int(float(bnd.find(k).text)) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError):
            raise BadValue(f"{path}: object without a numeric bndbox") from None
        tid = obj.find("trackid")
        objects.append((int(tid.text) if tid is not None else None, box))
    return objects


def _xml_files(ann_root: str):
    if not os.path.isdir(ann_root):
        raise FileNotFoundError(f"annotation folder not found: {ann_root}")
    for dirpath, dirnames, files in os.walk(ann_root):
        dirnames.sort()
        xmls = sorted(f for f in files if f.endswith(".xml"))
        if xmls:
            yield os.path.relpath(dirpath, ann_root), xmls


def vid_jobs(src: str, split: str = "train") -> List[CropJob]:
    """ImageNet VID: `Annotations/VID/<split>/[<subset>/]<video>/<frame>.xml` and `Data/VID/...JPEG`."""
    root = _ilsvrc_root(src)
    ann_root = os.path.join(root, "Annotations", "VID", split)
    jobs = []
    for video, xmls in _xml_files(ann_root):
        frames = {}
        for x in xmls:
            frames[int(os.path.splitext(x)[0])] = objs = _xml_objects(os.path.join(ann_root, video, x))
            if any(tid is None for tid, _ in objs):
                raise BadValue(f"{os.path.join(ann_root, video, x)}: VID object without a <trackid>")
        seen = {(tid, f) for f, objs in frames.items() for tid, _ in objs}
        key = video.replace(os.sep, "/")
        for frame, objs in sorted(frames.items()):
            # pysot's gen_json drops isolated frames (a track seen neither just before nor just after)
            items = [(f"{tid:02d}", frame, box) for tid, box in objs
                     if (tid, frame - 1) in seen or (tid, frame + 1) in seen]
            if items:
                image = os.path.join(root, "Data", "VID", split, video, f"{frame:06d}.JPEG")
                jobs.append(CropJob(image, key, items, source=ann_root))
    return jobs


def det_jobs(src: str, split: str = "train") -> List[CropJob]:
    """ImageNet DET: `Annotations/DET/<split>/<subset>/[...]/<name>.xml` and `Data/DET/...JPEG`."""
    root = _ilsvrc_root(src)
    ann_root = os.path.join(root, "Annotations", "DET", split)
    jobs = []
    for rel, xmls in _xml_files(ann_root):
        top = rel.split(os.sep)[0]
        for x in xmls:
            stem = os.path.splitext(x)[0]
            objs = _xml_objects(os.path.join(ann_root, rel, x))
            items = [(f"{i:02d}", 0, box) for i, (_, box) in enumerate(objs) if box[2] > box[0] and box[3] > box[1]]
            if items:
                video = stem if rel == "." else f"{top}/{stem}"
                jobs.append(CropJob(os.path.join(root, "Data", "DET", split, rel, stem + ".JPEG"), video, items,
                                    source=ann_root))
    return jobs


def ytbb_jobs(src: str, split: str = "train") -> List[CropJob]:
    """YouTube-BB: `yt_bb_detection_<split>.csv` and the downloaded frames `yt_bb_detection_<split>/<class>/*.jpg`."""
    d_set = "yt_bb_detection_" + ("validation" if split in ("val", "validation") else split)
    table = os.path.join(src, d_set + ".csv")
    jobs, missing = [], 0
    with open(table, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) != 10:
                raise BadValue(f"{table}:{lineno}: expected 10 columns, got {len(row)}")
            ytid, ts, cls, _, obj, presence = row[:6]
            if presence != "present":
                continue
            try:
                xmin, xmax, ymin, ymax = (float(v) for v in row[6:])
                ts_ms, obj_id = int(ts), int(obj)
            except ValueError:
                raise BadValue(f"{table}:{lineno}: non-numeric timestamp, object id or box: {row}") from None
            if min(xmin, xmax, ymin, ymax) < 0 or xmax <= xmin or ymax <= ymin:
                continue
            check_name(ytid, "youtube id", f"{table}:{lineno}")
            check_name(cls, "class id", f"{table}:{lineno}")
            image = os.path.join(src, d_set, cls, f"{ytid}_{ts}_{cls}_{obj}.jpg")
            if not os.path.isfile(image):  # not every frame of YouTube-BB can still be downloaded
                missing += 1
                continue
            jobs.append(CropJob(image, f"{d_set}/{cls}/{ytid}", [(f"{obj_id:02d}", ts_ms // 1000,
                                                                  [xmin, ymin, xmax, ymax])], normalized=True,
                                source=table))
    if missing:
        logger.info("%s: %d annotated frames were not downloaded and are skipped", table, missing)
    return jobs


# source name -> (job builder, default split)
SOURCES = {
    "got10k": (got10k_jobs, "train"),
    "lasot": (lasot_jobs, "train"),
    "coco": (coco_jobs, "train2017"),
    "ytbb": (ytbb_jobs, "train"),
    "vid": (vid_jobs, "train"),
    "det": (det_jobs, "train"),
}
