"""Long-term (VOT2018-LT) tracking precision, recall and F1, as the published pysot F1 benchmark.

Overlaps are the VOT region overlaps with bounds (W, H) (unknown, e.g. the ``1`` init line or a frame
without the target, counts 0). Confidence thresholds are 100 levels picked from the sorted scores of all
videos (-inf and +inf at the ends). At threshold t a video's precision is the mean overlap of the frames
with score >= t (1 when there is none; score > 0 for -inf), its recall the summed overlap divided by the
frames showing the target. Dataset curves are means over videos; F1 = the best harmonic mean.
"""
from __future__ import annotations

import warnings
from typing import Dict, Iterable, Optional, Tuple, Union

import numpy as np

from toolkit.evaluation.common import load_prediction, tracker_list, video_level_table
from toolkit.region import vot_overlaps

__all__ = ["determine_thresholds", "f1_curves", "best_f1", "F1Benchmark", "format_f1_table"]


def determine_thresholds(scores: np.ndarray, resolution: int = 100) -> np.ndarray:
    """`resolution` thresholds (ascending): -inf, resolution-2 quantile scores, +inf."""
    scores = np.sort(np.asarray(scores, np.float64)[~np.isnan(scores)])
    delta = np.floor(len(scores) / (resolution - 2))
    idxs = np.floor(np.linspace(delta - 1, len(scores) - delta, resolution - 2) + 0.5).astype(np.int64)
    # with fewer scores than levels pysot indexes past the end; stay inside (same levels otherwise)
    idxs = np.clip(idxs, 0, len(scores) - 1) if len(scores) < resolution - 2 else idxs
    thresholds = np.empty(resolution)
    thresholds[0], thresholds[-1] = -np.inf, np.inf
    thresholds[1:-1] = scores[idxs]
    return thresholds


def f1_curves(overlaps: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, n_visible: int):
    """(f1, precision, recall) per threshold for one video; NaN overlaps and scores count 0."""
    ov = np.nan_to_num(np.asarray(overlaps, np.float64), nan=0.0)
    sc = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0)
    th = np.asarray(thresholds, np.float64)[:, None]
    selected = np.where(np.isneginf(th), sc[None, :] > 0, sc[None, :] >= th)
    count = selected.sum(axis=1)
    total = (selected * ov[None, :]).sum(axis=1)
    with np.errstate(all="ignore"):
        precision = np.where(count > 0, total / np.maximum(count, 1), 1.0)
        recall = np.where(count > 0, total / n_visible, 0.0)
        f1 = 2 * precision * recall / (precision + recall)
    return f1, precision, recall


def best_f1(precision: Dict[str, np.ndarray], recall: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Precision, recall and F1 at the threshold maximising the F1 of the video-averaged curves."""
    p = np.mean(list(precision.values()), axis=0)
    r = np.mean(list(recall.values()), axis=0)
    with np.errstate(all="ignore"):
        f1 = 2 * p * r / (p + r)
    # pysot's argmax would stop at a NaN (precision = recall = 0); such a level is never the best
    i = int(np.argmax(np.nan_to_num(f1, nan=-np.inf)))
    return {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i])}


class F1Benchmark:
    """pysot's F1Benchmark: eval() gives per-video precision/recall/F1 curves per tracker."""

    def __init__(self, dataset):
        self.dataset = dataset

    def _tracker(self, tracker: str) -> Dict[str, dict]:
        loaded = {}
        for video in self.dataset:
            res = load_prediction(self.dataset, video, tracker)
            if res is not None:
                loaded[video.name] = res
        if not loaded:
            return {"precision": {}, "recall": {}, "f1": {}}
        thresholds = determine_thresholds(np.concatenate([np.asarray(s, np.float64) for _, s in loaded.values()]))
        preds, gts, wh, spans = [], [], [], []
        for name, (boxes, _) in loaded.items():
            video = self.dataset[name]
            n = min(len(boxes), len(video.gt_traj))
            spans.append((name, len(preds), n))
            preds.extend(boxes[:n])
            gts.extend(video.gt_traj[:n])
            wh.append(np.tile([video.width, video.height], (n, 1)))
        overlaps = vot_overlaps(preds, gts, np.concatenate(wh).astype(np.float32))
        out = {"precision": {}, "recall": {}, "f1": {}}
        for name, start, n in spans:
            gt = self.dataset[name].gt_traj
            visible = sum(1 for b in gt if len(b) > 1)
            f1, p, r = f1_curves(overlaps[start:start + n], np.asarray(loaded[name][1][:n], np.float64),
                                 thresholds, visible)
            out["f1"][name], out["precision"][name], out["recall"][name] = f1, p, r
        return out

    def eval(self, eval_trackers: Union[None, str, Iterable[str]] = None) -> Dict[str, Dict[str, dict]]:
        """{tracker: {'precision'|'recall'|'f1': {video: curve}}}."""
        return {t: self._tracker(t) for t in tracker_list(self.dataset, eval_trackers)}

    @staticmethod
    def summarize(result: Dict[str, dict]) -> Dict[str, float]:
        """precision, recall, f1 of one tracker's eval() entry."""
        return best_f1(result["precision"], result["recall"])

    @staticmethod
    def show_result(result, show_video_level: bool = False) -> str:
        """Print (and return) pysot's long-term table."""
        text = format_f1_table(result, show_video_level)
        print(text)
        return text


def format_f1_table(result: Dict[str, dict], show_video_level: bool = False, topk: int = 20) -> str:
    """The long-term table (sorted by F1) and, when asked, per-video precision/recall/F1."""
    best = {t: best_f1(r["precision"], r["recall"]) for t, r in result.items()}
    order = sorted(best, key=lambda t: best[t]["f1"], reverse=True)[:topk]
    name_len = max(max(len(t) for t in result) + 2, 12)
    header = "|{:^{w}}|{:^11}|{:^8}|{:^7}|".format("Tracker Name", "Precision", "Recall", "F1", w=name_len)
    bar = "-" * len(header)
    lines = [bar, header, bar]
    lines += ["|{:^{w}}|{:^11.3f}|{:^8.3f}|{:^7.3f}|".format(t, best[t]["precision"], best[t]["recall"],
                                                             best[t]["f1"], w=name_len) for t in order]
    lines.append(bar)
    if show_video_level and len(result) < 10:
        def at_best_f1(t: str, v: str) -> Optional[Tuple[float, float, float]]:
            if v not in result[t]["f1"]:
                return None
            i = int(np.argmax(result[t]["f1"][v]))
            return result[t]["precision"][v][i], result[t]["recall"][v][i], result[t]["f1"][v][i]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            lines += [""] + video_level_table(list(result), next(iter(result.values()))["precision"],
                                              ("Precision", "Recall", "F1"), ("{:^11.3f}", "{:^8.3f}", "{:^7.3f}"),
                                              at_best_f1, name_width=14, col_width=28)
    return "\n".join(lines)
