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

from siamkpn.cli.common import UsageError, add_debug_flag, run_tool
from siamkpn.utils.atomic import atomic_write_bytes
from toolkit.datasets import DatasetFactory, resolve_dataset_root
from toolkit.submission import submission_entries, zip_bytes


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Pack tracking results for a benchmark's evaluation server")
    p.add_argument("--dataset", "-d", required=True,
                   help="benchmark name as given to tools/test.py: GOT-10k-test, TrackingNet, LaSOT, VOT2018, ...")
    p.add_argument("--dataset-root", "--dataset_root", dest="dataset_root", default=None,
                   help="benchmark folder (default: $SIAMKPN_DATASETS/<dataset>, else testing_dataset/<dataset>)")
    p.add_argument("--tracker_path", "--tracker-path", "-p", dest="tracker_path", default="./results",
                   help="result folder holding <dataset>/<tracker>/ (default ./results)")
    p.add_argument("--tracker", "-t", required=True, help="tracker (result sub-folder) name")
    p.add_argument("--out", required=True, help="the archive to write (.zip)")
    add_debug_flag(p)
    return p.parse_args(argv)


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not args.out.endswith(".zip"):
        raise UsageError(f"--out {args.out}: the servers take a .zip archive")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"folder for --out not found: {out_dir}")
    dataset = DatasetFactory.create_dataset(args.dataset, resolve_dataset_root(args.dataset, args.dataset_root))
    tracker_dir = os.path.join(args.tracker_path, args.dataset, args.tracker)
    entries = submission_entries(args.dataset, tracker_dir, ((v.name, len(v)) for v in dataset))
    atomic_write_bytes(args.out, zip_bytes(entries))
    print(f"{args.out}: {len(dataset)} sequences, {len(entries)} files of {tracker_dir}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``siamkpn-pack`` / ``python tools/pack_results.py`` under the common error policy."""
    return run_tool(_main, argv, "siamkpn-pack")


if __name__ == "__main__":
    sys.exit(main())
