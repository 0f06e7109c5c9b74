"""Synthetic data on disk: a training set in pysot's prepared layout and OTB100 / VOT2018-style test sets.

- `write_train_set`: `<out>/crop511/<video>/<frame:06d>.<track>.x.jpg` + `<out>/train.json`, the crops
  cut from the full frames by the same `crop_like_siamfc` as the real-data preparation. Track `00` is the
  target; well visible distractors are further tracks (`01`, ...), as several objects of an ImageNet VID video.
- `write_otb_set`: `<out>/OTB100.json` (pysot's toolkit json) and the native OTB layout
  `<video>/img/0001.jpg` + `groundtruth_rect.txt` (`x,y,w,h`, 1-based).
- `write_vot_set`: `<out>/VOT2018.json` and the native layout `list.txt`, `<video>/color/00000001.jpg`,
  `<video>/groundtruth.txt` (8-value polygons, 0-based) and `<video>/<tag>.tag`.
The training and the two test sets come from different seed streams, so the test videos are held out.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from .prepare.crop import crop_like_siamfc, crop_path, write_image_atomic, write_json_atomic
from .synthetic import TAGS, SceneConfig, SyntheticVideo, render_video
from .synthetic_folder import check_part_folder, claim_part_folder

__all__ = ["PARTS", "write_train_set", "write_otb_set", "write_vot_set", "make_synthetic", "video_rng",
           "video_name", "train_box", "otb_rect", "vot_polygon"]

_STREAMS = {"train": 0, "otb": 1, "vot": 2}
PARTS = tuple(_STREAMS)
TARGET_MIN_VISIBLE = 0.5  # training frames of the target need at least half of it visible
DISTRACTOR_MIN_VISIBLE = 0.8


def video_rng(seed: int, part: str, index: int) -> np.random.Generator:
    """The generator of video `index` of `part` ('train', 'otb', 'vot'): independent streams per part."""
    return np.random.default_rng([int(seed) % 2**63, _STREAMS[part], index])


def video_name(part: str, index: int) -> str:
    """The name of video `index` (0-based) of `part`: synth_00000, Synth001, synth001."""
    return {"train": f"synth_{index:05d}", "otb": f"Synth{index + 1:03d}", "vot": f"synth{index + 1:03d}"}[part]


def train_box(box: np.ndarray) -> List[float]:
    """Corner box of a pixel extent [x1, y1, x2, y2): first and last pixel, as ImageNet VID annotates."""
    return [float(box[0]), float(box[1]), float(box[2] - 1), float(box[3] - 1)]


def otb_rect(box: np.ndarray) -> List[int]:
    """OTB ground truth (x, y, w, h), 1-based, of a pixel extent."""
    return [int(box[0]) + 1, int(box[1]) + 1, int(box[2] - box[0]), int(box[3] - box[1])]


def vot_polygon(box: np.ndarray) -> List[float]:
    """VOT ground truth polygon (x1,y1, x2,y1, x2,y2, x1,y2), 0-based pixel corners, of a pixel extent."""
    x1, y1, x2, y2 = float(box[0]), float(box[1]), float(box[2] - 1), float(box[3] - 1)
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def _map(func, items: List, workers: int, desc: str, progress: bool) -> List:
    """`func` over `items` in order, in `workers` processes when > 1, with a progress bar."""
    if workers > 1 and len(items) > 1:
        with multiprocessing.Pool(min(workers, len(items))) as pool:
            return list(tqdm(pool.imap(func, items), total=len(items), desc=desc, disable=not progress))
    return [func(item) for item in tqdm(items, desc=desc, disable=not progress)]


def _render(part: str, seed: int, index: int, num_frames: int, scene: SceneConfig) -> SyntheticVideo:
    return render_video(video_rng(seed, part, index), num_frames, scene)


def _train_video(index: int, out: str, seed: int, num_frames: int, scene: SceneConfig, quality: int,
                 distractor_tracks: bool) -> Tuple[str, Dict[str, Dict[str, List[float]]]]:
    video = _render("train", seed, index, num_frames, scene)
    name = video_name("train", index)
    crop_root = os.path.join(out, "crop511")
    tracks: Dict[str, Dict[str, List[float]]] = {}
    for t, frame in enumerate(video.frames):
        mean = frame.reshape(-1, 3).mean(axis=0)
        objects = [("00", video.boxes[t], video.visible[t] >= TARGET_MIN_VISIBLE)]
        if distractor_tracks:
            objects += [(f"{i + 1:02d}", b, v >= DISTRACTOR_MIN_VISIBLE)
                        for i, (b, v) in enumerate(zip(video.distractor_boxes[t], video.distractor_visible[t]))]
        for track, box, usable in objects:
            if not usable:
                continue
            corners = train_box(box)
            write_image_atomic(crop_path(crop_root, name, t, track), crop_like_siamfc(frame, corners, padding=mean),
                               quality)
            tracks.setdefault(track, {})[f"{t:06d}"] = corners
    return name, tracks


def write_train_set(out: str, seed: int = 0, num_videos: int = 50, num_frames: int = 40,
                    scene: Optional[SceneConfig] = None, workers: int = 0, quality: int = 90,
                    distractor_tracks: bool = True, progress: bool = True) -> str:
    """Write the synthetic training set (crop511 + train.json) into `out`; returns the json path.

    Videos an earlier run wrote into `out` are replaced; a non-empty `out` it did not write is refused
    (see `synthetic_folder`).
    """
    claim_part_folder(out, "train", [video_name("train", i) for i in range(num_videos)])
    work = functools.partial(_train_video, out=out, seed=seed, num_frames=num_frames, scene=scene or SceneConfig(),
                             quality=quality, distractor_tracks=distractor_tracks)
    results = _map(work, list(range(num_videos)), workers, "synthetic train", progress)
    path = os.path.join(out, "train.json")
    write_json_atomic(path, {name: tracks for name, tracks in results if tracks})
    return path


def _write_frames(folder: str, frames: List[np.ndarray], pattern: str, quality: int) -> List[str]:
    names = [pattern.format(i + 1) for i in range(len(frames))]
    for name, frame in zip(names, frames):
        write_image_atomic(os.path.join(folder, name), frame, quality)
    return names


def _otb_video(index: int, out: str, seed: int, num_frames: int, scene: SceneConfig, quality: int) -> Tuple[str, dict]:
    video = _render("otb", seed, index, num_frames, scene)
    name = video_name("otb", index)
    imgs = _write_frames(os.path.join(out, name, "img"), video.frames, "{:04d}.jpg", quality)
    rects = [otb_rect(b) for b in video.boxes]
    with open(os.path.join(out, name, "groundtruth_rect.txt"), "w", encoding="utf-8") as f:
        f.writelines(",".join(str(v) for v in r) + "\n" for r in rects)
    return name, {"video_dir": name, "init_rect": rects[0], "img_names": [f"{name}/img/{n}" for n in imgs],
                  "gt_rect": rects, "attr": video.attributes}


def _vot_video(index: int, out: str, seed: int, num_frames: int, scene: SceneConfig, quality: int) -> Tuple[str, dict]:
    video = _render("vot", seed, index, num_frames, scene)
    name = video_name("vot", index)
    imgs = _write_frames(os.path.join(out, name, "color"), video.frames, "{:08d}.jpg", quality)
    polys = [vot_polygon(b) for b in video.boxes]
    with open(os.path.join(out, name, "groundtruth.txt"), "w", encoding="utf-8") as f:
        f.writelines(",".join(f"{v:.2f}" for v in p) + "\n" for p in polys)
    for tag in TAGS:
        with open(os.path.join(out, name, f"{tag}.tag"), "w", encoding="utf-8") as f:
            f.writelines(f"{int(v)}\n" for v in video.tags[tag])
    meta = {"video_dir": name, "init_rect": polys[0], "img_names": [f"{name}/color/{n}" for n in imgs],
            "gt_rect": polys}
    meta.update({tag: [int(v) for v in video.tags[tag]] for tag in TAGS})
    return name, meta


def _write_test_set(kind: str, out: str, seed: int, num_videos: int, num_frames: int, scene: Optional[SceneConfig],
                    workers: int, quality: int, progress: bool) -> str:
    claim_part_folder(out, kind, [video_name(kind, i) for i in range(num_videos)])
    func = _otb_video if kind == "otb" else _vot_video
    work = functools.partial(func, out=out, seed=seed, num_frames=num_frames, scene=scene or SceneConfig(),
                             quality=quality)
    results = _map(work, list(range(num_videos)), workers, f"synthetic {kind}", progress)
    if kind == "vot":
        with open(os.path.join(out, "list.txt"), "w", encoding="utf-8") as f:
            f.writelines(name + "\n" for name, _ in results)
    path = os.path.join(out, "OTB100.json" if kind == "otb" else "VOT2018.json")
    write_json_atomic(path, dict(results))
    return path


def write_otb_set(out: str, seed: int = 0, num_videos: int = 10, num_frames: int = 120,
                  scene: Optional[SceneConfig] = None, workers: int = 0, quality: int = 95,
                  progress: bool = True) -> str:
    """Write an OTB100-style synthetic benchmark (pysot json + native layout); returns the json path."""
    return _write_test_set("otb", out, seed, num_videos, num_frames, scene, workers, quality, progress)


def write_vot_set(out: str, seed: int = 0, num_videos: int = 10, num_frames: int = 120,
                  scene: Optional[SceneConfig] = None, workers: int = 0, quality: int = 95,
                  progress: bool = True) -> str:
    """Write a VOT2018-style synthetic benchmark (pysot json + native layout); returns the json path."""
    return _write_test_set("vot", out, seed, num_videos, num_frames, scene, workers, quality, progress)


def make_synthetic(out: str, seed: int = 0, train_videos: int = 50, train_frames: int = 40, test_videos: int = 10,
                   test_frames: int = 120, scene: Optional[SceneConfig] = None, workers: int = 0,
                   parts: Tuple[str, ...] = ("train", "otb", "vot"), progress: bool = True) -> Dict[str, str]:
    """Everything `scripts/make_synthetic.py` writes: `out/train/`, `out/test/OTB100/`, `out/test/VOT2018/`.

    Every part's folder is checked before anything is written (SyntheticOutputError names the folder).
    """
    unknown = set(parts) - set(_STREAMS)
    if unknown:
        raise ValueError(f"unknown synthetic part(s) {sorted(unknown)}; valid: {sorted(_STREAMS)}")
    folders = {"train": os.path.join(out, "train"), "otb": os.path.join(out, "test", "OTB100"),
               "vot": os.path.join(out, "test", "VOT2018")}
    for part in parts:
        check_part_folder(folders[part], part)
    written = {}
    if "train" in parts:
        written["train"] = write_train_set(folders["train"], seed, train_videos, train_frames, scene,
                                           workers, progress=progress)
    if "otb" in parts:
        written["otb"] = write_otb_set(folders["otb"], seed, test_videos, test_frames, scene,
                                       workers, progress=progress)
    if "vot" in parts:
        written["vot"] = write_vot_set(folders["vot"], seed, test_videos, test_frames, scene,
                                       workers, progress=progress)
    return written
