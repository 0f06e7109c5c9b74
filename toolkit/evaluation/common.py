"""Helpers the benchmarks share: which trackers to score, and reading one tracker's result for a video."""
from __future__ import annotations

import warnings
from typing import Any, Iterable, List, Optional, Union

__all__ = ["MissingResultWarning", "tracker_list", "load_prediction"]


class MissingResultWarning(UserWarning):
    """A tracker has no result file for a video; the video is left out of that tracker's scores."""


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
        raise ValueError(f"no results loaded for tracker {tracker!r} and no tracker_path set on the dataset "
                         "(call dataset.set_tracker(path, names) first)")
    try:
        return video.load_tracker(path, tracker, store=False)
    except FileNotFoundError as e:
        warnings.warn(f"{tracker}: {e}; video {video.name!r} left out of its scores", MissingResultWarning,
                      stacklevel=2)
        return None
