"""Pack tracking results into the archive a benchmark's evaluation server accepts.

    python tools/pack_results.py --dataset GOT-10k-test --tracker_path results --tracker NAME --out NAME.zip

Reads ``<tracker_path>/<dataset>/<tracker>/`` (the layout tools/test.py writes) and the benchmark itself
(``--dataset-root``, as tools/test.py finds it) for the sequence list and frame counts. Everything is checked
before the archive is written: every sequence present, one line per frame, finite numbers, positive sizes;
the first problem is reported with its file and line (exit 2). Layouts: see toolkit/submission.py, docs/VOT.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from siamkpn.cli.args import add_flag, add_standard, add_tracker_path, make_parser
from siamkpn.cli.common import UsageError, run_tool
from toolkit.atomic import atomic_write
from toolkit.datasets import DatasetFactory, resolve_dataset_root
from toolkit.names import check_name
from toolkit.submission import submission_entries, zip_bytes


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("siamkpn-pack", "Pack tracking results for a benchmark's evaluation server (GOT-10k, "
                    "TrackingNet, LaSOT, VOT)")
    add_standard(p, ["dataset"])
    add_tracker_path(p)
    add_flag(p, "--tracker", "-t", required=True, help="tracker (result sub-folder) name")
    add_flag(p, "--out", required=True, help="the archive to write (.zip)")
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    check_name(args.tracker, "tracker name", "--tracker")  # a folder under <tracker_path>/<dataset>/, not a path
    if not args.out.endswith(".zip"):
        raise UsageError(f"--out {args.out}: the servers take a .zip archive")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"folder for --out not found: {out_dir}")
    dataset = DatasetFactory.create_dataset(args.dataset, resolve_dataset_root(args.dataset, args.dataset_root))
    tracker_dir = os.path.join(args.tracker_path, args.dataset, args.tracker)
    entries = submission_entries(args.dataset, tracker_dir, ((v.name, len(v)) for v in dataset))
    atomic_write(args.out, zip_bytes(entries))
    print(f"{args.out}: {len(dataset)} sequences, {len(entries)} files of {tracker_dir}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``siamkpn-pack`` / ``python tools/pack_results.py`` under the common error policy."""
    return run_tool(_main, argv, "siamkpn-pack")


if __name__ == "__main__":
    sys.exit(main())
