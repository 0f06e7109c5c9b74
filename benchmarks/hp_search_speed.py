"""Hyper-parameter search throughput: configurations x frames per second with K configurations per forward pass.

Usage: python benchmarks/hp_search_speed.py [--config experiments/siamkpn_r50_stack1/config.yaml] [--k 1,8,16]
       [--frames 40] [--device cpu|cuda] [--threads N] [--opts KEY VALUE ...]

Random (seeded) weights and one synthetic video held in memory, tracked with the one-pass protocol by
BatchSiamKPNTracker, as tools/hp_search_epoch.py does. K = 1 tracks several configurations one after the
other; each larger K tracks K configurations in lockstep. Prints configurations x frames per second for
each K and the speed-up over K = 1, after checking that the batched lanes give the K = 1 boxes. On a CPU,
try --config experiments/siamkpn_quickstart/config.yaml.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from siamkpn.config import load_cfg  # noqa: E402
from siamkpn.hpsearch.evaluate import lane_cfg  # noqa: E402
from siamkpn.hpsearch.grid import Point  # noqa: E402
from siamkpn.models.model_builder import ModelBuilder  # noqa: E402
from siamkpn.tracker.siamkpn_tracker import BatchSiamKPNTracker  # noqa: E402
from toolkit.protocols import run_ope_batch  # noqa: E402


class MovingBox:
    """A textured box drifting over noise: frames made once, kept in memory (no disk in the timing)."""

    def __init__(self, frames: int, width: int = 640, height: int = 360, seed: int = 0):
        rng = np.random.default_rng(seed)
        patch = rng.integers(60, 255, (60, 80, 3), dtype=np.uint8)
        self.frames, self.gt_traj = [], []
        for i in range(frames):
            img = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
            x, y = int(200 + 60 * np.sin(i / 9)), int(140 + 40 * np.cos(i / 7))
            img[y:y + 60, x:x + 80] = patch
            self.frames.append(img)
            self.gt_traj.append([float(x), float(y), 80.0, 60.0])

    def __len__(self) -> int:
        return len(self.frames)

    def load_frame(self, idx: int) -> np.ndarray:
        return self.frames[idx]


def lane_points(n: int) -> list:
    """n distinct configurations spread over the usual search ranges."""
    t = np.linspace(0, 1, n)
    return [Point(0, 0.05 + 0.45 * a, 0.2 + 0.4 * b, 0.2 + 0.4 * c)
            for a, b, c in zip(t, t[::-1], np.roll(t, n // 2))]


def track(model, cfg, points, video) -> tuple:
    """(seconds, per-lane boxes) for the points tracked in lockstep."""
    tracker = BatchSiamKPNTracker(model, [lane_cfg(cfg, p) for p in points])
    tic = time.perf_counter()
    out = run_ope_batch(tracker, video, len(points))
    return time.perf_counter() - tic, [r.boxes for r in out]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="experiments/siamkpn_r50_stack1/config.yaml")
    p.add_argument("--k", default="1,8,16", help="batch sizes to time (1 is always included)")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--singles", type=int, default=4, help="configurations tracked one by one for K = 1")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[])
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)  # random weights, huge sizes
    ks = sorted({1, *(int(k) for k in args.k.split(","))})
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = load_cfg(args.config, args.opts, freeze=True)
    torch.manual_seed(0)
    model = ModelBuilder(cfg).to(device).eval()
    video = MovingBox(args.frames)
    points = lane_points(max(ks))
    track(model, cfg, points[:2], MovingBox(3))  # warm-up (allocator, cuDNN autotuning)
    tracked = len(video) - 1  # the first frame only initialises
    seconds, single_boxes = 0.0, []
    for pt in points[:args.singles]:
        dt, boxes = track(model, cfg, [pt], video)
        seconds += dt
        single_boxes.append(boxes[0])
    rates = {1: args.singles * tracked / seconds}
    for k in ks[1:]:
        dt, boxes = track(model, cfg, points[:k], video)
        rates[k] = k * tracked / dt
        for i, ref in enumerate(single_boxes[:k]):
            np.testing.assert_allclose(boxes[i], ref, rtol=0, atol=1e-2, err_msg=f"K={k} lane {i} differs")
    print(f"{args.config} on {device} ({torch.get_num_threads()} threads), {tracked} tracked frames per configuration")
    for k in ks:
        print(f"K = {k:3d}: {rates[k]:8.1f} configurations x frames / s  (x{rates[k] / rates[1]:.2f} vs K = 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
