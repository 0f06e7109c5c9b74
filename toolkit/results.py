"""Every tracking-result file format, read and written in one place (pysot's layout).

Layouts under ``<results_dir>/<dataset>/<tracker>/``:

- ``ope``: ``<video>.txt``, one ``x,y,w,h`` per frame (Python ``repr`` floats; line 1 is the init box);
- ``vot``: ``baseline/<video>/<video>_001.txt``, ``1`` (init), ``2`` (failure), ``0`` (skipped) or a box
  (4 values) / polygon (8 values) written ``%.4f`` after a float32 cast, as the published script does;
- ``longterm``: ``longterm/<video>/<video>_001.txt`` (line 1 is ``1``), ``<video>_001_confidence.value``
  (line 1 empty, then ``%.6f``) and ``<video>_time.txt`` (``%.6f`` seconds);
- ``got10k``: ``<video>/<video>_001.txt`` (``repr`` floats) and ``<video>_time.txt``.

Writes are atomic (:mod:`toolkit.atomic`), so a result file is either whole or absent.
Readers raise :class:`ResultFileError` naming the file and line for anything they cannot trust; what a valid
line is (finite numbers, the allowed value counts, boxes ``x,y,w,h`` with ``w, h >= 0``) is decided here once, for
the scorers and the submission packer alike (:func:`check_box_sizes`). Video, tracker and dataset names are
data, never paths: each becomes one plain path component inside its folder (:mod:`toolkit.names`).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from toolkit.atomic import atomic_write
from toolkit.errors import BadInput
from toolkit.names import check_name, join_inside

__all__ = [
    "ResultFileError",
    "KINDS",
    "result_kind",
    "result_path",
    "result_files",
    "tracker_folder",
    "check_box_sizes",
    "is_finished",
    "write_video_result",
    "format_ope_line",
    "format_vot_line",
    "write_lines",
    "read_ope",
    "read_vot",
    "read_longterm",
    "read_got10k",
    "read_values",
]

PathLike = Union[str, os.PathLike]
Line = Union[int, Sequence[float]]
KINDS = ("ope", "vot", "longterm", "got10k")
VOT_MARKERS = (0, 1, 2)
_SPLIT = re.compile(r"[,\s]+")


class ResultFileError(BadInput, ValueError):
    """A result file that is empty, truncated, garbled or holds non-finite numbers."""

    def __init__(self, path: PathLike, line_no: int, reason: str):
        self.path, self.line_no, self.reason = str(path), line_no, reason
        where = f"{path}, line {line_no}" if line_no else str(path)
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # re-raisable in a parent process (multiprocessing pickles it)
        return (type(self), (self.path, self.line_no, self.reason))


def result_kind(dataset_name: str) -> str:
    """The result layout a benchmark uses: 'vot', 'longterm', 'got10k' or 'ope'."""
    if dataset_name in ("VOT2016", "VOT2017", "VOT2018", "VOT2019"):
        return "vot"
    if dataset_name == "VOT2018-LT":
        return "longterm"
    if dataset_name.startswith("GOT-10k"):
        return "got10k"
    return "ope"


def check_kind(kind: str) -> str:
    """`kind` if it is one of KINDS, else a ValueError listing them."""
    if kind not in KINDS:
        raise ValueError(f"unknown result kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return kind


def result_files(tracker_dir: PathLike, video_name: str, kind: str) -> dict[str, Path]:
    """Paths of a video's result files inside ``<results>/<dataset>/<tracker>``: 'boxes' and companions.

    The one place result paths are built: ``video_name`` must be a plain name whose file or folder, resolved,
    stays inside its folder (else :class:`toolkit.names.UnsafeNameError`, exit 2).
    """
    d, v = Path(tracker_dir), video_name
    kind = check_kind(kind)
    if kind == "ope":
        return {"boxes": join_inside(d, v, "video name", suffix=".txt")}
    if kind == "vot":
        return {"boxes": join_inside(d / "baseline", v, "video name") / f"{v}_001.txt"}
    if kind == "longterm":
        vd = join_inside(d / "longterm", v, "video name")
        return {"boxes": vd / f"{v}_001.txt", "confidence": vd / f"{v}_001_confidence.value",
                "times": vd / f"{v}_time.txt"}
    vd = join_inside(d, v, "video name")
    return {"boxes": vd / f"{v}_001.txt", "times": vd / f"{v}_time.txt"}


def tracker_folder(results_dir: PathLike, dataset_name: str, tracker_name: str) -> Path:
    """``<results_dir>/<dataset>/<tracker>``; both names must be plain names. The folders themselves may be
    symlinks (results kept on another disk, downloaded results of published trackers), so they are not resolved."""
    return Path(results_dir) / check_name(dataset_name, "dataset name") / check_name(tracker_name, "tracker name")


def result_path(results_dir: PathLike, dataset_name: str, tracker_name: str, video_name: str,
                kind: Optional[str] = None) -> Path:
    """Path of a video's main result file, ``<results_dir>/<dataset>/<tracker>/…`` in pysot's layout."""
    kind = kind or result_kind(dataset_name)
    return result_files(tracker_folder(results_dir, dataset_name, tracker_name), video_name, kind)["boxes"]


def is_finished(results_dir: PathLike, dataset_name: str, tracker_name: str, video_name: str,
                kind: Optional[str] = None, num_frames: Optional[int] = None) -> bool:
    """True when every file of the video's result exists, parses and (if given) has ``num_frames`` lines."""
    kind = kind or result_kind(dataset_name)
    files = result_files(tracker_folder(results_dir, dataset_name, tracker_name), video_name, kind)
    if not all(p.is_file() for p in files.values()):
        return False
    reader = {"ope": read_ope, "vot": read_vot, "got10k": read_got10k, "longterm": read_longterm}[kind]
    try:
        reader(files["boxes"].parent if kind == "longterm" else files["boxes"], expected_len=num_frames)
    except ResultFileError:
        return False
    return True


