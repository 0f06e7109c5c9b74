"""VOT evaluation speed: EAO + accuracy/robustness of a VOT2018-sized result set, vectorised vs a per-frame loop.

Usage: python benchmarks/eval_speed.py [--videos 60] [--frames 21356] [--trackers 3] [--baseline-frames 2000]

Writes a synthetic VOT2018 benchmark (pysot json, rotated-box ground truth, tags) and reset-protocol
results of several trackers into a temporary folder, reads them with the toolkit's loaders, then times
(a) the toolkit's AR + EAO (all 7 tags) and (b) a naive baseline: the region library's overlap as a pure
Python scan line per frame (both bounds), followed by the same AR/EAO bookkeeping. The baseline loop is
timed on a random sample of frame pairs (checked equal to the vectorised overlaps) and scaled to all of
them unless --baseline-frames 0. Prints both CPU times (process time: comparable on a busy machine) and the
speed-up.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from toolkit.datasets import DatasetFactory  # noqa: E402
from toolkit.evaluation import EAO_TAGS, AccuracyRobustnessBenchmark, EAOBenchmark  # noqa: E402
from toolkit.evaluation.trajectory import tracker_overlaps  # noqa: E402
from toolkit.results import write_video_result  # noqa: E402

W, H = 1280, 720


def naive_overlap(a, b, bounds):
    """region.c's overlap for one frame, pure Python: float32 vertices, rounding, scan line, inclusive spans."""
    if len(a) == 1 or len(b) == 1:
        return float("nan")
    polys = []
    for r in (a, b):
        pts = ([(r[0], r[1]), (r[0] + r[2], r[1]), (r[0] + r[2], r[1] + r[3]), (r[0], r[1] + r[3])] if len(r) == 4
               else list(zip(r[0::2], r[1::2])))
        polys.append([(float(np.float32(x)), float(np.float32(y))) for x, y in pts])
    lim = (0.0, 0.0, float(bounds[0]), float(bounds[1]))
    boxes = []
    for p in polys:
        xs, ys = [x for x, _ in p], [y for _, y in p]
        boxes.append((max(math.floor(min(xs)), lim[0]), max(math.floor(min(ys)), lim[1]),
                      min(math.ceil(max(xs)), lim[2]), min(math.ceil(max(ys)), lim[3])))
    (l1, t1, r1, b1), (l2, t2, r2, b2) = boxes
    ox, oy = min(l1, l2), min(t1, t2)
    width, height = int(max(r1, r2) - ox) + 1, int(max(b1, b2) - oy) + 1
    a1, a2 = (r1 - l1) * (b1 - t1), (r2 - l2) * (b2 - t2)
    if a1 <= 0 or a2 <= 0 or width < 1 or height < 1:
        return 0.0
    if (min(r1, r2) - max(l1, l2)) <= 0 or (min(b1, b2) - max(t1, t2)) <= 0:
        return 0.0
    rows = [_row_spans([(_round(x - ox), _round(y - oy)) for x, y in p], width, height) for p in polys]
    inter = vol1 = vol2 = 0
    for s1, s2 in zip(*rows):
        vol1 += sum(e - s + 1 for s, e in s1)
        vol2 += sum(e - s + 1 for s, e in s2)
        inter += sum(max(0, min(e1, e2) - max(u1, u2) + 1) for u1, e1 in s1 for u2, e2 in s2)
    return float(np.float32(inter) / np.float32(vol1 + vol2 - inter))


def _round(v: float) -> int:
    return math.floor(v + 0.5) if v >= 0 else math.ceil(v - 0.5)


def _row_spans(poly, width, height):
    out = []
    n = len(poly)
    for y in range(height):
        nodes = []
        for i in range(n):
            (xi, yi), (xj, yj) = poly[i], poly[i - 1]
            if yi != yj and min(yi, yj) <= y <= max(yi, yj):
                nodes.append(int(xi + (y - yi) / (yj - yi) * (xj - xi)))
        nodes.sort()
        spans, i = [], 0
        while i < len(nodes) - 1:
            if nodes[i] == nodes[i + 1]:
                i += 1
                continue
            if nodes[i] >= width:
                break
            if nodes[i + 1] >= 0:
                start = max(nodes[i], 0, spans[-1][1] + 1 if spans else 0)
                spans.append((start, min(nodes[i + 1], width - 1)))
            i += 2
        out.append(spans)
    return out


