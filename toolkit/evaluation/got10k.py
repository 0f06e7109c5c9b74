"""GOT-10k (val) average overlap and success rates, as the official got10k toolkit computes them.

IoU of boxes clipped to the image (x, y into [0, W] / [0, H], then w, h into what is left), union + eps,
clipped to [0, 1]; frames after the first where the target is visible, pooled over videos (and runs).
AO = mean IoU, SR_t = fraction of IoU > t, success curve over 101 thresholds 0..1. Test-set numbers
come only from the evaluation server.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple, Union

import numpy as np

from toolkit.evaluation.common import load_prediction, tracker_list, video_level_table

__all__ = ["GOT10K_THRESHOLDS", "clipped_iou", "ao_sr", "GOT10kBenchmark", "format_got10k_table"]

GOT10K_THRESHOLDS = np.linspace(0, 1, 101)


def clipped_iou(pred: np.ndarray, gt: np.ndarray, bound: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """got10k's rect_iou of [N,4] x,y,w,h boxes, both clipped to the image (W, H) when bound is given."""
    boxes = []
    for b in (pred, gt):
        b = np.array(b, np.float64).reshape(-1, 4)
        if bound is not None:
            b[:, 0] = np.clip(b[:, 0], 0, bound[0])
            b[:, 1] = np.clip(b[:, 1], 0, bound[1])
            b[:, 2] = np.clip(b[:, 2], 0, bound[0] - b[:, 0])
            b[:, 3] = np.clip(b[:, 3], 0, bound[1] - b[:, 1])
        boxes.append(b)
    a, b = boxes
    w = np.maximum(np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0)
    h = np.maximum(np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0)
    inter = w * h
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def ao_sr(ious: np.ndarray) -> Dict[str, object]:
    """AO, SR at 0.5 and 0.75, and the 101-threshold success curve of pooled IoUs."""
    ious = np.asarray(ious, np.float64)
    curve = (ious[:, None] > GOT10K_THRESHOLDS[None, :]).mean(axis=0)
    return {"ao": float(np.mean(ious)), "sr50": float(np.mean(ious > 0.5)), "sr75": float(np.mean(ious > 0.75)),
            "success_curve": curve}


class GOT10kBenchmark:
    """AO / SR over a GOT-10k-style dataset object (validation split: ground truth of every frame)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def video_ious(self, tracker: str) -> Dict[str, np.ndarray]:
        """{video: IoUs of the scored frames} for one tracker (all runs concatenated)."""
        out = {}
        for video in self.dataset:
            pred = load_prediction(self.dataset, video, tracker)
            if pred is None:
                continue
            runs = pred if np.ndim(pred[0][0]) == 1 else [pred]  # one run, or a list of runs
            gt = np.asarray(video.gt_traj, np.float64)
            absent = getattr(video, "absent", None)
            visible = np.ones(len(gt), bool) if absent is None else ~np.asarray(absent, bool)
            ious = [clipped_iou(np.asarray(r, np.float64)[1:], gt[1:], (video.width, video.height))[visible[1:]]
                    for r in runs]
            out[video.name] = np.concatenate(ious)
        return out

    def eval(self, eval_trackers: Union[None, str, Iterable[str]] = None) -> Dict[str, Dict[str, object]]:
        """{tracker: {'ao', 'sr50', 'sr75', 'success_curve', 'per_video': {video: {'ao', 'sr50', 'sr75'}}}}."""
        result = {}
        for t in tracker_list(self.dataset, eval_trackers):
            ious = self.video_ious(t)
            pooled = ao_sr(np.concatenate(list(ious.values())) if ious else np.zeros(0))
            pooled["per_video"] = {v: {k: x for k, x in ao_sr(i).items() if k != "success_curve"}
                                   for v, i in ious.items()}
            result[t] = pooled
        return result

    @staticmethod
    def show_result(result, show_video_level: bool = False) -> str:
        """Print (and return) the AO / SR table."""
        text = format_got10k_table(result, show_video_level)
        print(text)
        return text


def format_got10k_table(result: Dict[str, Dict[str, object]], show_video_level: bool = False) -> str:
    """AO / SR0.5 / SR0.75 per tracker, sorted by AO; per-video AO and SR0.5 when asked."""
    order = sorted(result, key=lambda t: result[t]["ao"], reverse=True)
    name_len = max(max(len(t) for t in result) + 2, 12)
    header = "|{:^{w}}|{:^7}|{:^8}|{:^9}|".format("Tracker Name", "AO", "SR0.50", "SR0.75", w=name_len)
    bar = "-" * len(header)
    lines = [bar, header, bar]
    lines += ["|{:^{w}}|{:^7.3f}|{:^8.3f}|{:^9.3f}|".format(t, result[t]["ao"], result[t]["sr50"], result[t]["sr75"],
                                                            w=name_len) for t in order]
    lines.append(bar)
    if show_video_level and len(result) < 10:
        def ao_sr50(t: str, v: str) -> Tuple[float, float]:
            pv = result[t]["per_video"].get(v, {"ao": float("nan"), "sr50": float("nan")})
            return pv["ao"], pv["sr50"]

        lines += [""] + video_level_table(list(result), next(iter(result.values()))["per_video"], ("AO", "SR0.50"),
                                          ("{:^8.3f}", "{:^8.3f}"), ao_sr50, name_width=21, col_width=17)
    return "\n".join(lines)
