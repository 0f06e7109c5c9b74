"""Evaluate every tracker of a result folder on a dataset (worker processes over trackers) and report."""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional

import numpy as np
from tqdm import tqdm

from toolkit.errors import BadValue
from toolkit.evaluation.ar import AccuracyRobustnessBenchmark, accuracy_robustness, format_ar_table
from toolkit.evaluation.common import collect_missing
from toolkit.evaluation.eao import EAOBenchmark, format_eao_table
from toolkit.evaluation.got10k import GOT10kBenchmark, format_got10k_table
from toolkit.evaluation.longterm import F1Benchmark, best_f1, format_f1_table
from toolkit.evaluation.ope import OPEBenchmark, format_ope_table
from toolkit.evaluation.workers import map_unordered
from toolkit.results import result_kind

__all__ = ["METRICS", "evaluate", "evaluate_tracker", "metrics", "format_tables", "missing_videos", "partial_note",
           "summary_json"]

# metric names of `tools/eval.py --json`, per kind of benchmark
METRICS = {"ope": ("success_auc", "precision", "norm_precision"),
           "vot": ("eao", "accuracy", "robustness", "lost_number"),
           "longterm": ("precision", "recall", "f1"),
           "got10k": ("ao", "sr50", "sr75")}


def _check_ground_truth(dataset, kind: str) -> None:
    if kind in ("ope", "got10k"):
        for video in dataset:
            later = np.asarray(video.gt_traj[1:], np.float64)
            if len(later) and np.isnan(later).all():
                raise BadValue(f"{dataset.name}: video {video.name!r} has no ground truth after the first frame "
                                 "(a test split); its results are scored by the benchmark's evaluation server")


def evaluate_tracker(dataset, tracker: str) -> Dict[str, object]:
    """One tracker's report: {'kind', 'metrics', 'details', 'missing', 'videos'}.

    details: what the tables and plots need; missing: the videos without a result file (left out of the
    scores, each with a MissingResultWarning); videos: how many the dataset has.
    """
    kind = result_kind(dataset.name)
    with collect_missing() as missing:
        if kind == "ope":
            details = OPEBenchmark(dataset).eval(tracker)[tracker]
        elif kind == "vot":
            tags = list(getattr(dataset, "tags", None) or ["all"])  # per-tag EAO when the videos carry tags
            curves = EAOBenchmark(dataset, tags=tags).eval_curves(tracker)
            details = {"ar": AccuracyRobustnessBenchmark(dataset).eval(tracker)[tracker],
                       "eao": {t: c["eao"] for t, c in curves.items()},
                       "eao_curves": {t: c["curve"] for t, c in curves.items()}}
        elif kind == "longterm":
            details = F1Benchmark(dataset).eval(tracker)[tracker]
        else:
            details = GOT10kBenchmark(dataset).eval(tracker)[tracker]
    report = {"kind": kind, "details": details, "missing": missing, "videos": len(dataset)}
    report["metrics"] = metrics(report)
    return report


def metrics(report: Dict[str, object]) -> Dict[str, float]:
    """The --json metrics of a report (values before any rounding)."""
    kind, d = report["kind"], report["details"]
    if kind == "vot":
        values = {"eao": d["eao"].get("all", math.nan), **accuracy_robustness(d["ar"]["overlaps"], d["ar"]["failures"])}
    elif kind == "longterm":
        values = best_f1(d["precision"], d["recall"]) if d["precision"] else dict.fromkeys(METRICS[kind], math.nan)
    else:
        values = d
    return {m: float(values[m]) for m in METRICS[kind]}


_WORKER_DATASET = None


def _init_worker(dataset) -> None:
    global _WORKER_DATASET
    _WORKER_DATASET = dataset


def _work(tracker: str) -> Dict[str, object]:
    return evaluate_tracker(_WORKER_DATASET, tracker)


def evaluate(dataset, trackers: Iterable[str], num_workers: int = 1, progress: bool = True
             ) -> Dict[str, Dict[str, object]]:
    """{tracker: report} for every tracker, in worker processes when num_workers > 1 (input order kept).

    A worker's failure is raised here (its own exception, or a WorkerError with its message); a worker that
    dies ends the run with a WorkerError naming the tracker, never a hang.
    """
    trackers = list(trackers)
    _check_ground_truth(dataset, result_kind(dataset.name))
    bar = tqdm(total=len(trackers), desc=f"eval {dataset.name}", ncols=100, disable=not progress)
    reports = {}
    try:
        if num_workers <= 1 or len(trackers) <= 1:
            for t in trackers:
                reports[t] = evaluate_tracker(dataset, t)
                bar.update()
        else:
            # fork shares the loaded dataset; elsewhere it is pickled once per worker
            for t, r in map_unordered(_work, trackers, num_workers, _init_worker, (dataset,)):
                reports[t] = r
                bar.update()
    finally:
        bar.close()
    return {t: reports[t] for t in trackers}


def format_tables(reports: Dict[str, Dict[str, object]], show_video_level: bool = False) -> str:
    """The tables pysot's eval.py prints for this kind of benchmark, marked PARTIAL when results are missing."""
    partial = partial_note(reports)
    tables = _tables(reports, show_video_level)
    return tables if partial is None else f"{tables}\n{partial}"


def missing_videos(reports: Dict[str, Dict[str, object]]) -> Dict[str, List[str]]:
    """{tracker: videos without a result file} for the trackers that miss any."""
    return {t: list(r.get("missing", ())) for t, r in reports.items() if r.get("missing")}


def partial_note(reports: Dict[str, Dict[str, object]], listed: int = 10) -> Optional[str]:
    """The PARTIAL mark under the tables: per tracker how many and which videos had no result; None if none."""
    missing = missing_videos(reports)
    if not missing:
        return None
    lines = ["PARTIAL: results are missing; these trackers' scores average only the videos they have:"]
    for t, videos in missing.items():
        names = ", ".join(videos[:listed]) + (f", ... ({len(videos) - listed} more)" if len(videos) > listed else "")
        lines.append(f"  {t}: {len(videos)} of {reports[t].get('videos', '?')} videos missing ({names})")
    return "\n".join(lines)


def _tables(reports: Dict[str, Dict[str, object]], show_video_level: bool) -> str:
    kind = next(iter(reports.values()))["kind"]
    details = {t: r["details"] for t, r in reports.items()}
    if kind == "ope":
        return format_ope_table(details, show_video_level)
    if kind == "vot":
        eao = {t: d["eao"] for t, d in details.items()}
        text = format_ar_table({t: d["ar"] for t, d in details.items()}, eao, show_video_level)
        tags: List[str] = list(next(iter(eao.values())))
        if show_video_level and len(tags) > 1:
            text += "\n\n" + format_eao_table(eao, tags, topk=len(eao))
        return text
    if kind == "longterm":
        return format_f1_table(details, show_video_level)
    return format_got10k_table(details, show_video_level)


def summary_json(reports: Dict[str, Dict[str, object]], trackers: Optional[Iterable[str]] = None) -> Dict:
    """{tracker: {metric: value}} for `tools/eval.py --json`; a value that is not finite (NaN: nothing to score)
    becomes None (JSON null), since NaN is not JSON."""
    return {t: {m: (v if math.isfinite(v) else None) for m, v in reports[t]["metrics"].items()}
            for t in (trackers or reports)}
