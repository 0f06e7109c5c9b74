"""Generate synthetic tracking data (no download): a training set and OTB100 / VOT2018-style test sets.

    python scripts/make_synthetic.py --out DIR [--seed S] [--workers N] [sizes]

writes DIR/train/ (crop511 + train.json: train with `--data-root DIR/train --opts DATASET.NAMES "['SYNTH']"`),
DIR/test/OTB100/ and DIR/test/VOT2018/ (pysot json and native layouts; use `--dataset-root DIR/test/<name>`).
The same seed gives the same files. Writing into a folder of an earlier run replaces the videos that run wrote
(a marker file lists them); a non-empty folder this generator did not write is refused.
"""
from __future__ import annotations

import argparse
import sys

from siamkpn.cli.args import add_flag, add_standard, make_parser
from siamkpn.cli.common import run_tool
from siamkpn.datasets.synthetic import SceneConfig
from siamkpn.datasets.synthetic_sets import PARTS, make_synthetic


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("siamkpn-synthetic", __doc__)
    add_flag(p, "--out", required=True, help="output folder")
    add_flag(p, "--seed", type=int, default=0, help="random seed (test sets use their own streams)")
    add_flag(p, "--train-videos", type=int, default=50, help="videos in the training set")
    add_flag(p, "--train-frames", type=int, default=40, help="frames per training video")
    add_flag(p, "--test-videos", type=int, default=10, help="videos in each test set")
    add_flag(p, "--test-frames", type=int, default=120, help="frames per test video")
    add_flag(p, "--width", type=int, default=320, help="frame width in pixels (at least 64)")
    add_flag(p, "--height", type=int, default=240, help="frame height in pixels (at least 64)")
    add_flag(p, "--workers", type=int, default=1, help="parallel processes")
    add_flag(p, "--parts", default="train,otb,vot", help="comma-separated subset of train,otb,vot")
    add_standard(p, ["progress"])
    return p


def _main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.train_videos, args.train_frames, args.test_videos, args.test_frames) < 1:
        parser.error("video and frame counts must be positive")
    if args.width < 64 or args.height < 64:
        parser.error("frames must be at least 64x64 pixels")
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        parser.error(f"--parts: unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    written = make_synthetic(args.out, seed=args.seed, train_videos=args.train_videos, train_frames=args.train_frames,
                             test_videos=args.test_videos, test_frames=args.test_frames,
                             scene=SceneConfig(width=args.width, height=args.height), workers=args.workers, parts=parts,
                             progress=not args.no_progress)
    for part, path in written.items():
        print(f"{part}: {path}")
    return 0


def main(argv=None) -> int:
    """``siamkpn-synthetic`` / ``python scripts/make_synthetic.py`` under the common error policy."""
    return run_tool(_main, argv, "siamkpn-synthetic")


if __name__ == "__main__":
    sys.exit(main())
