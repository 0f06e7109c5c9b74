"""Score tracking results in pysot's layout: `siamkpn-eval --tracker-path ./results --dataset VOT2018`
(or `python tools/eval.py --tracker_path ./results --dataset VOT2018`: pysot's spellings are accepted).

Prints the published toolkit's tables; `--json FILE` writes {tracker: {metric: value}}, `--plot DIR` PNGs.
Videos without a result file make the scores partial: the tables say so and the tool exits 2 (writing neither
--json nor --plot) unless `--allow-missing` accepts that. Needs only numpy (never imports torch).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Optional

from siamkpn.cli.args import add_flag, add_standard, add_tracker_path, make_parser
from siamkpn.cli.common import UsageError, run_tool
from toolkit.atomic import atomic_write_json
from toolkit.datasets import DatasetFactory, resolve_dataset_root
from toolkit.evaluation.common import MissingResultWarning
from toolkit.evaluation.runner import evaluate, format_tables, missing_videos, summary_json
from toolkit.names import check_name


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("siamkpn-eval", __doc__)
    add_tracker_path(p)
    add_standard(p, ["dataset"])
    add_flag(p, "--layout", choices=("json", "native"), default=None,
             help="force the pysot json or the native dataset layout (default: json when present)")
    add_flag(p, "--num", "-n", default=1, type=int, help="worker processes (one tracker each)")
    add_flag(p, "--tracker-prefix", "--tracker_prefix", "-t", dest="tracker_prefix", default="",
             help="evaluate only trackers whose folder name starts with this (default: all)")
    add_flag(p, "--show-video-level", "--show_video_level", "-s", dest="show_video_level", action="store_true",
             help="also print per-video tables")
    add_flag(p, "--json", default=None,
                   help="write {tracker: {metric: value}} to this file (a metric that cannot be computed, e.g. "
                        "no video of the tracker has a result, is null)")
    add_flag(p, "--plot", default=None, help="write PNG plots into this folder")
    add_flag(p, "--allow-missing", action="store_true",
                   help="accept trackers missing some videos' results: their scores average the videos present "
                        "(the tables are marked PARTIAL; without this flag the tool exits 2)")
    add_standard(p, ["progress"])
    return p


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def find_trackers(tracker_dir: Path, prefix: str) -> list:
    """Tracker folders under <tracker_path>/<dataset>/ whose names start with prefix (sorted); only folders that
    exist there are read, and a prefix that is a path (``../x``) is refused rather than matching nothing."""
    if prefix:
        check_name(prefix, "tracker prefix", "--tracker-prefix")
    if not tracker_dir.is_dir():
        raise UsageError(f"no results folder {tracker_dir} (expected <tracker_path>/<dataset>/<tracker>/)")
    names = sorted(p.name for p in tracker_dir.iterdir() if p.is_dir() and p.name.startswith(prefix))
    if not names:
        raise UsageError(f"no tracker folders starting with {prefix!r} in {tracker_dir}")
    return names


def check_writable(path: str, flag: str, folder: bool) -> None:
    """Fail now, before any scoring, when ``path`` (a file, or a folder) cannot be written."""
    target = Path(path).absolute()
    if target.exists() and target.is_dir() != folder:
        raise UsageError(f"{flag} {path}: " + ("not a folder" if folder else "is a folder, expected a file name"))
    existing = target if folder else target.parent
    while not existing.exists():  # the folders still to be made: the nearest existing one must take them
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {path}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot write in {existing} ({err.strerror or err})") from err
    if not folder and target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"{flag} {path}: the file is not writable")


def missing_error(reports) -> Optional[UsageError]:
    """The exit-2 error for results missing without --allow-missing (None when nothing is missing)."""
    missing = missing_videos(reports)
    if not missing:
        return None
    counts = ", ".join(f"{t} {len(v)} of {reports[t]['videos']}" for t, v in missing.items())
    return UsageError(f"results missing for some videos ({counts}); the scores above are partial and no --json/--plot "
                      "was written; rerun the missing videos or pass --allow-missing to accept partial scores")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def _main(argv=None) -> int:
    args = parse_args(argv)
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", MissingResultWarning)
    if args.json:
        check_writable(args.json, "--json", folder=False)
    if args.plot:
        check_writable(args.plot, "--plot", folder=True)
    tracker_dir = Path(args.tracker_path) / args.dataset
    trackers = find_trackers(tracker_dir, args.tracker_prefix)
    dataset = DatasetFactory.create_dataset(
        args.dataset, resolve_dataset_root(args.dataset, args.dataset_root), load_img=False, layout=args.layout)
    dataset.set_tracker(str(tracker_dir), trackers)
    reports = evaluate(dataset, trackers, args.num, progress=not args.no_progress)
    print(format_tables(reports, args.show_video_level), flush=True)
    error = None if args.allow_missing else missing_error(reports)
    if error is not None:
        raise error
    if args.json:
        atomic_write_json(args.json, summary_json(reports))
    if args.plot:
        from toolkit.visualization import plot_reports  # matplotlib only when plotting

        for path in plot_reports(reports, args.plot, dataset):
            print(f"plot: {path}")
    return 0


def main(argv=None) -> int:
    """``siamkpn-eval`` / ``python tools/eval.py``: score results under the common error policy."""
    return run_tool(_main, argv, "siamkpn-eval")


if __name__ == "__main__":
    sys.exit(main())
