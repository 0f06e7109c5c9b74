"""Helpers the benchmarks share: which trackers to score, and reading one tracker's result for a video."""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from toolkit.errors import BadValue

__all__ = ["MissingResultWarning", "collect_missing", "tracker_list", "load_prediction", "video_level_table"]


class MissingResultWarning(UserWarning):
    """A tracker has no result file for a video; the video is left out of that tracker's scores."""

    def __init__(self, message: str, tracker: Optional[str] = None, video: Optional[str] = None):
        super().__init__(message)
        self.tracker, self.video = tracker, video


_REEMITTED: Dict[Any, bool] = {}  # the warnings registry of re-emitted warnings ("default" shows each once)


@contextlib.contextmanager
def collect_missing() -> Iterator[List[str]]:
    """Names of the videos whose result was missing inside the block (in order, once each).

    The list is filled when the block ends; every warning (these included) is still shown afterwards, as the
    caller's warning filters decide.
    """
    missing: List[str] = []
    caught: List[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # record everything here; the outer filters apply when re-emitted
            yield missing
    finally:
        for w in caught:
            if isinstance(w.message, MissingResultWarning) and w.message.video not in (None, *missing):
                missing.append(w.message.video)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, registry=_REEMITTED,
                                   source=w.source)


def tracker_list(dataset, trackers: Union[None, str, Iterable[str]]) -> List[str]:
    """Tracker names to evaluate: the given name(s), else the dataset's ``tracker_names``."""
    if trackers is None:
        trackers = getattr(dataset, "tracker_names", None) or []
    if isinstance(trackers, str):
        trackers = [trackers]
    return list(trackers)


def load_prediction(dataset, video, tracker: str) -> Optional[Any]:
    """The tracker's result for a video (stored ``pred_trajs`` first, else read from ``dataset.tracker_path``).

    A missing result file gives a MissingResultWarning naming it and None; a garbled, empty or truncated
    file raises the reader's error (it names the file and line).
    """
    if tracker in video.pred_trajs:
        if getattr(video, "result_kind", None) == "longterm":
            return video.pred_trajs[tracker], video.confidence[tracker]
        return video.pred_trajs[tracker]
    path = getattr(dataset, "tracker_path", None)
    if path is None:
        raise BadValue(f"no results loaded for tracker {tracker!r} and no tracker_path set on the dataset "
                         "(call dataset.set_tracker(path, names) first)")
    try:
        return video.load_tracker(path, tracker, store=False)
    except FileNotFoundError as e:
        warnings.warn(MissingResultWarning(f"{tracker}: {e}; video {video.name!r} left out of its scores",
                                           tracker, video.name), stacklevel=2)
        return None


def video_level_table(trackers: Sequence[str], videos: Iterable[str], columns: Sequence[str], fmts: Sequence[str],
                      values: Callable[[str, str], Optional[Sequence[float]]], name_width: int,
                      col_width: int) -> List[str]:
    """The per-video table under pysot's summaries (`--show_video_level`): a row per video, a column group
    per tracker. ``values(tracker, video)`` gives the group's numbers, or None to show "-" in each cell.
    Column widths are those of the formats (``"{:^8.3f}"`` -> 8), joined by "|"."""
    widths = [len(f.format(0.0)) for f in fmts]
    head1 = "|{:^{w}}|".format("Tracker name", w=name_width) + "".join(
        "{:^{w}}|".format(t, w=col_width) for t in trackers)
    group = "|".join("{:^{w}}".format(c, w=w) for c, w in zip(columns, widths)) + "|"
    head2 = "|{:^{w}}|".format("Video name", w=name_width) + group * len(trackers)
    bar = "-" * len(head1)
    lines = [bar, head1, bar, head2, bar]
    for v in videos:
        row = "|{:^{w}}|".format(v, w=name_width)
        for t in trackers:
            vals = values(t, v)
            cells = ("{:^{w}}".format("-", w=w) for w in widths) if vals is None else (
                f.format(x) for f, x in zip(fmts, vals))
            row += "|".join(cells) + "|"
        lines.append(row)
    lines.append(bar)
    return lines
