"""Search the tracker's PENALTY_K, WINDOW_INFLUENCE, LR (and the search region) for each training snapshot.

    python tools/hp_search_epoch.py --start-epoch 11 --end-epoch 20 --penalty-k 0.0,0.5,0.1 \\
        --window-influence 0.3,0.8,0.1 --lr 0.3,0.8,0.1 --config config.yaml --dataset VOT2018

Ranges are numpy.arange(start, stop, step). Level 1 tracks the whole grid with every snapshot
checkpoint_e{N}.pth (N = start..end); level 2 then refines around the best points. Start the same
command in several processes (one per GPU: CUDA_VISIBLE_DEVICES=k) or machines (--storage
postgresql://...) to share the work; a rerun continues where the last one stopped. A study reused with
other snapshots or settings is refused (it records what it was run with).

With --backend onnx (TRACK.BACKEND onnx) epoch N runs the export folder <snapshot-dir>/checkpoint_eN/ under
ONNX Runtime on the CPU; make it with siamkpn-export-onnx --config config.yaml --snapshot
<snapshot-dir>/checkpoint_eN.pth --out <snapshot-dir>/checkpoint_eN (add --int8 --calib TRAINING_SET for the
int8 graph that --fast then runs). The search region is the exported INSTANCE_SIZE. The study records the
backend and the folders' content, so it cannot be resumed with the other backend or re-exported folders.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from typing import List

import optuna
import torch

from siamkpn.cli.args import (
    add_backend,
    add_config,
    add_flag,
    add_opts,
    add_standard,
    config_opts,
    make_parser,
    positive_int,
)
from siamkpn.cli.common import run_tool
from siamkpn.config import load_cfg
from siamkpn.hpsearch import evaluate as ev
from siamkpn.hpsearch import study as st
from siamkpn.hpsearch import summary
from siamkpn.hpsearch.grid import (
    BOUNDS,
    SearchSpace,
    int_range_count,
    parse_int_range,
    parse_range,
    range_count,
    refine_count,
)
from siamkpn.hpsearch.inputs import SearchInputs, search_settings
from siamkpn.hpsearch.storage import disk_full_errors
from siamkpn.hpsearch.worker import WorkerOptions, run_worker
from siamkpn.models.backends import Backend, backend_for
from toolkit.datasets import DatasetFactory, resolve_dataset_root

OUTPUT = """\
output, in <results-dir>/<dataset>/:
  <configuration>/            results per configuration, named checkpoint_e{N}_pk-.._wi-.._lr-..[_sr-..] (score
                              one with siamkpn-eval --tracker-path <results-dir>), with hp_search_inputs.json:
                              the snapshot and settings that produced them
  hp_search_summary.csv       every completed configuration, best first, with all metrics
  hp_search_summary.json      the best, the best per epoch and the top --top configurations
  hp_search_<a>_<b>.png       the metric over each pair of searched parameters
  hp_search.db                the study database (SQLite; unless --storage names another): the work queue
                              shared by every worker, with the snapshot identities and settings it was run with
"""


# Enqueueing alone runs at 40-80 configurations/s into SQLite (one transaction each), so 100000 take 20-40 min
# before the first one is tracked; the default grid (9 x 14 x 3) over 20 epochs and 5 search regions is 37800.
MAX_CONFIGS = 100_000
_PARAM_FLAGS = {"penalty_k": "--penalty-k", "window_influence": "--window-influence", "lr": "--lr"}


@dataclass(frozen=True)
class _Range:
    """A range flag as given and how many values it has; the values are made once the whole grid is known to fit."""

    flag: str
    text: str
    count: int


def _without_flag(err: ValueError, flag: str) -> str:
    text = str(err)  # argparse puts "argument --flag: " in front already
    return text[len(flag) + 2:] if text.startswith(f"{flag}: ") else text


def _range(flag: str, count=range_count):
    def convert(text: str) -> _Range:
        try:
            return _Range(flag, text, count(text, flag))
        except ValueError as e:
            raise argparse.ArgumentTypeError(_without_flag(e, flag)) from None
    return convert


def _values(p: argparse.ArgumentParser, given: _Range, parse=parse_range, **kwargs) -> list:
    try:
        return parse(given.text, given.flag, **kwargs)
    except ValueError as e:
        p.error(f"argument {given.flag}: {_without_flag(e, given.flag)}")


def _size_grid(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Count the search from the ranges and refuse one above --max-configs before anything is made or opened;
    then replace each range by its values (each axis is at most --max-configs long by then)."""
    ranges = [getattr(args, name) for name in _PARAM_FLAGS]
    regions = args.search_region.count if args.search_region else 1
    level1 = (args.end_epoch - args.start_epoch + 1) * regions * math.prod(r.count for r in ranges)
    for name, given in zip(_PARAM_FLAGS, ranges):
        if given.count <= args.max_configs:  # out-of-bounds values are named first where the axis is small
            setattr(args, name, _values(p, given, bounds=BOUNDS[name]))
    refined = sum(r.count > 1 for r in ranges)
    level2 = 0 if args.no_refine or args.level == "1" else refine_count(min(args.refine_top, level1), refined)
    if level1 + level2 > args.max_configs:
        epochs = args.end_epoch - args.start_epoch + 1
        shape = " x ".join([f"{epochs:,} epoch{'s' if epochs > 1 else ''}"]
                           + ([f"{regions:,} --search-region"] if args.search_region else [])
                           + [f"{r.count:,} {r.flag}" for r in ranges])
        more = f" + up to {level2:,} in level 2" if level2 else ""
        p.error(f"the search has {level1 + level2:,} configurations ({shape}{more}), more than --max-configs "
                f"{args.max_configs:,}: use larger steps or fewer epochs, or raise --max-configs")
    if args.search_region:
        args.search_region = _values(p, args.search_region, parse_int_range)


