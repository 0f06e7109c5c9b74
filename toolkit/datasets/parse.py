"""Strict readers for the text files of benchmark downloads: every error names the file and line."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Optional, Sequence

from toolkit.errors import BadInput

__all__ = ["DatasetError", "check_box_values", "read_boxes", "read_flags", "read_names", "list_images", "load_json"]

_SPLIT = re.compile(r"[,\s]+")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


class DatasetError(BadInput, ValueError):
    """A benchmark file that is missing, malformed or inconsistent."""


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not a text file ({e.reason})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def check_box_values(vals: Sequence[float], where: str, widths: Sequence[int], allow_nan: bool,
                     shown: str = "") -> None:
    """One box's values: a length in ``widths``, and no NaN (all-NaN allowed with ``allow_nan``, an absence
    marker). ``where`` (file and line, or json video and frame) starts the error, ``shown`` ends it."""
    end = f": {shown}" if shown else ""
    if len(vals) not in widths:
        raise DatasetError(f"{where}: {len(vals)} values, expected {' or '.join(map(str, widths))}{end}")
    nan = [math.isnan(v) for v in vals]
    if any(nan) and not (allow_nan and all(nan)):
        raise DatasetError(f"{where}: NaN in the ground truth{end}")


def read_boxes(path: Path, widths: Sequence[int] = (4,), allow_nan: bool = False) -> list[list[float]]:
    """Ground-truth file -> list of boxes; separators may be commas, tabs or spaces.

    ``allow_nan``: a line of NaNs (a frame without a target, as UAV123 and VOT-LT annotate it) is kept;
    otherwise, and for partly-NaN lines, NaN is an error.
    """
    path = Path(path)
    lines = _lines(path)
    if not lines:
        raise DatasetError(f"{path}: empty ground-truth file")
    out = []
    for i, raw in enumerate(lines, 1):
        s = raw.strip()
        if not s:
            raise DatasetError(f"{path}, line {i}: blank line inside the ground truth")
        if s.startswith("m"):
            raise DatasetError(f"{path}, line {i}: mask regions are not supported")
        try:
            vals = [float(v) for v in _SPLIT.split(s.strip(","))]
        except ValueError:
            raise DatasetError(f"{path}, line {i}: not numbers: {s[:60]!r}") from None
        check_box_values(vals, f"{path}, line {i}", widths, allow_nan, shown=repr(s[:60]))
        if any(math.isinf(v) for v in vals):
            raise DatasetError(f"{path}, line {i}: infinite value: {s[:60]!r}")
        out.append(vals)
    return out


def read_flags(path: Path, length: Optional[int] = None) -> list[int]:
    """0/1 per frame, one per line (VOT tags, GOT-10k labels) or comma-separated (LaSOT)."""
    path = Path(path)
    out: list[int] = []
    for i, raw in enumerate(_lines(path), 1):
        for tok in (t for t in _SPLIT.split(raw.strip()) if t):
            try:
                v = float(tok)
            except ValueError:
                raise DatasetError(f"{path}, line {i}: not a 0/1 flag: {tok!r}") from None
            if v not in (0.0, 1.0):
                raise DatasetError(f"{path}, line {i}: flag must be 0 or 1, got {tok!r}")
            out.append(int(v))
    if length is not None and len(out) != length:
        raise DatasetError(f"{path}: {len(out)} flags, expected {length} (one per frame)")
    return out


def read_names(path: Path) -> list[str]:
    """A list file (``list.txt``, ``testing_set.txt``): one sequence name per non-empty line."""
    return [s.strip() for s in _lines(Path(path)) if s.strip()]


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by the number in their name (``0.jpg … 10.jpg`` too)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: image folder not found")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")]

    def key(p: Path) -> tuple:
        digits = re.findall(r"\d+", p.stem)
        return (int(digits[-1]) if digits else -1, p.name)

    return sorted(files, key=key)


def _first_duplicate(pairs: list[tuple[str, Any]]) -> Optional[str]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


def _refuse_duplicates(path: Path, meta: dict[str, Any], duplicates: list[tuple[dict, str]]) -> None:
    """A video listed twice would be tracked twice under one name and another never: refuse, naming the key.
    Duplicate keys inside a video's entry (two ``gt_rect``) are refused the same way; deeper ones are not read."""
    repeated = {id(obj): key for obj, key in duplicates}  # the list keeps the objects alive, so ids are unique
    if id(meta) in repeated:
        raise DatasetError(f"{path}: duplicate video key {repeated[id(meta)]!r} (each video must appear once; "
                           "a json object keeps only the last entry of a key)")
    for name, v in meta.items():
        if id(v) in repeated:
            raise DatasetError(f"{path}: video {name!r}: duplicate key {repeated[id(v)]!r}")


def load_json(path: Path) -> dict[str, Any]:
    """A pysot dataset json: ``{video: {video_dir, init_rect, img_names, gt_rect, …}}``."""
    path = Path(path)
    duplicates: list[tuple[dict, str]] = []  # (object read, its first repeated key): json.load keeps the last

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            duplicates.append((obj, _first_duplicate(pairs)))
        return obj

    try:
        with open(path) as f:
            meta = json.load(f, object_pairs_hook=pairs_hook)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}, line {e.lineno}: invalid json ({e.msg})") from None
    if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
        raise DatasetError(f"{path}: expected {{video name: {{video_dir, img_names, gt_rect, …}}}}")
    _refuse_duplicates(path, meta, duplicates)
    for name, v in meta.items():
        for key in ("img_names", "gt_rect"):
            if key not in v:
                raise DatasetError(f"{path}: video {name!r} has no {key!r}")
    return meta


def is_pysot_json(path: Path) -> bool:
    """Whether a json file looks like a pysot dataset description (used to auto-detect the layout)."""
    try:
        load_json(path)
    except (DatasetError, OSError, UnicodeDecodeError):
        return False
    return True