# ---------------------------------------------------------------- writing

def write_lines(path: PathLike, lines: Iterable[str]) -> Path:
    """Write text lines (each ending in a newline) atomically; returns the path."""
    path = Path(path)
    atomic_write(path, "".join(f"{s}\n" for s in lines))
    return path


def _finite(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"refusing to write a non-finite {what}: {out}")
    return out


def _writable_box(values: Sequence[float]) -> list[float]:
    """A box or polygon that the readers will accept (finite; a box's width and height >= 0)."""
    out = _finite(values, "box")
    if len(out) == 4 and not (out[2] >= 0 and out[3] >= 0):
        raise ValueError(f"refusing to write a box with a negative width or height: {out}")
    return out


def format_ope_line(box: Sequence[float]) -> str:
    """A box as the published script writes it: ``repr`` floats joined by commas.

    A numpy float32 keeps its own shortest form (``str``), as the published ``str(v)`` gives it.
    """
    _writable_box(box)
    return ",".join(str(v) if isinstance(v, np.floating) else repr(float(v)) for v in box)


def format_vot_line(line: Line) -> str:
    """A VOT reset-protocol line: a marker ``%d``, or ``%.4f`` of each value cast to float32."""
    if isinstance(line, (int, np.integer)):
        if int(line) not in VOT_MARKERS:
            raise ValueError(f"VOT marker must be one of {VOT_MARKERS}, got {line}")
        return f"{int(line):d}"
    # The published writer formats through a C float, which moves a few %.4f roundings.
    return ",".join("%.4f" % float(np.float32(v)) for v in _writable_box(line))


def _format_time(t: float) -> str:
    return f"{float(t):.6f}"


def write_video_result(results_dir: PathLike, dataset_name: str, tracker_name: str, video_name: str,
                       boxes: Sequence[Line], scores: Optional[Sequence[Optional[float]]] = None,
                       times: Optional[Sequence[float]] = None, kind: Optional[str] = None) -> Path:
    """Write all files of one video's result in the dataset's layout; returns the main file's path.

    ``boxes`` are per-frame lines as the protocols return them (init box / markers included); long-term
    results need ``scores`` (None for the init frame) and ``times``, GOT-10k results need ``times``.
    The main file is written last, so its presence means the whole result is there.
    """
    kind = kind or result_kind(dataset_name)
    files = result_files(tracker_folder(results_dir, dataset_name, tracker_name), video_name, kind)
    if kind in ("longterm", "got10k") and (times is None or len(times) != len(boxes)):
        raise ValueError(f"{kind} results need one time per frame ({len(boxes)} frames)")
    if kind == "longterm":
        if scores is None or len(scores) != len(boxes):
            raise ValueError(f"long-term results need one score per frame ({len(boxes)} frames)")
        write_lines(files["confidence"], ("" if s is None else f"{float(s):.6f}" for s in scores))
    if "times" in files:
        write_lines(files["times"], (_format_time(t) for t in times))
    if kind == "vot":
        text = [format_vot_line(x) for x in boxes]
    elif kind == "longterm":
        text = [format_ope_line(x) if len(x) != 1 else f"{int(x[0]):d}" for x in boxes]
    else:
        text = [format_ope_line(x) for x in boxes]
    return write_lines(files["boxes"], text)


# ---------------------------------------------------------------- reading

