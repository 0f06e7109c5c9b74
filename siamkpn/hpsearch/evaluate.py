"""Evaluate search points: K configurations of one snapshot tracked in lockstep (one forward pass per
frame for all of them), their result files written in pysot's layout, then scored by the toolkit.

The scores come from ``toolkit.evaluation.runner.evaluate`` reading the written files, the same call
``tools/eval.py`` makes, so a configuration's metric here equals what eval.py prints for its folder.
Videos whose result files are already complete are not tracked again (a crashed batch resumes).

Epoch N's model is the config's backend's (``siamkpn.models.backends``) ``epoch_path``: ``<snapshot_dir>/
checkpoint_eN.pth`` with backend torch, the export folder ``<snapshot_dir>/checkpoint_eN/`` (siamkpn-export-onnx)
with backend onnx, which runs a batch of lanes sample by sample (its graphs have batch 1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import torch
from tqdm import tqdm

from siamkpn.config import check_cfg
from siamkpn.config_rules import search_region_problem
from siamkpn.hpsearch.grid import Point
from siamkpn.hpsearch.inputs import SearchInputs, check_result_folder
from siamkpn.models.backends import Backend, backend_for
from siamkpn.tracker.siamkpn_tracker import BatchSiamKPNTracker
from toolkit import results
from toolkit.errors import BadValue
from toolkit.evaluation.eao import eao_interval
from toolkit.evaluation.runner import METRICS, evaluate
from toolkit.protocols import run_protocol_batch

__all__ = ["OBJECTIVES", "resolve_metric", "check_metric_defined", "export_precision", "check_search_regions",
           "lane_cfg", "BatchEvaluator"]

# Metrics a search may maximise, per result kind (robustness and lost number are "lower is better").
OBJECTIVES = {"vot": ("eao", "accuracy"), "ope": ("success_auc", "precision", "norm_precision"),
              "longterm": ("f1", "precision", "recall"), "got10k": ("ao", "sr50", "sr75")}
_ALIASES = {"auc": "success_auc"}


def resolve_metric(metric: Optional[str], dataset_name: str) -> str:
    """The eval.py metric name to maximise: EAO for VOT, success AUC for one-pass, F1 / AO otherwise."""
    kind = results.result_kind(dataset_name)
    if metric is None:
        return OBJECTIVES[kind][0]
    name = _ALIASES.get(metric, metric)
    if name not in OBJECTIVES[kind]:
        valid = ", ".join(OBJECTIVES[kind] + tuple(a for a, m in _ALIASES.items() if m in OBJECTIVES[kind]))
        raise BadValue(f"--metric {metric!r} is not available for {dataset_name} ({kind} results); valid: {valid}")
    return name


def check_metric_defined(dataset: Any, metric: str) -> None:
    """ValueError when the benchmark's sequences cannot give the metric (EAO needs sequences reaching its interval)."""
    if metric != "eao" or not len(dataset):
        return
    low, high = eao_interval(dataset.name)
    longest = max(len(v) for v in dataset)
    if longest < low:
        raise BadValue(f"{dataset.name}: the sequences are shorter than the EAO interval ({low}-{high} frames; the "
                         f"longest has {longest}), so EAO is undefined for every configuration; search --metric "
                         "accuracy instead, or use longer videos")


def export_precision(backend: Backend, snapshot_dir: str, epochs: Iterable[int], fast: bool) -> Optional[str]:
    """What every epoch's snapshot computes in, known before loading (onnx: 'int8' or 'float32'; torch: None, the
    device decides); BadValue when the epochs differ (fast mode on export folders with and without an int8 graph
    would score epochs at other precisions)."""
    found: Dict[Optional[str], List[str]] = {}
    for e in epochs:
        path = backend.epoch_path(snapshot_dir, e)
        found.setdefault(backend.planned_precision(path, fast), []).append(path)
    if len(found) > 1:
        raise BadValue(f"fast mode runs the int8 track graph of a folder that has one: {', '.join(found['int8'])} "
                       f"have one, {', '.join(found['float32'])} do not; export every epoch alike (all with "
                       "siamkpn-export-onnx --int8 --calib TRAINING_SET, or all without) or search without --fast")
    return next(iter(found), None)


def check_search_regions(cfg: Any, regions: Iterable[Optional[int]]) -> None:
    """A search region must be EXEMPLAR_SIZE plus a multiple of TRAIN.STRIDE (the score map's geometry); with
    backend onnx it must be the INSTANCE_SIZE the graphs were exported with (their input size is fixed)."""
    ex, stride = int(cfg.TRACK.EXEMPLAR_SIZE), int(cfg.TRAIN.STRIDE)
    regions = list(regions)
    bad = [r for r in regions if r is not None and search_region_problem(r, ex, stride)]
    if bad:
        raise BadValue(f"--search-region values must exceed TRACK.EXEMPLAR_SIZE ({ex}) by a multiple of "
                         f"TRAIN.STRIDE ({stride}); not valid: {bad}")
    size = int(cfg.TRACK.INSTANCE_SIZE)
    other = [r for r in regions if r is not None and r != size]
    if backend_for(cfg).fixed_search_region and other:
        raise BadValue(f"--search-region {other}: the ONNX graphs take a fixed search crop, TRACK.INSTANCE_SIZE "
                         f"{size}; search the region with --backend torch (or export one folder per size)")


