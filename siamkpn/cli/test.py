"""Track a benchmark: `python tools/test.py --config config.yaml --snapshot model.pth --dataset VOT2018`.

Results go to `<results-dir>/<dataset>/<tracker-name>/` in pysot's layout; videos whose result files are
already complete are skipped, so an interrupted run resumes where it stopped. A record beside them
(`siamkpn.tracker.provenance`) says which snapshot content, config and mode produced them; a rerun with
other inputs stops with an error instead of passing off the old results as its own.

Any number of runs share one folder (--workers, other terminals, machines, SLURM array tasks, torchrun ranks):
each video is claimed before it is tracked, so it is tracked once (``siamkpn.testing``; README, Testing faster).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from tqdm import tqdm

from siamkpn.cli.args import (
    add_config,
    add_device,
    add_flag,
    add_opts,
    add_snapshot,
    add_standard,
    add_threads,
    config_opts,
    make_parser,
    positive_int,
)
from siamkpn.cli.common import UsageError, run_tool
from siamkpn.config import load_cfg
from siamkpn.models.backends import backend_for
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
    add_device(p, several=True)
    add_flag(p, "--workers", type=positive_int, default=None,
             help="tracking processes (default: one per device of a --device list, else 1); videos go to them "
                  "longest first. --device may list devices, cuda:0,cuda:1: workers take them in turn (cuda: every "
                  "visible GPU; under torchrun auto/cuda mean cuda:LOCAL_RANK)")
    add_flag(p, "--batch", type=positive_int, default=1,
             help="videos each worker tracks in lockstep, one forward pass per frame step for all of them")
    add_threads(p)
    add_standard(p, ["backend", "fast", "progress"])
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


def _main(argv=None) -> int:
    from siamkpn.testing.runner import run

    args = parse_args(argv)
    name = tracker_name(args.tracker_name, os.path.normpath(args.snapshot))  # an export folder may end in '/'
    cfg = load_cfg(args.config, config_opts(args), freeze=True)
    for device in args.device.split(","):  # a wrong snapshot or device is named before the benchmark is read
        backend_for(cfg).check(args.snapshot, device)
    dataset = DatasetFactory.create_dataset(
            args.dataset, resolve_dataset_root(args.dataset, args.dataset_root), load_img=False)
    videos = [v for v in dataset if not args.video or v.name == args.video]
    if not videos:
        raise UsageError(f"video {args.video!r} is not in {args.dataset}")
    return run(args, cfg, name, dataset, videos, results.result_kind(args.dataset),
               wrap=ShownTracker if args.vis else None)


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
