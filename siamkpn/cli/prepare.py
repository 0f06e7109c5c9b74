"""Prepare a real training set in pysot's layout (crop511 + json) from its official download.

    python scripts/prepare_dataset.py {got10k,lasot,coco,ytbb,vid,det} --src DOWNLOAD_DIR --out training_dataset/X
        [--workers N] [--split S]

Expected downloads (`--src`):
  got10k  GOT-10k root holding train/GOT-10k_Train_000001/{00000001.jpg, groundtruth.txt, absence.label}
  lasot   LaSOT root holding <class>/<class>-<n>/{img/, groundtruth.txt, full_occlusion.txt, out_of_view.txt}
          (+ training_set.txt / testing_set.txt to select the split)
  coco    COCO root holding annotations/instances_train2017.json and train2017/
  ytbb    folder with yt_bb_detection_train.csv and the downloaded frames yt_bb_detection_train/<class>/
  vid     ILSVRC2015 (Annotations/VID/train, Data/VID/train)
  det     ILSVRC2015 or ILSVRC (Annotations/DET/train, Data/DET/train)
Interrupt and rerun freely: finished crops are kept and the json is rewritten at the end. Each video's crop folder
records what shaped its crops (crop_inputs.json: the annotation's hash, --quality and the crop sizes); a rerun re-cuts
the videos whose annotation or settings changed, and the summary line counts them.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from siamkpn.cli.args import add_flag, add_standard, make_parser
from siamkpn.cli.common import run_tool
from siamkpn.datasets.prepare import SOURCES, json_name, prepare, recut_summary


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("siamkpn-prepare", __doc__)
    p.add_argument("source", choices=sorted(SOURCES), help="dataset to prepare")
    add_flag(p, "--src", required=True, help="the official download folder")
    add_flag(p, "--out", required=True, help="output folder, e.g. training_dataset/got10k")
    add_flag(p, "--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    add_flag(p, "--split", default=None, help="split to prepare (default: the training split)")
    add_flag(p, "--quality", type=int, default=95, help="JPEG quality of the crops")
    add_standard(p, ["progress"])
    return p


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    stats = prepare(args.source, args.src, args.out, workers=max(1, args.workers), split=args.split,
                    quality=args.quality, progress=not args.no_progress)
    split = args.split or SOURCES[args.source][1]
    print(f"{args.source}: {stats.written} crops written, {stats.reused} kept from an earlier run, "
          f"{recut_summary(stats)}, {stats.failed_images} unreadable images skipped -> "
          f"{os.path.join(args.out, 'crop511')} + {os.path.join(args.out, json_name(args.source, split))}")
    return 0


def main(argv=None) -> int:
    """``siamkpn-prepare`` / ``python scripts/prepare_dataset.py`` under the common error policy."""
    return run_tool(_main, argv, "siamkpn-prepare")


if __name__ == "__main__":
    sys.exit(main())