def build_parser() -> argparse.ArgumentParser:
    """The siamkpn-hp-search command line."""
    p = make_parser("siamkpn-hp-search", __doc__)
    p.epilog = OUTPUT
    add_flag(p, "--start-epoch", type=int, required=True, help="first snapshot epoch N (checkpoint_eN.pth)")
    add_flag(p, "--end-epoch", type=int, required=True, help="last snapshot epoch (inclusive)")
    add_flag(p, "--penalty-k", default="0.05,0.5,0.05", type=_range("--penalty-k"),
                   help="TRACK.PENALTY_K values: start,stop,step (numpy.arange) or one value; >= 0")
    add_flag(p, "--window-influence", default="0.1,0.8,0.05", type=_range("--window-influence"),
                   help="TRACK.WINDOW_INFLUENCE values: start,stop,step or one value; in [0, 1]")
    add_flag(p, "--lr", default="0.35,0.5,0.05", type=_range("--lr"),
                   help="TRACK.LR values: start,stop,step or one value; in [0, 1]")
    add_flag(p, "--search-region", default=None, type=_range("--search-region", int_range_count),
                   help="INSTANCE_SIZE range, e.g. 255,288,8 (default: the config's, not searched)")
    add_flag(p, "--max-configs", type=positive_int, default=MAX_CONFIGS,
             help="refuse a search of more configurations than this (level 1 x epochs and regions, plus the most "
                  "level 2 can add), counted before anything is made; enqueueing runs at 40-80 per second")
    add_config(p)
    add_standard(p, ["dataset"])
    add_flag(p, "--snapshot-dir", default=None, help="checkpoint_e{N}.pth folder (default cfg.TRAIN.SNAPSHOT_DIR); "
             "with --backend onnx it holds the export folders checkpoint_e{N}/")
    add_flag(p, "--results-dir", "--results_dir", dest="results_dir", default="hp_search_result_epoch",
             help="output folder; everything goes to <results-dir>/<dataset>/ (see below) (default: "
                  "hp_search_result_epoch)")
    add_flag(p, "--storage", default=None, help="study database URL shared by the workers (default "
                   "sqlite:///<results-dir>/<dataset>/hp_search.db; several machines: postgresql://user:pw@host/db)")
    add_flag(p, "--study-name", default=None, help="study within the database (default hp_search_<dataset>)")
    add_flag(p, "--batch", type=int, default=8, help="configurations tracked in lockstep (one forward pass)")
    add_flag(p, "--level", choices=("1", "2", "both"), default="both",
                   help="1: the grid; 2: the refinement around the best grid points (needs level 1 done)")
    add_flag(p, "--no-refine", action="store_true", help="level 1 only (same as --level 1)")
    add_flag(p, "--refine-top", type=int, default=3, help="level 2 refines around this many best points")
    add_flag(p, "--refine-factor", type=float, default=0.5,
                   help="level-2 step as a fraction of level 1's, in (0, 1)")
    add_flag(p, "--metric", default=None, help="what to maximise: eao (VOT default), auc (one-pass default), "
                   "accuracy, precision, f1, ao, ...")
    add_standard(p, ["device"])
    add_backend(p, "per epoch: <snapshot-dir>/checkpoint_eN/ (siamkpn-export-onnx --snapshot "
                   "<snapshot-dir>/checkpoint_eN.pth --out <snapshot-dir>/checkpoint_eN)")
    add_standard(p, ["threads", "fast", "progress"])
    add_flag(p, "--top", type=int, default=10, help="rows of the overall ranking to print and save")
    add_flag(p, "--heartbeat", type=int, default=60, help="seconds between a worker's heartbeats")
    add_flag(p, "--grace-period", type=int, default=None, help="seconds without heartbeat before a worker's "
                   "trials are retried by another (default 2 x heartbeat)")
    add_flag(p, "--summary-only", action="store_true", help="only report what the study holds")
    add_opts(p)
    return p