def make_benchmark(root: Path, n_videos: int, n_frames: int, n_trackers: int, seed: int) -> list:
    """Synthetic VOT2018 json + first frames under root/VOT2018, results under root/results; tracker names."""
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(40, 1500, n_videos)
    lengths = np.maximum(np.round(lengths / lengths.sum() * n_frames).astype(int), 20)
    data_dir = root / "VOT2018"
    meta = {}
    trackers = [f"Trk{i}" for i in range(n_trackers)]
    for v, n in enumerate(lengths):
        name = f"seq{v:02d}"
        (data_dir / name).mkdir(parents=True)
        cv2.imwrite(str(data_dir / name / "00000001.jpg"), np.full((H, W, 3), 127, np.uint8))
        t = np.arange(n)
        centre = np.stack([W / 2 + 0.45 * W * np.sin(t / 97 + v), H / 2 + 0.45 * H * np.cos(t / 131 + v)], 1)
        size = np.stack([60 + 40 * np.sin(t / 50 + v), 120 + 80 * np.cos(t / 70)], 1) * rng.uniform(0.5, 1.5)
        angle = 0.3 * np.sin(t / 40 + v)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) / 2
        rot = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], 1).reshape(-1, 2, 2)
        poly = np.einsum("nij,kj->nki", rot, corners) * size[:, None, :] + centre[:, None, :]
        gt = np.round(poly.reshape(n, 8), 2)
        meta[name] = {"video_dir": name, "init_rect": [0, 0, 1, 1], "img_names": [f"{name}/{i + 1:08d}.jpg"
                                                                                   for i in range(n)],
                      "gt_rect": gt.tolist(),
                      **{tag: (rng.random(n) < 0.3).astype(int).tolist() for tag in EAO_TAGS[1:-1]}}
        lo, hi = poly.min(1), poly.max(1)
        for k, trk in enumerate(trackers):
            noise = 0.04 * (k + 1)
            box = np.concatenate([lo, hi - lo], 1) * (1 + rng.normal(0, noise, (n, 4)))
            lines, f = [], 0
            while f < n:
                lines.append(1)
                f += 1
                while f < n and rng.random() > 0.002 * (k + 1):
                    lines.append(box[f].tolist())
                    f += 1
                if f < n:
                    lines += [2] + [0] * min(4, n - f - 1)
                    f += 5
            write_video_result(root / "results", "VOT2018", trk, name, lines[:n])
    (data_dir / "VOT2018.json").write_text(json.dumps(meta))
    return trackers


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=60)
    p.add_argument("--frames", type=int, default=21356, help="total frames (VOT2018 has 21356)")
    p.add_argument("--trackers", type=int, default=3)
    p.add_argument("--baseline-frames", type=int, default=2000, help="frame pairs timed in the loop (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        trackers = make_benchmark(root, args.videos, args.frames, args.trackers, args.seed)
        dataset = DatasetFactory.create_dataset("VOT2018", root / "VOT2018")
        for video in dataset:
            video.load_tracker(root / "results" / "VOT2018", trackers)
        n_frames = sum(len(v.gt_traj) for v in dataset)
        sizes = [(v.width, v.height) for v in dataset]  # read the first frames before timing

        t0 = time.process_time()
        for t in trackers:
            tracker_overlaps(dataset, t)  # every frame of a tracker in one call; cached for the benchmarks
        t_overlaps = time.process_time() - t0
        t0 = time.process_time()
        ours = {t: (AccuracyRobustnessBenchmark(dataset).eval(t), EAOBenchmark(dataset, tags=EAO_TAGS).eval(t))
                for t in trackers}
        t_bookkeeping = time.process_time() - t0
        t_ours = t_overlaps + t_bookkeeping
        pairs = [(v, t, i) for t in trackers for v in dataset for i in range(len(v.gt_traj))]
        rng = np.random.default_rng(args.seed)
        sample = pairs if args.baseline_frames <= 0 else [pairs[i] for i in rng.choice(
            len(pairs), min(args.baseline_frames, len(pairs)), replace=False)]
        t0 = time.process_time()
        loop = [(naive_overlap(v.pred_trajs[t][0][i], v.gt_traj[i], (v.width, v.height)),
                 naive_overlap(v.pred_trajs[t][0][i], v.gt_traj[i], (v.width - 1, v.height - 1)))
                for v, t, i in sample]
        t_loop = (time.process_time() - t0) * len(pairs) / len(sample)
        vec = [tracker_overlaps(dataset, t)[v.name][0] for v, t, _ in sample]
        same = all(np.array_equal(np.array(o, np.float32), np.array([r.overlaps_wh[i], r.overlaps_eao[i]]),
                                  equal_nan=True) for o, r, (_, _, i) in zip(loop, vec, sample))
    t_naive = t_loop + t_bookkeeping
    print(f"{args.videos} videos ({sizes[0][0]}x{sizes[0][1]}), {n_frames} frames, {len(trackers)} trackers: "
          f"AR + EAO ({len(EAO_TAGS)} tags)")
    for t in trackers:
        print(f"  {t}: EAO {ours[t][1][t]['all']:.3f}  lost {sum(sum(f) for f in ours[t][0][t]['failures'].values())}")
    scaled = "" if len(sample) == len(pairs) else f", loop timed on {len(sample)} of {len(pairs)} frames and scaled"
    print(f"naive per-frame loop: {t_naive:8.2f} CPU s (overlaps identical: {'yes' if same else 'NO'}{scaled})")
    print(f"toolkit (vectorised): {t_ours:8.2f} CPU s (overlaps {t_overlaps:.2f} s, "
          f"AR/EAO bookkeeping {t_bookkeeping:.2f} s)")
    print(f"speed-up: {t_naive / t_ours:.1f}x")


if __name__ == "__main__":
    main()
