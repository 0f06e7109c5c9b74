"""One-pass evaluation (OTB, UAV, NFS, LaSOT, TrackingNet…): success, precision and normalised precision.

The curves follow the published pysot toolkit: IoU of continuous boxes (right edge x + w) with IoU -1
where the ground truth has w <= 0 or h <= 0, success counts IoU > t (strict) over 21 thresholds;
precision counts centre distances <= t over 0..50 px, with centres x + (w - 1) / 2 and distance -1 (a
hit) where a ground-truth centre coordinate is not > 0; normalised precision divides both centres by
the ground truth's (w, h) + 1e-16 and uses 0..0.50. Frames a dataset marks absent are dropped before
scoring (LaSOT) but stay in the denominator.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Sequence, Union

import numpy as np

from toolkit.boxes import xywh_to_pixel_center
from toolkit.evaluation.common import load_prediction, tracker_list, video_level_table
from toolkit.region import box_iou

__all__ = [
    "SUCCESS_THRESHOLDS", "PRECISION_THRESHOLDS", "NORM_PRECISION_THRESHOLDS",
    "centers", "center_distances", "success_curve", "precision_curve", "ope_curves", "OPEBenchmark",
]

SUCCESS_THRESHOLDS = np.arange(0, 1.05, 0.05)
PRECISION_THRESHOLDS = np.arange(0, 51, 1)
NORM_PRECISION_THRESHOLDS = np.arange(0, 51, 1) / 100
PRECISION_INDEX = 20  # the curves' entry reported in tables: 20 px, 0.20


def centers(boxes: np.ndarray) -> np.ndarray:
    """[N,4] x,y,w,h -> [N,2] pixel centres x + (w-1)/2, y + (h-1)/2 (pysot's convention)."""
    return xywh_to_pixel_center(np.asarray(boxes, np.float64).reshape(-1, 4))[:, :2]


def center_distances(pred_centers: np.ndarray, gt_centers: np.ndarray) -> np.ndarray:
    """Euclidean distances, -1 where a ground-truth centre coordinate is not > 0 (a hit at every threshold)."""
    dist = np.full(len(gt_centers), -1.0)
    ok = (gt_centers > 0).all(axis=1)
    dist[ok] = np.sqrt(((gt_centers[ok] - pred_centers[ok]) ** 2).sum(axis=1))
    return dist


def success_curve(iou: np.ndarray, n_frames: Optional[int] = None,
                  thresholds: np.ndarray = SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of the n_frames (default len(iou)) with IoU > t, for each threshold t."""
    n = len(iou) if n_frames is None else n_frames
    return (np.asarray(iou)[:, None] > thresholds[None, :]).sum(axis=0) / float(n)


def precision_curve(dist: np.ndarray, n_frames: Optional[int] = None,
                    thresholds: np.ndarray = PRECISION_THRESHOLDS) -> np.ndarray:
    """Fraction of the n_frames (default len(dist)) with distance <= t, for each threshold t."""
    n = len(dist) if n_frames is None else n_frames
    return (np.asarray(dist)[:, None] <= thresholds[None, :]).sum(axis=0) / float(n)


def ope_curves(pred: np.ndarray, gt: np.ndarray, absent: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """One video's curves {'success' (21), 'precision' (51), 'norm_precision' (51)} from [N,4] boxes.

    ``absent`` (bool per frame, True = target not visible) drops those frames; the denominator stays N.
    """
    pred = np.asarray(pred, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    if len(pred) != len(gt):
        raise ValueError(f"{len(pred)} predicted boxes for {len(gt)} ground-truth boxes")
    n = len(gt)
    if absent is not None:
        keep = ~np.asarray(absent, bool)
        pred, gt = pred[keep], gt[keep]
    gt_c, pred_c = centers(gt), centers(pred)
    gt_wh = gt[:, 2:4] + 1e-16
    return {
        "success": success_curve(box_iou(pred, gt), n),
        "precision": precision_curve(center_distances(pred_c, gt_c), n),
        "norm_precision": precision_curve(center_distances(pred_c / gt_wh, gt_c / gt_wh), n,
                                          NORM_PRECISION_THRESHOLDS),
    }


def summarize(per_video: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, object]:
    """Dataset figures from per-video curves: means over videos (AUC = mean success, precision at index 20)."""
    names = list(per_video)
    if not names:
        nan = float("nan")
        return {"success_auc": nan, "precision": nan, "norm_precision": nan, "per_video": {},
                "success_curve": np.full(len(SUCCESS_THRESHOLDS), nan),
                "precision_curve": np.full(len(PRECISION_THRESHOLDS), nan),
                "norm_precision_curve": np.full(len(NORM_PRECISION_THRESHOLDS), nan)}
    curves = {k: np.array([per_video[v][k] for v in names]) for k in ("success", "precision", "norm_precision")}
    mean = {k: c.mean(axis=0) for k, c in curves.items()}
    return {
        "success_auc": float(curves["success"].mean()),
        "precision": float(mean["precision"][PRECISION_INDEX]),
        "norm_precision": float(mean["norm_precision"][PRECISION_INDEX]),
        "success_curve": mean["success"],
        "precision_curve": mean["precision"],
        "norm_precision_curve": mean["norm_precision"],
        "per_video": {v: {"success_auc": float(per_video[v]["success"].mean()), **per_video[v]} for v in names},
    }


class OPEBenchmark:
    """pysot's OPEBenchmark over a dataset object: eval_success / eval_precision / eval_norm_precision.

    ``drop_absent`` (default: LaSOT only, the one benchmark whose pysot videos carry absence flags) drops
    the frames ``video.absent`` marks; elsewhere they are scored as they are (UAV's NaN ground truth: a
    miss for success, a hit for precision, as in pysot).
    """

    def __init__(self, dataset, drop_absent: Optional[bool] = None):
        self.dataset = dataset
        self.drop_absent = str(dataset.name).startswith("LaSOT") if drop_absent is None else drop_absent

    def eval_curves(self, tracker: str) -> Dict[str, Dict[str, np.ndarray]]:
        """{video: curves} for one tracker (videos without a result file are left out, with a warning)."""
        out = {}
        for video in self.dataset:
            pred = load_prediction(self.dataset, video, tracker)
            if pred is not None:
                absent = getattr(video, "absent", None) if self.drop_absent else None
                out[video.name] = ope_curves(np.asarray(pred, np.float64), np.asarray(video.gt_traj, np.float64),
                                             absent)
        return out

    def _eval(self, trackers, key: str) -> Dict[str, Dict[str, np.ndarray]]:
        return {t: {v: c[key] for v, c in self.eval_curves(t).items()} for t in tracker_list(self.dataset, trackers)}

    def eval_success(self, eval_trackers: Union[None, str, Iterable[str]] = None):
        """{tracker: {video: success curve (21)}}."""
        return self._eval(eval_trackers, "success")

    def eval_precision(self, eval_trackers: Union[None, str, Iterable[str]] = None):
        """{tracker: {video: precision curve (51)}}."""
        return self._eval(eval_trackers, "precision")

    def eval_norm_precision(self, eval_trackers: Union[None, str, Iterable[str]] = None):
        """{tracker: {video: normalised precision curve (51)}}."""
        return self._eval(eval_trackers, "norm_precision")

    def eval(self, eval_trackers: Union[None, str, Iterable[str]] = None) -> Dict[str, Dict[str, object]]:
        """{tracker: summary} with success_auc, precision, norm_precision, mean curves and per_video."""
        return {t: summarize(self.eval_curves(t)) for t in tracker_list(self.dataset, eval_trackers)}

    @staticmethod
    def show_result(success_ret, precision_ret=None, norm_precision_ret=None, show_video_level: bool = False,
                    topk: int = 20) -> str:
        """Print (and return) pysot's table from eval_success / eval_precision / eval_norm_precision output."""
        summaries = {}
        for t, videos in success_ret.items():
            per_video = {v: {"success": np.asarray(c),
                             "precision": np.asarray(precision_ret[t][v]) if precision_ret else np.zeros(51),
                             "norm_precision": (np.asarray(norm_precision_ret[t][v]) if norm_precision_ret
                                                else np.zeros(51))} for v, c in videos.items()}
            summaries[t] = summarize(per_video)
        text = format_ope_table(summaries, show_video_level and precision_ret is not None, topk)
        print(text)
        return text


def format_ope_table(results: Dict[str, Dict[str, object]], show_video_level: bool = False, topk: int = 20) -> str:
    """The printed one-pass tables (as pysot lays them out) for summaries from `summarize`."""
    order = sorted(results, key=lambda t: results[t]["success_auc"], reverse=True)[:topk]
    name_len = max(max(len(t) for t in results) + 2, 12)
    header = ("|{:^%d}|{:^9}|{:^16}|{:^11}|" % name_len).format("Tracker name", "Success", "Norm Precision",
                                                                 "Precision")
    row = "|{:^%d}|{:^9.3f}|{:^16.3f}|{:^11.3f}|" % name_len
    bar = "-" * len(header)
    lines = [bar, header, bar]
    lines += [row.format(t, results[t]["success_auc"], results[t]["norm_precision"], results[t]["precision"])
              for t in order]
    lines.append(bar)
    if show_video_level and len(results) < 10:
        def means(t: str, v: str) -> Sequence[float]:
            pv = results[t]["per_video"].get(v)
            return (math.nan, math.nan) if pv is None else (float(np.mean(pv["success"])),
                                                           float(np.mean(pv["precision"])))

        trackers = list(results)
        lines += [""] + video_level_table(trackers, results[trackers[0]]["per_video"], ("success", "precision"),
                                          ("{:^9.3f}", "{:^11.3f}"), means, name_width=21, col_width=21)
    return "\n".join(lines)

