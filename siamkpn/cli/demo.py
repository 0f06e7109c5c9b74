"""Track one object in a video file, an image folder or a webcam, and save an annotated video.

    python tools/demo.py --config config.yaml --snapshot model.pth --video clip.mp4 --out tracked.mp4
    python tools/demo.py ... --video frames/ --init 120,80,40,60      # headless: box given
    python tools/demo.py ... --video 0                               # webcam 0, box drawn with the mouse
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Iterator, List, Optional

import cv2
import numpy as np
import torch

from siamkpn.api import load_tracker
from siamkpn.cli.args import add_config, add_flag, add_opts, add_snapshot, add_standard, config_opts, make_parser
from siamkpn.cli.common import UsageError, run_tool
from siamkpn.config import load_cfg
from toolkit.datasets.video import read_image

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
WINDOW = "SiamKPN demo"


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("siamkpn-demo", __doc__)
    add_config(p)
    add_snapshot(p)
    add_flag(p, "--video", required=True, help="video file, image folder, or webcam index (e.g. 0)")
    add_flag(p, "--init", default=None, help="initial box x,y,w,h (0-based) (default: draw it with the mouse)")
    add_flag(p, "--out", default=None, help="annotated output video (.mp4, or .avi)")
    add_flag(p, "--fps", type=float, default=None, help="output frame rate (default: the input's, else 30)")
    add_standard(p, ["device", "backend", "threads", "fast"])
    add_flag(p, "--no-show", "--no_show", dest="no_show", action="store_true", help="never open a window")
    add_opts(p)
    return p


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def frames(source: str) -> Iterator[np.ndarray]:
    """BGR frames of an image folder (sorted names), a video file or a webcam index."""
    if os.path.isdir(source):
        names = sorted(n for n in os.listdir(source) if n.lower().endswith(IMAGE_EXTS))
        if not names:
            raise UsageError(f"no images ({', '.join(IMAGE_EXTS)}) in {source}")
        for name in names:
            yield read_image(os.path.join(source, name))  # names the file when it is cut short or corrupt
        return
    if not source.isdigit() and not os.path.isfile(source):
        raise UsageError(f"--video {source}: no such file, folder or webcam index")
    cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        raise UsageError(f"cannot open video {source}")
    try:
        ok, img = cap.read()
        while ok:
            yield img
            ok, img = cap.read()
    finally:
        cap.release()


def source_fps(source: str) -> float:
    """Frame rate of a video file (30 for folders, webcams and files that do not say)."""
    if os.path.isfile(source):
        cap = cv2.VideoCapture(source)
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
        cap.release()
        if fps and 1 <= fps <= 1000:
            return float(fps)
    return 30.0


def has_display() -> bool:
    """True when OpenCV can open a window (GUI build and, on Linux, an X/Wayland display)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        return True
    except cv2.error:
        return False


def parse_box(text: str) -> List[float]:
    """'x,y,w,h' -> [x, y, w, h]: four finite numbers with positive w and h (checked before the model loads)."""
    try:
        box = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise UsageError(f"--init must be x,y,w,h numbers, got {text!r}") from None
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
        raise UsageError(f"--init must be x,y,w,h: four finite numbers with positive w and h, got {text!r}")
    return box


def check_out(out: str, video: str) -> None:
    """--out is a new or replaceable video file, never an input: checked before the model loads (OpenCV's writer
    would only say it cannot open, or overwrite the input)."""
    if os.path.isdir(out):
        raise UsageError(f"--out {out} is a folder; give a video file name (.mp4 or .avi)")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UsageError(f"--out {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--out {out}: the folder {folder} is not writable")
    if not os.path.exists(out):
        return
    if os.path.isfile(video) and os.path.samefile(out, video):
        raise UsageError(f"--out {out} is the input --video {video}: it would be overwritten; choose another --out")
    if os.path.isdir(video) and os.path.samefile(os.path.dirname(os.path.abspath(out)), video) \
            and out.lower().endswith(IMAGE_EXTS):
        raise UsageError(f"--out {out} is a frame of the input --video {video}: it would be overwritten; choose "
                         "another --out")


def draw(img: np.ndarray, box, score: Optional[float]) -> np.ndarray:
    """A copy of `img` with the box (and its score) drawn."""
    out = img.copy()
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), 2)
    if score is not None:
        cv2.putText(out, f"{score:.3f}", (x, max(y - 5, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
    return out


def _main(argv=None) -> int:
    args = parse_args(argv)
    show = not args.no_show and has_display()
    if args.init is None and not show:
        raise UsageError("no display to draw the initial box: pass --init x,y,w,h")
    init_box = parse_box(args.init) if args.init else None
    if args.out:
        check_out(args.out, args.video)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_cfg(args.config, config_opts(args), freeze=True)
    tracker = load_tracker(cfg, args.snapshot, args.device)
    writer, count, tic = None, 0, time.perf_counter()
    for img in frames(args.video):
        if count == 0:
            box = init_box or [float(v) for v in cv2.selectROI(WINDOW, img, False, False)]
            if box[2] <= 0 or box[3] <= 0:
                raise UsageError("empty initial box")
            tracker.init(img, box)
            shown = draw(img, box, None)
        else:
            out = tracker.track(img)
            shown = draw(img, out["bbox"], out["best_score"])
        if args.out and writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if args.out.lower().endswith(".avi") else "mp4v"))
            size = (img.shape[1], img.shape[0])
            writer = cv2.VideoWriter(args.out, fourcc, args.fps or source_fps(args.video), size)
            if not writer.isOpened():
                raise UsageError(f"cannot write video {args.out} (codec not available?)")
        if writer is not None:
            writer.write(shown)
        count += 1
        if show:
            cv2.imshow(WINDOW, shown)
            if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                break
    if writer is not None:
        writer.release()
    if count == 0:
        raise UsageError(f"no frames in {args.video}")
    seconds = time.perf_counter() - tic
    print(f"{count} frames in {seconds:.1f}s ({count / seconds:.1f} fps)" + (f", saved {args.out}" if args.out else ""))
    return 0


def main(argv=None) -> int:
    """``siamkpn-demo`` / ``python tools/demo.py`` under the common error policy."""
    return run_tool(_main, argv, "siamkpn-demo")


if __name__ == "__main__":
    sys.exit(main())
