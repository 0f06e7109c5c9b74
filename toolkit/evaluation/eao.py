"""Expected average overlap (EAO), as the published pysot toolkit computes it for VOT2016-2019.

Per run, overlaps use bounds (W-1, H-1) and no burn-in. Failures f cut the run at 0 and f + skipping
(cuts past the end are dropped); a fragment that ends in a failure runs to the next cut (inclusive) and
counts 0 for every longer length; the last fragment (or a run without failure) stops at its length.
Unknown overlaps inside a fragment count 0 (but a run without failures keeps them NaN, as pysot does).
Fragment weights = (1 / runs) x (frames of the tag in the fragment / fragment length); pysot's 'empty'
tag sums its whole per-video flag list instead of a frame range. The expected overlap at length i >= 1 is
the weighted mean over fragments defined at i of the mean of their overlaps 1..i (float32; 1 at i = 0).
EAO is its mean over the year's fixed interval (1-based, clipped to the curve).
"""
from __future__ import annotations

import warnings
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from toolkit.errors import BadValue
from toolkit.evaluation.common import tracker_list
from toolkit.evaluation.trajectory import failure_frames, tracker_overlaps

__all__ = ["EAO_INTERVALS", "EAO_TAGS", "eao_interval", "eao_fragments", "fragment_weights",
           "expected_overlap_curves", "eao_from_curve", "EAOBenchmark", "format_eao_table"]

EAO_INTERVALS = {"VOT2016": (108, 371), "VOT2017": (100, 356), "VOT2018": (100, 356), "VOT2019": (46, 291)}
EAO_TAGS = ("all", "camera_motion", "illum_change", "motion_change", "size_change", "occlusion", "empty")


def eao_interval(dataset_name: str) -> Tuple[int, int]:
    """The fixed 1-based (low, high) EAO interval of a VOT year."""
    try:
        return EAO_INTERVALS[dataset_name]
    except KeyError:
        raise BadValue(f"no EAO interval for dataset {dataset_name!r}; known: {', '.join(EAO_INTERVALS)} "
                         "(or pass interval=(low, high))") from None


def eao_fragments(overlaps: Sequence[np.ndarray], failures: Sequence[np.ndarray], skipping: int = 5
                  ) -> Tuple[np.ndarray, List[Tuple[int, int, int, float]]]:
    """Fragment matrix [F, max_len] (NaN past a fragment's end) and, per fragment, (run, start, stop, length).

    ``stop`` is the exclusive end of the frames whose tags weigh the fragment; ``length`` its denominator
    (the last fragment's uses the run's ground-truth length, filled in by `fragment_weights`: NaN here).
    """
    max_len = max((len(o) for o in overlaps), default=0)
    rows, meta = [], []
    for run, (ov, fails) in enumerate(zip(overlaps, failures)):
        ov = np.asarray(ov, np.float64)
        n = len(ov)
        if len(fails) == 0:
            row = np.full(max_len, np.nan)
            row[:n] = ov
            rows.append(row)
            meta.append((run, 0, n, float(n)))
            continue
        cuts = [0] + [int(f) + skipping for f in fails if f + skipping <= n]
        for i, start in enumerate(cuts):
            last = i == len(cuts) - 1
            frag = ov[start:] if last else ov[start:cuts[i + 1] + 1]
            row = np.full(max_len, np.nan) if last else np.zeros(max_len)
            row[:len(frag)] = np.nan_to_num(frag, nan=0.0)
            rows.append(row)
            meta.append((run, start, n, np.nan) if last else (run, start, cuts[i + 1] + 1, cuts[i + 1] - start + 1.0))
    return (np.array(rows) if rows else np.zeros((0, max_len))), meta


def fragment_weights(meta: Sequence[Tuple[int, int, int, float]], run_tags: Sequence[Mapping[str, np.ndarray]],
                     run_lengths: Sequence[int], tags: Sequence[str], run_weight: float) -> np.ndarray:
    """Weights [len(tags), F]: run_weight x tagged frames in the fragment / fragment length."""
    w = np.zeros((len(tags), len(meta)))
    for j, (run, start, stop, length) in enumerate(meta):
        if np.isnan(length):
            length = run_lengths[run] - start + 1e-16
        for t, tag in enumerate(tags):
            values = np.asarray(run_tags[run][tag], np.int64)
            tagged = values.sum() if tag == "empty" else values[start:stop].sum()
            w[t, j] = run_weight * (tagged / length)
    return w


