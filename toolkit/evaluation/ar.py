"""VOT accuracy, robustness and lost number, as the published pysot toolkit computes and prints them.

Per frame the rasterised VOT overlap with bounds (W, H); the initialisation frame and the burnin-1
frames after every ``1`` marker are unknown; a video's overlaps are NaN-averaged over its runs.
Accuracy pools every frame of every video; robustness = mean over runs of total failures / total frames
x 100; lost number = mean over runs of total failures.
"""
from __future__ import annotations

import warnings
from typing import Dict, Iterable, Sequence, Union

import numpy as np

from toolkit.evaluation.common import tracker_list, video_level_table
from toolkit.evaluation.trajectory import RunOverlaps, burnin_mask, failure_frames, tracker_overlaps

__all__ = ["accuracy_overlaps", "video_accuracy", "accuracy_robustness", "AccuracyRobustnessBenchmark",
           "format_ar_table"]


def accuracy_overlaps(run: RunOverlaps, burnin: int = 10) -> np.ndarray:
    """Per-frame overlaps (float64) of one run with the burn-in frames unknown (NaN)."""
    ov = run.overlaps_wh.astype(np.float64)
    ov[burnin_mask(run.codes, burnin)] = np.nan
    return ov


def video_accuracy(runs: Sequence[RunOverlaps], burnin: int = 10) -> np.ndarray:
    """A video's per-frame overlaps, NaN-averaged over its runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(np.array([accuracy_overlaps(r, burnin) for r in runs]), axis=0)


def accuracy_robustness(overlaps: Dict[str, np.ndarray], failures: Dict[str, Sequence[int]]) -> Dict[str, float]:
    """Dataset accuracy (pooled NaN-mean), robustness (x100 per frame) and lost number, mean over runs."""
    pooled = np.concatenate([np.asarray(o, np.float64) for o in overlaps.values()]) if overlaps else np.zeros(0)
    length = len(pooled)
    totals = np.sum(np.array([list(f) for f in failures.values()], np.float64), axis=0)  # per run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        accuracy = float(np.nanmean(pooled)) if length else float("nan")
        return {"accuracy": accuracy,
                "robustness": float(np.mean(totals / length) * 100),
                "lost_number": float(np.mean(totals))}


class AccuracyRobustnessBenchmark:
    """pysot's AccuracyRobustnessBenchmark: eval() gives per-video overlaps and failures per tracker."""

    def __init__(self, dataset, burnin: int = 10):
        self.dataset = dataset
        self.burnin = burnin

    def eval(self, eval_trackers: Union[None, str, Iterable[str]] = None) -> Dict[str, Dict[str, dict]]:
        """{tracker: {'overlaps': {video: per-frame list}, 'failures': {video: [failures per run]}}}."""
        result = {}
        for tracker in tracker_list(self.dataset, eval_trackers):
            runs = tracker_overlaps(self.dataset, tracker)
            result[tracker] = {
                "overlaps": {v: video_accuracy(r, self.burnin).tolist() for v, r in runs.items()},
                "failures": {v: [len(failure_frames(x.codes)) for x in r] for v, r in runs.items()},
            }
        return result

    @staticmethod
    def summarize(result: Dict[str, dict]) -> Dict[str, float]:
        """accuracy, robustness, lost_number of one tracker's eval() entry."""
        return accuracy_robustness(result["overlaps"], result["failures"])

    @staticmethod
    def show_result(result, eao_result=None, show_video_level: bool = False) -> str:
        """Print (and return) pysot's table; see `format_ar_table`."""
        text = format_ar_table(result, eao_result, show_video_level)
        print(text)
        return text


def format_ar_table(result: Dict[str, dict], eao_result: Dict[str, Dict[str, float]] = None,
                    show_video_level: bool = False) -> str:
    """pysot's accuracy/robustness table (with EAO, sorted by it, when given) and the per-video table."""
    name_len = max(max(len(t) for t in result) + 2, 12)
    cols = ["Accuracy", "Robustness", "Lost Number"] + (["EAO"] if eao_result is not None else [])
    widths = [10, 12, 13, 7][: len(cols)]
    header = "|{:^{w}}|".format("Tracker Name", w=name_len) + "".join("{:^{w}}|".format(c, w=w)
                                                                       for c, w in zip(cols, widths))
    bar = "-" * len(header)
    if eao_result is not None:
        order = sorted(eao_result, key=lambda t: eao_result[t]["all"], reverse=True)
    else:
        order = list(result)
    lines = [bar, header, bar]
    for t in order:
        s = accuracy_robustness(result[t]["overlaps"], result[t]["failures"])
        vals = [s["accuracy"], s["robustness"], s["lost_number"]] + (
            [eao_result[t]["all"]] if eao_result is not None else [])
        fmts = [".3f", ".3f", ".1f", ".3f"]
        lines.append("|{:^{w}}|".format(t, w=name_len) + "".join(
            "{:^{w}{f}}|".format(v, w=w, f=f) for v, w, f in zip(vals, widths, fmts)))
    lines.append(bar)
    if show_video_level and len(result) < 10:
        def acc_lost(t: str, v: str) -> Sequence[float]:
            return (np.nanmean(result[t]["overlaps"].get(v, [np.nan])), np.mean(result[t]["failures"].get(v, [np.nan])))

        with warnings.catch_warnings():  # nanmean of a video without any scored frame
            warnings.simplefilter("ignore", category=RuntimeWarning)
            lines += [""] + video_level_table(list(result), next(iter(result.values()))["overlaps"], ("Acc", "LN"),
                                              ("{:^8.3f}", "{:^8.3f}"), acc_lost, name_width=14, col_width=17)
    return "\n".join(lines)
