"""Submission archives for benchmark servers, checked before anything is written.

What each server reads (docs/VOT.md cites the sources):

- ``got10k`` (GOT-10k test, evaluation server): ``<seq>/<seq>_001.txt`` with one ``x,y,w,h`` per frame
  (comma-separated) and ``<seq>/<seq>_time.txt`` with one time in seconds per frame, at the archive root, as the
  got10k toolkit's ``ExperimentGOT10k.report`` zips its ``results/GOT-10k/<tracker>/`` folder;
- ``ope`` (TrackingNet test server; LaSOT and other one-pass benchmarks): ``<seq>.txt`` per sequence at the
  archive root, one ``x,y,w,h`` per frame, comma-separated, as the TrackingNet devkit's ``metrics.py`` reads it;
- ``vot`` (VOT2016-2019 reset protocol): ``baseline/<seq>/<seq>_001.txt`` with ``1``/``2``/``0`` markers and
  boxes or polygons, the ``<experiment>/<sequence>/<file>`` layout of the VOT toolkit's ``vot pack``;
- ``longterm`` (VOT2018-LT): ``longterm/<seq>/<seq>_001.txt``, ``<seq>_001_confidence.value``, ``<seq>_time.txt``.

Every sequence of the benchmark must have its files; each file needs one line per frame and must pass the
readers' validity rule (:func:`toolkit.results.check_box_sizes`: finite numbers, the allowed value counts), here
with zero sizes refused too: boxes of positive width and height. The first problem raises
:class:`toolkit.results.ResultFileError` naming the file and line. Sequence names must be plain names
(:mod:`toolkit.names`) and every archive member a plain relative path (no zip-slip). Files are rewritten from the
parsed numbers (commas, shortest round-trip floats), so a result written with spaces or tabs still reaches the
server in its format.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence, Tuple, Union

from toolkit.errors import BadInput
from toolkit.names import UnsafeNameError, check_name
from toolkit.results import (
    ResultFileError,
    check_box_sizes,
    read_longterm,
    read_ope,
    read_values,
    read_vot,
    result_files,
    result_kind,
)

__all__ = ["SubmissionError", "submission_entries", "zip_bytes", "format_values", "check_member"]

PathLike = Union[str, Path]
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same results give the same archive bytes


class SubmissionError(BadInput, ValueError):
    """The results cannot make a complete submission (missing sequences, empty benchmark)."""


def format_values(values: Sequence[float]) -> str:
    """One line of numbers, comma-separated: integers without a point, others as the shortest round-trip float."""
    return ",".join(str(int(v)) if float(v).is_integer() and abs(v) < 2**53 else repr(float(v)) for v in values)


def _times(path: Path, n: int) -> list[str]:
    values = read_values(path, (1,), expected_len=n)
    for i, (t,) in enumerate(values, 1):
        if t < 0:
            raise ResultFileError(path, i, f"negative time {t!r}")
    return [format_values(v) for v in values]


def _video_entries(kind: str, tracker_dir: Path, name: str, n: int) -> list[Tuple[str, list[str]]]:
    """(archive name, lines) of one sequence, validated."""
    files = result_files(tracker_dir, name, kind)
    if kind == "vot":
        lines = read_vot(files["boxes"], expected_len=n)
        check_box_sizes(files["boxes"], lines, positive=True)
        return [(f"baseline/{name}/{name}_001.txt", [format_values(v) for v in lines])]
    if kind == "longterm":
        boxes, scores, times = read_longterm(files["boxes"].parent, expected_len=n)
        check_box_sizes(files["boxes"], boxes, positive=True)
        if times is None:
            raise ResultFileError(files["times"], 0, "file not found (the long-term analysis needs the times)")
        conf = [""] + [format_values([s]) for s in scores[1:]]
        return [(f"longterm/{name}/{name}_001.txt", [format_values(v) for v in boxes]),
                (f"longterm/{name}/{name}_001_confidence.value", conf),
                (f"longterm/{name}/{name}_time.txt", [format_values([t]) for t in times])]
    boxes = read_ope(files["boxes"], expected_len=n)
    check_box_sizes(files["boxes"], boxes, positive=True)
    text = [format_values(v) for v in boxes]
    if kind == "got10k":
        return [(f"{name}/{name}_001.txt", text), (f"{name}/{name}_time.txt", _times(files["times"], n))]
    return [(f"{name}.txt", text)]


def submission_entries(dataset_name: str, tracker_dir: PathLike, videos: Iterable[Tuple[str, int]]
                       ) -> dict[str, str]:
    """Archive name -> file text for every sequence ``(name, frames)`` of the benchmark, all validated.

    ``tracker_dir`` is ``<results>/<dataset>/<tracker>`` in this project's result layout. A sequence without
    results is an error naming how many are missing and the first missing file.
    """
    kind = result_kind(dataset_name)
    tracker_dir = Path(tracker_dir)
    videos = list(videos)
    if not videos:
        raise SubmissionError(f"{dataset_name}: the benchmark has no sequences")
    for name, _ in videos:  # archive members are built from them
        check_name(name, "sequence name", dataset_name)
    if not tracker_dir.is_dir():
        raise SubmissionError(f"no results folder {tracker_dir} (expected <tracker_path>/<dataset>/<tracker>)")
    missing = [result_files(tracker_dir, name, kind)["boxes"] for name, _ in videos
               if not result_files(tracker_dir, name, kind)["boxes"].is_file()]
    if missing:
        raise SubmissionError(f"{len(missing)} of {len(videos)} {dataset_name} sequences have no result; "
                              f"first: {missing[0]}")
    entries: dict[str, str] = {}
    for name, n in videos:
        for arcname, lines in _video_entries(kind, tracker_dir, name, n):
            entries[arcname] = "".join(f"{s}\n" for s in lines)
    return entries


def check_member(name: str) -> str:
    """``name`` when it is a plain relative archive path (``a/b.txt``): no absolute path, backslash, empty, ``.``
    or ``..`` part and no NUL, so unpacking it never writes outside the target folder (zip-slip)."""
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or "\x00" in name or any(p in ("", ".", "..") for p in parts):
        raise UnsafeNameError(f"archive member {name!r} is not a plain relative path (it could be unpacked outside "
                              "the target folder)")
    return name


def zip_bytes(entries: Mapping[str, str]) -> bytes:
    """A deflated zip of ``entries`` (archive name -> text), sorted, with fixed entry times; every name must pass
    :func:`check_member`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(map(check_member, entries)):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name].encode("utf-8"))
    return buf.getvalue()