def expected_overlap_curves(fragments: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Expected-overlap curves [T, max_len] (float32) for weight rows [T, F] over fragments [F, max_len]."""
    n_tags = len(weights)
    max_len = fragments.shape[1]
    curves = np.zeros((n_tags, max_len), np.float32)
    if max_len == 0:
        return curves
    curves[:, 0] = 1
    tail = fragments[:, 1:]
    defined = ~np.isnan(tail)
    # running mean of entries 1..i; NaN inside a defined fragment propagates, as pysot's sum does
    means = np.cumsum(tail, axis=1) / np.arange(1, max_len)
    contrib = np.where(defined, means, 0.0)
    with np.errstate(all="ignore"):
        value = (weights @ contrib) / (weights @ defined.astype(np.float64))
    curves[:, 1:] = np.where(defined.any(axis=0)[None, :], value, 0.0)
    return curves


def eao_from_curve(curve: np.ndarray, low: int, high: int) -> float:
    """Mean of the curve's defined entries at 1-based lengths low..high (clipped to the curve)."""
    weight = np.zeros(len(curve))
    weight[low - 1:high] = 1
    valid = ~np.isnan(curve)
    with np.errstate(all="ignore"):
        return float(np.sum(curve[valid] * weight[valid]) / np.sum(weight[valid]))


class EAOBenchmark:
    """pysot's EAOBenchmark: eval() gives {tracker: {tag: EAO}}; eval_curves() the curves too."""

    def __init__(self, dataset, skipping: int = 5, tags: Sequence[str] = ("all",),
                 interval: Optional[Tuple[int, int]] = None):
        self.dataset = dataset
        self.skipping = skipping
        self.tags = list(tags)
        self.low, self.high = interval if interval is not None else eao_interval(dataset.name)

    def eval_curves(self, tracker: str, videos: Optional[Iterable[str]] = None) -> Dict[str, Dict[str, object]]:
        """{tag: {'eao': float, 'curve': float32 array}} for one tracker (over `videos` only, when given: e.g. the
        leave-one-out sets of a jackknife)."""
        runs = tracker_overlaps(self.dataset, tracker)
        if videos is not None:
            keep = set(videos)
            runs = {name: video_runs for name, video_runs in runs.items() if name in keep}
        overlaps, failures, run_tags, run_lengths = [], [], [], []
        n_runs = 0
        for name, video_runs in runs.items():
            video = self.dataset[name]
            tags = _video_tags(video)
            for r in video_runs:
                overlaps.append(r.overlaps_eao.astype(np.float64))
                failures.append(failure_frames(r.codes))
                run_tags.append(tags)
                run_lengths.append(len(video.gt_traj))
            n_runs = len(video_runs)
        if not overlaps:
            warnings.warn(f"{tracker}: no results found for EAO", stacklevel=2)
            return {t: {"eao": float("nan"), "curve": np.zeros(0, np.float32)} for t in self.tags}
        # pysot weighs runs by 1 / (runs of the last video)
        fragments, meta = eao_fragments(overlaps, failures, self.skipping)
        weights = fragment_weights(meta, run_tags, run_lengths, self.tags, 1 / (n_runs + 1e-10))
        curves = expected_overlap_curves(fragments, weights)
        return {t: {"eao": eao_from_curve(c, self.low, self.high), "curve": c} for t, c in zip(self.tags, curves)}

    def eval(self, eval_trackers: Union[None, str, Iterable[str]] = None) -> Dict[str, Dict[str, float]]:
        """{tracker: {tag: EAO}}."""
        return {t: {tag: r["eao"] for tag, r in self.eval_curves(t).items()}
                for t in tracker_list(self.dataset, eval_trackers)}

    def show_result(self, result: Dict[str, Dict[str, float]], topk: int = 10) -> str:
        """Print (and return) pysot's EAO table (one column per tag when several tags)."""
        text = format_eao_table(result, self.tags, topk)
        print(text)
        return text


def _video_tags(video) -> Dict[str, np.ndarray]:
    tags = dict(getattr(video, "tags", None) or {})
    n = len(video.gt_traj)
    tags.setdefault("all", np.ones(n, np.int64))
    if "empty" not in tags:
        # pysot's flag list: one entry per non-empty tag list, 1 where that tag never occurs
        rows = [np.asarray(v) for v in tags.values() if len(v)]
        tags["empty"] = np.all(1 - np.array(rows, np.int64), axis=1).astype(np.int64)
    return tags


def format_eao_table(result: Dict[str, Dict[str, float]], tags: Sequence[str], topk: int = 10) -> str:
    """The EAO table as pysot prints it (one column per tag), sorted by 'all'."""
    order = sorted(result, key=lambda t: result[t]["all"], reverse=True)[:topk]
    if len(tags) == 1:
        name_len = max(max(len(t) for t in result) + 2, 12)
        header = "|{:^{w}}|{:^10}|".format("Tracker Name", "EAO", w=name_len)
        rows = ["|{:^{w}}|{:^10.3f}|".format(t, result[t]["all"], w=name_len) for t in order]
    else:
        widths = [max(len(tag) + 2, 7) for tag in tags]
        header = "|{:^20}|".format("Tracker Name") + "".join("{:^{w}}|".format(t, w=w) for t, w in zip(tags, widths))
        rows = ["|{:^20}|".format(t) + "".join("{:^{w}.3f}|".format(result[t][tag], w=w)
                                               for tag, w in zip(tags, widths)) for t in order]
    bar = "-" * len(header)
    return "\n".join([bar, header, bar, *rows, bar])
