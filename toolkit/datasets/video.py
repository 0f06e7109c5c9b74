"""Video and Dataset: the pysot-like objects every benchmark loader returns."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import cv2
import numpy as np

from toolkit import results as R
from toolkit.datasets.image_file import truncation
from toolkit.datasets.parse import DatasetError
from toolkit.errors import BadInput
from toolkit.names import check_name, join_relative

__all__ = ["Video", "Dataset", "FrameReadError", "VOT_TAGS"]

VOT_TAGS = ("camera_motion", "illum_change", "motion_change", "size_change", "occlusion")


class FrameReadError(BadInput, OSError):
    """A frame image that is missing or cannot be decoded."""


def read_image(path: str) -> np.ndarray:
    """Read a frame with OpenCV (BGR); raise naming the file when it is missing, truncated or corrupt."""
    if not os.path.isfile(path):
        raise FrameReadError(f"frame not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    # OpenCV would decode a cut JPEG with grey rows and no error: check the end marker first
    problem = truncation(data)
    if problem is not None:
        raise FrameReadError(f"{problem} (the file was cut short; copy or extract it again): {path}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        raise FrameReadError(f"cannot decode frame (corrupt or not an image): {path}")
    return img


class Video:
    """One benchmark sequence: ground truth, lazily read frames and loaded tracker results.

    ``gt_traj`` holds lists of 4 (``x, y, w, h``) or 8 (polygon) floats; ``img_names`` absolute paths;
    ``tags`` (VOT) maps tag -> uint8 array per frame, plus pysot's ``all`` and ``empty``; ``absent`` is
    a bool array (True = target not visible) or None; ``result_kind`` selects the result layout read by
    :meth:`load_tracker`. ``name`` must be one plain name and ``video_dir`` / ``img_names`` must stay inside
    ``root`` (names from data are data, not paths); ``source`` (the dataset file or folder) names them in errors.
    """

    def __init__(self, name: str, root: Union[str, Path], video_dir: str, init_rect: Sequence[float],
                 img_names: Sequence[str], gt_rect: Sequence[Sequence[float]], attr: Optional[Sequence[str]] = None,
                 *, tags: Optional[dict[str, Sequence[int]]] = None, absent: Optional[Sequence[bool]] = None,
                 result_kind: str = "ope", load_img: bool = False, source: Union[str, Path] = ""):
        check_name(name, "video name", source)
        if len(img_names) != len(gt_rect):
            raise DatasetError(f"video {name!r}: {len(img_names)} frames but {len(gt_rect)} ground-truth boxes")
        if not img_names:
            raise DatasetError(f"video {name!r}: no frames")
        self.name = name
        self.video_dir = video_dir
        self.init_rect = [float(v) for v in init_rect]
        self.gt_traj = [[float(v) for v in box] for box in gt_rect]
        self.attr = list(attr or [])
        for a in self.attr:  # attributes name plot files (success_plot_<attr>.png)
            check_name(str(a), f"video {name!r}: attribute", source)
        root = os.path.abspath(str(root))
        join_relative(root, video_dir, f"video {name!r}: video_dir", source)
        what = f"video {name!r}: image"
        self.img_names = [join_relative(root, x, what, source) for x in img_names]
        self.result_kind = result_kind
        self.absent = None if absent is None else np.asarray(absent, dtype=bool)
        if self.absent is not None and len(self.absent) != len(self):
            raise DatasetError(f"video {name!r}: {len(self.absent)} absence flags for {len(self)} frames")
        self.tags: dict[str, np.ndarray] = {}
        if tags is not None:
            self._set_tags(tags)
        self.pred_trajs: dict[str, Any] = {}
        self.confidence: dict[str, list[float]] = {}
        self.tracker_names: list[str] = []
        self._size: Optional[tuple[int, int]] = None
        self.imgs: Optional[list[np.ndarray]] = None
        if load_img:
            self.load_img()

    def _set_tags(self, tags: dict[str, Sequence[int]]) -> None:
        n = len(self)
        self.tags = {"all": np.ones(n, np.uint8)}
        for tag, values in tags.items():
            arr = np.asarray(values, dtype=np.uint8)
            if arr.size and arr.size != n:
                raise DatasetError(f"video {self.name!r}: tag {tag!r} has {arr.size} values for {n} frames")
            self.tags[tag] = arr
        # pysot's 'empty': one flag per non-empty tag list (in order), 1 where that tag never occurs.
        rows = [v for v in self.tags.values() if v.size]
        self.tags["empty"] = np.all(1 - np.array(rows, dtype=np.int64), axis=1).astype(np.uint8)

    def select_tag(self, tag: str, start: int = 0, end: int = 0) -> np.ndarray:
        """Tag values of frames ``start:end`` (pysot's EAO helper; 'empty' is returned whole)."""
        return self.tags[tag] if tag == "empty" else self.tags[tag][start:end]

    # ------------------------------------------------------------- frames
    def load_frame(self, idx: int) -> np.ndarray:
        """Frame ``idx`` as a BGR uint8 image."""
        if self.imgs is not None:
            return self.imgs[idx]
        img = read_image(self.img_names[idx])
        if self._size is None:
            self._size = (img.shape[1], img.shape[0])
        return img

    def load_img(self) -> None:
        """Read every frame into memory (pysot's ``load_img=True``)."""
        if self.imgs is None:
            self.imgs = [read_image(p) for p in self.img_names]
            self._size = (self.imgs[0].shape[1], self.imgs[0].shape[0])

    @property
    def width(self) -> int:
        if self._size is None:
            self.load_frame(0)
        return self._size[0]

    @property
    def height(self) -> int:
        if self._size is None:
            self.load_frame(0)
        return self._size[1]

    def __len__(self) -> int:
        return len(self.img_names)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, list[float]]:
        return self.load_frame(idx), self.gt_traj[idx]

    def __iter__(self) -> Iterator[tuple[np.ndarray, list[float]]]:
        for i in range(len(self)):
            yield self.load_frame(i), self.gt_traj[i]

    def __repr__(self) -> str:
        return f"Video({self.name!r}, frames={len(self)})"

    # ------------------------------------------------------------- results
    def load_tracker(self, path: Union[str, Path], tracker_names: Union[None, str, Sequence[str]] = None,
                     store: bool = True) -> Any:
        """Read trackers' results for this video from ``path`` (``<results>/<dataset>``) in pysot's layout.

        ``pred_trajs[name]`` is a list of boxes, or for VOT a list of repetitions (each a list of lines,
        markers as ``[1.0]``/``[2.0]``/``[0.0]``); long-term confidences go to ``confidence[name]``.
        With ``store=False`` the last tracker's result is returned instead (for long-term a tuple
        ``(boxes, confidences)``). ``tracker_names=None`` reads every tracker folder under ``path``.
        """
        path = Path(path)
        if tracker_names is None:
            tracker_names = sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
        elif isinstance(tracker_names, str):
            tracker_names = [tracker_names]
        loaded: Any = None
        for name in tracker_names:
            loaded = self._read_result(path / name)
            if store:
                if self.result_kind == "longterm":
                    self.pred_trajs[name], self.confidence[name] = loaded
                else:
                    self.pred_trajs[name] = loaded
        self.tracker_names = list(self.pred_trajs)
        return loaded

    def _read_result(self, tracker_dir: Path) -> Any:
        kind, n = self.result_kind, len(self)
        main = R.result_files(tracker_dir, self.name, kind)["boxes"]  # the name checked as a path component
        if kind == "vot":
            base = main.parent
            files = sorted(base.glob(f"{self.name}_[0-9][0-9][0-9].txt")) if base.is_dir() else []
            if not files:
                raise FileNotFoundError(f"no VOT result for {self.name!r}: {base}/{self.name}_001.txt")
            return [R.read_vot(f, expected_len=n) for f in files]
        if kind == "longterm":
            boxes, scores, _ = R.read_longterm(main.parent, expected_len=n)
            return boxes, scores
        candidates = [main]
        if kind == "got10k":
            candidates.append(tracker_dir / f"{self.name}.txt")
        else:
            candidates += [tracker_dir / x for x in _legacy_otb_names(self.name)]
        for f in candidates:
            if f.is_file():
                return R.read_ope(f, expected_len=n)
        raise FileNotFoundError(f"no result for video {self.name!r}: {candidates[0]}")


