"""Track a benchmark: `python tools/test.py --config config.yaml --snapshot model.pth --dataset VOT2018`.

Results go to `<results-dir>/<dataset>/<tracker-name>/` in pysot's layout; videos whose result files are
already complete are skipped, so an interrupted run resumes where it stopped. A record beside them
(`siamkpn.tracker.provenance`) says which snapshot content, config and mode produced them; a rerun with
other inputs stops with an error instead of passing off the old results as its own.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import torch
from tqdm import tqdm

from siamkpn.api import load_tracker
from siamkpn.cli.args import add_config, add_flag, add_opts, add_snapshot, add_standard, config_opts, make_parser
from siamkpn.cli.common import UsageError, run_tool
from siamkpn.config import load_cfg
from siamkpn.models.backends import backend_for
from siamkpn.tracker.provenance import prepare_result_folder, tracking_provenance
from toolkit import protocols, results
from toolkit.datasets import DatasetFactory, resolve_dataset_root


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("siamkpn-test", __doc__)
    add_config(p)
    add_snapshot(p)
    add_standard(p, ["dataset", "results-dir"])
    add_flag(p, "--tracker-name", "--tracker_name", dest="tracker_name", default=None,
             help="result sub-folder, one plain name (default: the snapshot's file name without its last "
                  "extension, model.v1.pth -> model.v1)")
    add_flag(p, "--overwrite", action="store_true",
             help="discard the folder's results and record first, then track every video again")
    add_flag(p, "--video", default="", help="track only this video (default: all)")
    add_standard(p, ["device", "backend", "threads", "fast", "progress"])
    add_flag(p, "--vis", action="store_true", help="show the tracked boxes (needs a display)")
    add_opts(p)
    return p


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


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


def tracker_name(name: str | None, snapshot: str) -> str:
    """The result sub-folder: ``name``, else the snapshot's file name without its last extension; one plain
    folder name by the rule every name that becomes a path follows (``toolkit.names``)."""
    from toolkit.names import UnsafeNameError, check_name

    source = "--tracker-name" if name is not None else f"--snapshot {snapshot}"
    name = os.path.splitext(os.path.basename(snapshot))[0] if name is None else name
    try:
        return check_name(name, "tracker name", source)
    except UnsafeNameError as err:
        raise UsageError(f"{err}; it must be one plain folder name: results go to "
                         "<results-dir>/<dataset>/<tracker-name>") from None


def _claim_folder(args: argparse.Namespace, cfg, tracker, dataset, kind: str, name: str) -> None:
    """Check (or write) the record of what produces the results in the tracker's folder; --overwrite resets it."""
    folder = os.path.join(args.results_dir, args.dataset, name)
    current = tracking_provenance(cfg, args.snapshot, backend_for(cfg).precision(tracker.model))
    files = [p for v in dataset for p in results.result_files(folder, v.name, kind).values()]
    written_by = {"tool": "siamkpn-test", "snapshot": os.path.abspath(args.snapshot),
                  "config": os.path.abspath(args.config), "device": str(getattr(tracker.model, "device", "?"))}
    prepare_result_folder(folder, current, files, args.overwrite, written_by)


def _lost_in(path: os.PathLike) -> int:
    """Failures (lines equal to 2) in a finished VOT result file."""
    return sum(1 for line in results.read_vot(path) if line == [2.0])


def _main(argv=None) -> int:
    args = parse_args(argv)
    name = tracker_name(args.tracker_name, os.path.normpath(args.snapshot))  # an export folder may end in '/'
    cfg = load_cfg(args.config, config_opts(args), freeze=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    tracker = load_tracker(cfg, args.snapshot, args.device)
    dataset = DatasetFactory.create_dataset(
            args.dataset, resolve_dataset_root(args.dataset, args.dataset_root), load_img=False)
    videos = [v for v in dataset if not args.video or v.name == args.video]
    if not videos:
        raise UsageError(f"video {args.video!r} is not in {args.dataset}")
    kind = results.result_kind(args.dataset)
    _claim_folder(args, cfg, tracker, dataset, kind, name)
    if args.vis:
        tracker = ShownTracker(tracker)
    total_lost = 0
    for idx, video in enumerate(videos, 1):
        if results.is_finished(args.results_dir, args.dataset, name, video.name, kind, num_frames=len(video)):
            line = f"({idx:3d}) Video: {video.name:12s} already done, skipped"
            if kind == "vot":  # its failures still count in the total
                lost = _lost_in(results.result_path(args.results_dir, args.dataset, name, video.name, kind))
                line += f" Lost: {lost:d}"
                total_lost += lost
            tqdm.write(line)
            continue
        with tqdm(total=len(video), desc=f"{idx}/{len(videos)} {video.name}", leave=False,
                  disable=args.no_progress) as bar:
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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    tqdm.write(f"warning: {message}", file=sys.stderr)  # one line above the progress bar, not through it


def main(argv=None) -> int:
    """``siamkpn-test`` / ``python tools/test.py``: track a benchmark under the common error policy."""
    with warnings.catch_warnings():  # the caller's warning settings come back afterwards
        warnings.showwarning = _show_warning
        warnings.simplefilter("always", protocols.TrackingInputWarning)  # the loop warns once per video already
        return run_tool(_main, argv, "siamkpn-test")


if __name__ == "__main__":
    sys.exit(main())