def parse_args(argv=None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    checks = [(args.end_epoch < args.start_epoch, "--end-epoch must not be below --start-epoch"),
              (args.batch < 1, "--batch must be at least 1"), (args.refine_top < 1, "--refine-top must be at least 1"),
              (not 0 < args.refine_factor < 1, "--refine-factor must be in (0, 1)"),
              (args.heartbeat < 1, "--heartbeat must be at least 1 second"),
              (args.grace_period is not None and args.grace_period < 1, "--grace-period must be at least 1 second"),
              (args.top < 1, "--top must be at least 1")]
    for bad, message in checks:
        if bad:
            p.error(message)
    _size_grid(p, args)
    return args


def _inputs(cfg, dataset, snapshot_dir: str, space: SearchSpace, backend: Backend) -> SearchInputs:
    """The snapshot identities and settings this run's scores depend on (recorded in the study)."""
    precision = ev.export_precision(backend, snapshot_dir, space.epochs, bool(cfg.TRACK.FAST))
    settings = search_settings(cfg, dataset, region_searched=space.search_region != [None], precision=precision)
    return SearchInputs.build(settings, {e: backend.epoch_path(snapshot_dir, e) for e in space.epochs})


def _check_snapshots(backend: Backend, snapshot_dir: str, epochs: List[int], args: argparse.Namespace):
    """Every epoch's snapshot is there and of the backend's kind, the device one it runs on (before any work);
    returns the device."""
    paths = [backend.epoch_path(snapshot_dir, e) for e in epochs]
    backend.check_present(paths, args.config)  # every missing one named in one line
    for path in paths:
        backend.check(path, args.device)
    return backend.device(args.device)


def search(args: argparse.Namespace) -> None:
    cfg = load_cfg(args.config, config_opts(args), freeze=True)
    backend = backend_for(cfg)
    space = SearchSpace(list(range(args.start_epoch, args.end_epoch + 1)), args.penalty_k, args.window_influence,
                        args.lr, args.search_region or [None])
    metric = ev.resolve_metric(args.metric, args.dataset)
    snapshot_dir = args.snapshot_dir or cfg.TRAIN.SNAPSHOT_DIR
    attrs = {"dataset": args.dataset, "metric": metric}
    if not args.summary_only:
        device = _check_snapshots(backend, snapshot_dir, space.epochs, args)
        ev.check_search_regions(cfg, space.search_region)
        dataset = DatasetFactory.create_dataset(
            args.dataset, resolve_dataset_root(args.dataset, args.dataset_root), load_img=False)
        ev.check_metric_defined(dataset, metric)
        inputs = _inputs(cfg, dataset, snapshot_dir, space, backend)
        attrs.update(inputs.study_attrs())
    storage = st.open_storage(args.storage or st.default_storage_url(args.results_dir, args.dataset),
                              args.heartbeat, args.grace_period)
    study = st.open_study(storage, args.study_name or f"hp_search_{args.dataset}", attrs)
    with disk_full_errors(storage.url):  # optuna words a full disk as "e.g. exceeding max length"
        if not args.summary_only:
            if args.threads:
                torch.set_num_threads(args.threads)
            evaluator = ev.BatchEvaluator(cfg, dataset, args.results_dir, snapshot_dir, device, inputs=inputs,
                                           progress=not args.no_progress)
            levels = (1,) if args.no_refine or args.level == "1" else (2,) if args.level == "2" else (1, 2)
            opts = WorkerOptions(metric, args.batch, levels, args.refine_top, args.refine_factor,
                                 poll=min(max(args.heartbeat / 2, 0.5), 30), heartbeat=args.heartbeat,
                                 grace=args.grace_period, progress=not args.no_progress)
            heartbeat = st.Heartbeat(storage, args.heartbeat)
            try:
                stats = run_worker(study, space, evaluator, opts, heartbeat)
            finally:
                heartbeat.close()
            print(f"this worker: {len(stats.evaluated)} configurations evaluated, {stats.duplicates} duplicates "
                  f"skipped, {stats.failed} failed, {evaluator.frames_tracked} lane-frames tracked")
        rows = summary.collect(study)
        folder = os.path.join(args.results_dir, args.dataset)
        print(summary.format_table(summary.best_per_epoch(rows), metric, "best per epoch"))
        print(summary.format_table(summary.rank(rows)[:args.top], metric, f"top {args.top}"))
        paths = summary.write_summary(rows, metric, folder, args.top, dataset=args.dataset, study=study.study_name)
        paths.update({f"plot{i}": p for i, p in enumerate(summary.plot_pairs(rows, metric, folder))})
        print("wrote " + ", ".join(paths.values()))


def _main(argv=None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search(args)
    return 0


def main(argv=None) -> int:
    """``siamkpn-hp-search`` / ``python tools/hp_search_epoch.py`` under the common error policy."""
    return run_tool(_main, argv, "siamkpn-hp-search")


if __name__ == "__main__":
    sys.exit(main())
