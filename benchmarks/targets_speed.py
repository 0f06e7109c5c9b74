"""Keypoint-label throughput: vectorised KeypointTarget against a cell-by-cell Python loop, same run, same boxes.

Usage: python benchmarks/targets_speed.py [--config experiments/siamkpn_r50_stack3_difstd/config.yaml] [--boxes 200]
Prints labels/s of both and the speed-up, after checking that they agree.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from siamkpn.config import get_cfg, load_cfg  # noqa: E402
from siamkpn.datasets.targets import KeypointTarget  # noqa: E402


def naive_labels(train, box, size: int):
    """The same labels computed one cell at a time (the published code's structure, each stage its own sigma)."""
    stack = max(int(train.STACK), 1)
    radius = train.OUTPUT_SIZE / 8
    sigmas = [radius / 2 * (0.9**s if train.DIF_STD else 1.0) for s in range(stack)]
    if train.COMPAT_REFERENCE:
        sigmas = [sigmas[-1]] * stack
    x1, y1, x2, y2 = (float(v) for v in box)
    tcx, tcy, tw, th = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    centre = (train.SEARCH_SIZE - 1) / 2
    hx = size // 2 + (tcx - centre) / train.STRIDE
    hy = size // 2 + (tcy - centre) / train.STRIDE
    px, py = round(hx), round(hy)
    heatmaps = np.zeros((stack, 1, size, size), dtype=np.float32)
    offsets = np.zeros((2, size, size), dtype=np.float32)
    objsize = np.zeros((2, size, size), dtype=np.float32)
    for i in range(size):
        for j in range(size):
            d2 = (i - hy) ** 2 + (j - hx) ** 2
            if math.sqrt(d2) < radius:
                for s in range(stack):
                    heatmaps[s, 0, i, j] = math.exp(-d2 / (2 * sigmas[s] ** 2))
                if train.OFFSETS:
                    if train.SAMEOFF:
                        offsets[:, i, j] = ((hx - px) * train.STRIDE / 64, (hy - py) * train.STRIDE / 64)
                    else:
                        kx = centre + train.STRIDE * (j - size // 2)
                        ky = centre + train.STRIDE * (i - size // 2)
                        offsets[:, i, j] = ((tcx - kx) / 64, (tcy - ky) / 64)
                objsize[:, i, j] = (math.log(tw / 64), math.log(th / 64)) if train.NORMWH else (tw, th)
            if i == py and j == px:
                heatmaps[:, 0, i, j] = 1.0
    return heatmaps, offsets, objsize


def random_boxes(n: int, search_size: int, seed: int = 0) -> np.ndarray:
    """Corner boxes with centres anywhere in the search crop and sizes 8..200 px."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, search_size - 1, (n, 2))
    sizes = rng.uniform(8, 200, (n, 2))
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)


def throughput(fn, boxes: np.ndarray, size: int, repeats: int) -> float:
    """Best-of-`repeats` labels per second of `fn(box, size)` over all boxes."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for box in boxes:
            fn(box, size)
        best = min(best, time.perf_counter() - start)
    return len(boxes) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="experiment config.yaml (default: STACK 3 with DIF_STD)")
    parser.add_argument("--boxes", type=int, default=200, help="boxes per timing pass")
    parser.add_argument("--repeats", type=int, default=3, help="timing passes; the best one counts")
    args = parser.parse_args()

    if args.config:
        cfg = load_cfg(args.config)
    else:
        cfg = get_cfg()
        cfg.TRAIN.STACK, cfg.TRAIN.DIF_STD = 3, True
    train = cfg.TRAIN
    size = int(train.OUTPUT_SIZE)
    target = KeypointTarget(cfg)
    boxes = random_boxes(args.boxes, int(train.SEARCH_SIZE))

    worst = 0.0
    for box in boxes:
        for ours, ref in zip(target(box, size), naive_labels(train, box, size)):
            worst = max(worst, float(np.abs(ours - ref).max()))
    if worst > 1e-4:
        raise SystemExit(f"vectorised and naive labels disagree: max |diff| = {worst:.3g}")

    fast = throughput(lambda b, s: target(b, s), boxes, size, args.repeats)
    slow = throughput(lambda b, s: naive_labels(train, b, s), boxes, size, args.repeats)
    print(f"labels agree (max |diff| {worst:.2g}) on {len(boxes)} boxes, STACK {target.stack}, output {size}x{size}")
    print(f"naive loop   : {slow:10.1f} labels/s")
    print(f"KeypointTarget: {fast:10.1f} labels/s")
    print(f"speed-up     : {fast / slow:10.1f}x")


if __name__ == "__main__":
    main()