def lane_cfg(cfg: Any, point: Point) -> Any:
    """A frozen clone of cfg with the point's TRACK.PENALTY_K, WINDOW_INFLUENCE, LR (and INSTANCE_SIZE)."""
    out = cfg.clone()
    out.defrost()
    out.TRACK.PENALTY_K = float(point.penalty_k)
    out.TRACK.WINDOW_INFLUENCE = float(point.window_influence)
    out.TRACK.LR = float(point.lr)
    if point.search_region is not None:
        out.TRACK.INSTANCE_SIZE = int(point.search_region)
    check_cfg(out, overridden=[f"TRACK.{key}" for key in ("PENALTY_K", "WINDOW_INFLUENCE", "LR", "INSTANCE_SIZE")],
              by=f"search point {point.name}")
    out.freeze()
    return out


class BatchEvaluator:
    """Tracks and scores batches of points of one snapshot: ``evaluator(points) -> {name: {metric: value}}``.

    Args:
        cfg: the experiment config (TRACK.* are overridden per point).
        dataset: a toolkit Dataset (``DatasetFactory.create_dataset``), named like the benchmark.
        results_dir: results go to ``<results_dir>/<dataset.name>/<point.name>/``.
        snapshot_dir: folder of ``checkpoint_e{N}.pth`` (and, for onnx, of the export folders ``checkpoint_e{N}/``).
        device: the device for the model, as ``Backend.check`` returns it (the CPU for onnx).
        inputs: when given, each configuration's folder records them and results of other inputs are refused.

    The backend is the config's (TRACK.BACKEND), fast mode too (TRACK.FAST).
    """

    def __init__(self, cfg: Any, dataset: Any, results_dir: str, snapshot_dir: str,
                 device: str = "cpu", progress: bool = True, inputs: Optional[SearchInputs] = None) -> None:
        self.cfg, self.dataset, self.inputs = cfg, dataset, inputs
        self.results_dir, self.snapshot_dir = str(results_dir), str(snapshot_dir)
        self.device, self.progress = device, progress
        self.backend = backend_for(cfg)
        self.kind = results.result_kind(dataset.name)
        self._model: Optional[torch.nn.Module] = None
        self._epoch: Optional[int] = None
        self.frames_tracked = 0  # lane-frames: frames x configurations tracked

    def model(self, epoch: int) -> torch.nn.Module:
        """The snapshot's model ready to track, on the device (the last one is kept loaded)."""
        if self._epoch != epoch:
            self._model = None  # free the previous snapshot first
            # a .pth must hold the whole model (else a CheckpointError); an export folder must match the config
            self._model = self.backend.load(self.cfg, self.backend.epoch_path(self.snapshot_dir, epoch), self.device)
            self._epoch = epoch
        return self._model

    def _pending(self, points: Sequence[Point], video: Any) -> List[Point]:
        return [p for p in points if not results.is_finished(self.results_dir, self.dataset.name, p.name,
                                                             video.name, self.kind, num_frames=len(video))]

    def track(self, points: Sequence[Point]) -> None:
        """Write every missing video result of the points (one snapshot and search region) in lockstep."""
        if not points:
            return
        groups = {p.group for p in points}
        if len(groups) != 1:
            raise ValueError(f"a batch must share one snapshot epoch and search region, got {sorted(groups, key=str)}")
        if self.inputs is not None:
            for p in points:
                folder = results.tracker_folder(self.results_dir, self.dataset.name, p.name)
                files = [f for v in self.dataset for f in results.result_files(folder, v.name, self.kind).values()]
                check_result_folder(str(folder), self.inputs.folder_record(p.epoch), files)
        model = self.model(points[0].epoch)
        work = [(v, self._pending(points, v)) for v in self.dataset]
        work = [(v, pending) for v, pending in work if pending]
        total = sum(len(v) for v, _ in work)
        with tqdm(total=total, desc=f"e{points[0].epoch} x{len(points)}", unit="frame", leave=False,
                  disable=not self.progress or not total, dynamic_ncols=True) as bar:
            for video, pending in work:
                tracker = BatchSiamKPNTracker(model, [lane_cfg(self.cfg, p) for p in pending])
                outs = run_protocol_batch(tracker, video, len(pending), self.kind, progress=bar.update)
                for p, res in zip(pending, outs):
                    results.write_video_result(self.results_dir, self.dataset.name, p.name, video.name, res.boxes,
                                               scores=res.scores, times=res.times, kind=self.kind)
                self.frames_tracked += len(video) * len(pending)

    def score(self, points: Sequence[Point]) -> Dict[str, Dict[str, float]]:
        """{point name: {metric: value}} with eval.py's metric names, from the written result files."""
        names = [p.name for p in points]
        self.dataset.set_tracker(str(Path(self.results_dir) / self.dataset.name), names)
        reports = evaluate(self.dataset, names, num_workers=1, progress=False)
        return {n: {m: float(reports[n]["metrics"][m]) for m in METRICS[self.kind]} for n in names}

    def __call__(self, points: Sequence[Point]) -> Dict[str, Dict[str, float]]:
        """Track (what is missing) and score the points."""
        self.track(points)
        return self.score(points)
