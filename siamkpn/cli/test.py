"""Track a benchmark: `python tools/test.py --config config.yaml --snapshot model.pth --dataset VOT2018`.

Results go to `<results-dir>/<dataset>/<tracker-name>/` in pysot's layout; videos whose result files are
already complete are skipped, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import os
import sys

from tqdm import tqdm

from siamkpn.cli.common import UsageError, add_debug_flag, run_tool
from siamkpn.config import load_cfg
from siamkpn.tracker import tracker_from_snapshot
from toolkit import protocols, results
from toolkit.datasets import DatasetFactory, resolve_dataset_root


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SiamKPN tracking on a benchmark")
    p.add_argument("--config", required=True, help="experiment config.yaml")
    p.add_argument("--snapshot", required=True, help="model weights (.pth)")
    p.add_argument("--dataset", required=True, help="benchmark name, e.g. OTB100, VOT2018, GOT-10k")
    p.add_argument("--dataset-root", default=None,
                   help="benchmark folder (default: $SIAMKPN_DATASETS/<dataset>, else testing_dataset/<dataset>)")
    p.add_argument("--results-dir", default="results", help="results folder (default ./results)")
    p.add_argument("--tracker-name", default=None, help="result sub-folder (default: the snapshot's file stem)")
    p.add_argument("--video", default="", help="track only this video")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    p.add_argument("--fast", action="store_true",
                   help="fast mode (TRACK.FAST): bf16 where the device computes it natively; see README")
    p.add_argument("--vis", action="store_true", help="show the tracked boxes (needs a display)")
    add_debug_flag(p)
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE config overrides")
    return p.parse_args(argv)


class ShownTracker:
    """Wraps a tracker to draw each box in a window (--vis); turns itself off without a display."""

    def __init__(self, tracker) -> None:
        self.tracker, self.enabled = tracker, True

    def _show(self, img, box) -> None:
        import cv2

        if not self.enabled:
            return
        frame = img.copy()
        x, y, w, h = (int(round(v)) for v in box)
        cv2.rectangle(frame, (x, y), (x + w, y + h), (0, 255, 255), 2)
        try:
            cv2.imshow("SiamKPN", frame)
            cv2.waitKey(1)
        except cv2.error:
            tqdm.write("--vis: no display available (headless OpenCV?); continuing without it")
            self.enabled = False

    def init(self, img, box):
        self.tracker.init(img, box)
        self._show(img, box)

    def track(self, img):
        out = self.tracker.track(img)
        self._show(img, out["bbox"])
        return out


def _main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_cfg(args.config, list(args.opts) + (["TRACK.FAST", "True"] if args.fast else []), freeze=True)
    tracker = tracker_from_snapshot(cfg, args.snapshot, args.device)
    if args.vis:
        tracker = ShownTracker(tracker)
    name = args.tracker_name or os.path.basename(args.snapshot).split(".")[0]
    dataset = DatasetFactory.create_dataset(
            args.dataset, resolve_dataset_root(args.dataset, args.dataset_root), load_img=False)
    videos = [v for v in dataset if not args.video or v.name == args.video]
    if not videos:
        raise UsageError(f"video {args.video!r} is not in {args.dataset}")
    kind = results.result_kind(args.dataset)
    total_lost = 0
    for idx, video in enumerate(videos, 1):
        if results.is_finished(args.results_dir, args.dataset, name, video.name, kind, num_frames=len(video)):
            tqdm.write(f"({idx:3d}) Video: {video.name:12s} already done, skipped")
            continue
        with tqdm(total=len(video), desc=f"{idx}/{len(videos)} {video.name}", leave=False) as bar:
            res = protocols.run_protocol(tracker, video, kind, progress=bar.update)
        results.write_video_result(args.results_dir, args.dataset, name, video.name, res.boxes,
                                   scores=res.scores, times=res.times, kind=kind)
        toc = max(sum(res.times), 1e-9)
        line = f"({idx:3d}) Video: {video.name:12s} Time: {toc:5.1f}s Speed: {len(video) / toc:3.1f}fps"
        if kind == "vot":
            line += f" Lost: {res.lost:d}"
            total_lost += res.lost
        tqdm.write(line)
    if kind == "vot":
        print(f"{name} total lost: {total_lost:d}")
    return 0


def main(argv=None) -> int:
    """``siamkpn-test`` / ``python tools/test.py``: track a benchmark under the common error policy."""
    return run_tool(_main, argv, "siamkpn-test")


if __name__ == "__main__":
    sys.exit(main())