def _legacy_otb_names(name: str) -> list[str]:
    # Result files of published OTB trackers sometimes use the old lower-case names.
    special = {"Jogging-1": "jogging_1", "Jogging-2": "jogging_2", "Skating2-1": "skating2_1",
               "Skating2-2": "skating2_2", "Human4-2": "human4_2", "FleetFace": "fleetface",
               "FaceOcc1": "faceocc1", "FaceOcc2": "faceocc2"}
    alt = special.get(name, name[:1].lower() + name[1:])
    return [f"{alt}.txt"] if alt != name else []


class Dataset:
    """A benchmark: videos by name (sorted), attributes, and pysot's ``set_tracker``."""

    def __init__(self, name: str, dataset_root: Union[str, Path], videos: Sequence[Video], layout: str,
                 source: Optional[Path] = None):
        self.name = name
        self.dataset_root = str(dataset_root)
        self.layout = layout
        self.source = source
        if not videos:
            raise DatasetError(f"{name}: no videos found under {dataset_root}")
        self.videos: dict[str, Video] = {v.name: v for v in sorted(videos, key=lambda v: v.name)}
        if len(self.videos) != len(videos):
            raise DatasetError(f"{name}: duplicate video names under {dataset_root}")
        self.attr: dict[str, list[str]] = {"ALL": list(self.videos)}
        for v in self.videos.values():
            for a in v.attr:
                self.attr.setdefault(a, []).append(v.name)
        self.tags = ["all", *VOT_TAGS, "empty"] if any(v.tags for v in self.videos.values()) else []
        self.tracker_path: Optional[str] = None
        self.tracker_names: list[str] = []

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[Video]:
        return iter(self.videos.values())

    def __getitem__(self, key: Union[str, int]) -> Video:
        if isinstance(key, (int, np.integer)):
            return list(self.videos.values())[key]
        try:
            return self.videos[key]
        except KeyError:
            raise KeyError(f"{self.name} has no video {key!r}") from None

    def __contains__(self, key: str) -> bool:
        return key in self.videos

    def set_tracker(self, path: Union[str, Path], tracker_names: Sequence[str]) -> None:
        """Remember where results live (``<results>/<dataset>``) and which trackers to evaluate."""
        self.tracker_path = str(path)
        self.tracker_names = list(tracker_names)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, videos={len(self)}, layout={self.layout!r})"


def nan_box(width: int = 4) -> list[float]:
    """A placeholder box for frames without ground truth (test splits)."""
    return [math.nan] * width