def read_values(path: PathLike, widths: Sequence[int], *, allow_blank: bool = False,
                expected_len: Optional[int] = None) -> list[Optional[list[float]]]:
    """Parse a file of comma/space separated numbers, one record per line, checking every line.

    ``widths`` are the allowed numbers per line; blank lines are errors unless ``allow_blank`` (then
    they read as None). Non-finite values, a wrong count and a wrong line total raise ResultFileError.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultFileError(path, 0, "file not found") from None
    except UnicodeDecodeError as e:
        raise ResultFileError(path, 0, f"not a text file ({e.reason})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    if not lines or (not allow_blank and all(not s.strip() for s in lines)):
        raise ResultFileError(path, 0, "empty file")
    out: list[Optional[list[float]]] = []
    for i, raw in enumerate(lines, 1):
        s = raw.strip()
        if not s:
            if not allow_blank:
                raise ResultFileError(path, i, "blank line")
            out.append(None)
            continue
        try:
            vals = [float(v) for v in _SPLIT.split(s)]
        except ValueError:
            raise ResultFileError(path, i, f"not numbers: {s[:60]!r}") from None
        if len(vals) not in widths:
            allowed = " or ".join(map(str, widths))
            raise ResultFileError(path, i, f"{len(vals)} values, expected {allowed}: {s[:60]!r}")
        if not all(math.isfinite(v) for v in vals):
            raise ResultFileError(path, i, f"non-finite value: {s[:60]!r}")
        out.append(vals)
    if expected_len is not None and len(out) != expected_len:
        raise ResultFileError(path, len(out), f"{len(out)} lines, expected {expected_len} (one per frame)")
    return out


def check_box_sizes(path: PathLike, lines: Sequence[Sequence[float]], *, positive: bool = False) -> None:
    """The validity rule for boxes, shared by every reader (scoring) and the packer: a line of 4 values
    (``x, y, w, h``) needs ``w >= 0`` and ``h >= 0``; ``positive`` (submission servers) also refuses zero.

    A zero size stays scorable: it overlaps nothing, so it counts as a miss (a tracker that lost the target may
    write one; the evaluation fixtures' scores count such lines); a negative one is no box at all. Markers
    (1 value) and polygons (8 values) are not checked here. ``lines[0]`` is line 1 of ``path``.
    """
    for i, vals in enumerate(lines, 1):
        if len(vals) != 4:
            continue
        smaller = min(vals[2], vals[3])
        if smaller < 0 or (positive and smaller == 0):
            shown = ",".join(f"{v:.10g}" for v in vals)
            raise ResultFileError(path, i, f"width and height must be {'positive' if positive else '>= 0'}: {shown}")


def read_ope(path: PathLike, expected_len: Optional[int] = None) -> list[list[float]]:
    """Read a one-pass result file: one ``x,y,w,h`` per frame."""
    boxes = read_values(path, (4,), expected_len=expected_len)
    check_box_sizes(path, boxes)
    return boxes


def read_vot(path: PathLike, expected_len: Optional[int] = None) -> list[list[float]]:
    """Read a VOT reset-protocol file: ``[1.]``/``[2.]``/``[0.]`` markers, boxes or polygons."""
    lines = read_values(path, (1, 4, 8), expected_len=expected_len)
    for i, v in enumerate(lines, 1):
        if len(v) == 1 and v[0] not in VOT_MARKERS:
            raise ResultFileError(path, i, f"marker must be 0, 1 or 2, got {v[0]:g}")
    if lines[0] != [1.0]:
        raise ResultFileError(path, 1, "first line must be the initialisation marker 1")
    check_box_sizes(path, lines)
    return lines


def read_got10k(path: PathLike, expected_len: Optional[int] = None) -> list[list[float]]:
    """Read a GOT-10k result file ``<video>_001.txt`` (one box per frame)."""
    return read_ope(path, expected_len=expected_len)


def read_times(path: PathLike, expected_len: Optional[int] = None) -> list[float]:
    """Read a ``<video>_time.txt`` file (seconds per frame)."""
    return [v[0] for v in read_values(path, (1,), expected_len=expected_len)]


def read_longterm(video_dir: PathLike, expected_len: Optional[int] = None
                  ) -> tuple[list[list[float]], list[float], Optional[list[float]]]:
    """Read ``longterm/<video>/``: (boxes with ``[1.]`` first, confidences with NaN first, times or None)."""
    video_dir = Path(video_dir)
    v = video_dir.name
    box_file = video_dir / f"{v}_001.txt"
    boxes = read_values(box_file, (1, 4), expected_len=expected_len)
    if boxes[0] != [1.0]:
        raise ResultFileError(box_file, 1, "first line must be the initialisation marker 1")
    for i, b in enumerate(boxes[1:], 2):
        if len(b) != 4:
            raise ResultFileError(box_file, i, "expected a box x,y,w,h")
    check_box_sizes(box_file, boxes)
    conf_file = video_dir / f"{v}_001_confidence.value"
    conf = read_values(conf_file, (1,), allow_blank=True, expected_len=len(boxes))
    if any(c is None for c in conf[1:]):
        raise ResultFileError(conf_file, 1 + next(i for i, c in enumerate(conf[1:], 1) if c is None),
                              "blank confidence after the first frame")
    scores = [float("nan")] + [c[0] for c in conf[1:]]
    time_file = video_dir / f"{v}_time.txt"
    times = read_times(time_file, expected_len=len(boxes)) if time_file.exists() else None
    return boxes, scores, times
