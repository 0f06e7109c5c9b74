"""Benchmark-testing throughput (issue 20): siamkpn-test sequential vs --workers vs --batch vs both.

Usage: python benchmarks/test_throughput.py [--configs quickstart,r50] [--snapshot X.pth] [--runs 1x1,2x1,1x4,2x4]
       [--videos 8] [--frames 60] [--r50-videos 4] [--r50-frames 8] [--threads N] [--device cpu|cuda]
       [--dataset VOT2018|OTB100] [--size 320x240] [--work DIR]

Runs `tools/test.py` once per row on a synthetic benchmark (siamkpn.datasets.synthetic_sets, the set
scripts/make_synthetic.py writes) and prints each row's wall time (process start to exit, model loading included),
aggregate frames/s over all videos, tracker calls/s (frames that were initialised on or tracked: with random
weights a VOT run fails often and skips the frames after each failure), the ratio to the sequential row of the
same run, and busy frames/s: frames over the tracking time the tool reports per video (its `Speed:` lines, summed,
divided by the workers), which leaves out process start-up and model loading. A row `WxK` is
`--workers W --batch K`; the sequential row (1x1) is the plain command without either flag.
Each row gets --threads T/W (T: --threads, default every core; on CUDA the flag is left to the tool). The last
columns check each row's result files against the sequential row's: VOT markers (1/2/0) and the largest box
difference (--batch: within 1e-2 px; --workers alone: byte-identical when each process has the same threads).

Before the rows, each model's ceiling on this machine: the tracker's frames/s in memory (no disk, no process
start) one frame at a time with T threads, and K lanes per call with T/W threads; W times the second over the first
is the most `--workers W --batch K` can gain if W processes scaled perfectly over the cores. Where it is far below
a target, the processor (the convolutions are compute-bound), not the scheduling, sets the limit.

Models: the quick-start config (experiments/siamkpn_quickstart/config.yaml) with --snapshot or seeded random
weights, and the published R50 3-stage config (experiments/siamkpn_r50_stack3_difstd/config.yaml) with random
weights on fewer, shorter videos. GPU rows: benchmarks/gpu_check.sh.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

CONFIGS = {"quickstart": "experiments/siamkpn_quickstart/config.yaml",
           "r50": "experiments/siamkpn_r50_stack3_difstd/config.yaml"}


@dataclass
class Row:
    workers: int
    batch: int
    threads: Optional[int]
    wall: float = 0.0
    status: str = "ok"
    lines: Optional[Dict[str, list]] = None
    speeds: Optional[Dict[str, float]] = None  # video -> frames/s the tool printed

    @property
    def name(self) -> str:
        if self.workers == 1 and self.batch == 1:
            return "sequential"
        return " ".join(p for p in (f"--workers {self.workers}" if self.workers > 1 else "",
                                    f"--batch {self.batch}" if self.batch > 1 else "") if p)


def parse_runs(text: str) -> List[tuple]:
    """'1x1,2x1,1x4,2x4' -> [(1, 1), (2, 1), (1, 4), (2, 4)] with the sequential run first."""
    runs = []
    for part in text.split(","):
        try:
            w, k = (int(v) for v in part.strip().lower().split("x"))
        except ValueError:
            raise SystemExit(f"--runs: {part!r} is not WORKERSxBATCH (e.g. 2x4)") from None
        if w < 1 or k < 1:
            raise SystemExit(f"--runs: {part!r} needs positive numbers")
        runs.append((w, k))
    return [(1, 1)] + [r for r in dict.fromkeys(runs) if r != (1, 1)]


def make_benchmark(root: Path, dataset: str, videos: int, frames: int, size: str) -> Path:
    """A synthetic OTB100- or VOT2018-style benchmark under `root`; returns its dataset root."""
    from siamkpn.datasets.synthetic import SceneConfig
    from siamkpn.datasets.synthetic_sets import make_synthetic

    width, height = (int(v) for v in size.lower().split("x"))
    part = "vot" if dataset == "VOT2018" else "otb"
    make_synthetic(str(root), seed=0, test_videos=videos, test_frames=frames,
                   scene=SceneConfig(width=width, height=height), parts=(part,), progress=False)
    return root / "test" / dataset


HEAD_SCALE = {"heatmap": 1e-2, "offsets": 1e-5, "objsize": 1e-3}  # output layers: logits ~1, ~0.3 px, sizes ~ +-10%


def random_model(cfg):
    """Seeded random weights that track like a weak model: BatchNorm statistics of unit-scale activations and small
    head outputs, so boxes keep a sane size and follow heat-map peaks. Plain random weights give boxes clipped into a
    corner (every VOT frame a failure, search crops mostly padding): not the work a real model does."""
    import torch

    from siamkpn.models.model_builder import ModelBuilder

    torch.manual_seed(0)
    model = ModelBuilder(cfg).eval()
    size = 0.0 if cfg.TRAIN.NORMWH else 64.0  # the size output: exp(0) * 64 px, or 64 px directly
    with torch.no_grad():
        for name, m in model.named_modules():
            parts = name.split(".")
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 4.0)
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None and len(parts) > 3 and parts[-1] == "1" \
                    and parts[-3] in HEAD_SCALE:  # kpn_head.kpn{i}.<branch>.head{s}.1: a stage's output layer
                m.weight.mul_(HEAD_SCALE[parts[-3]])
                m.bias.fill_(size if parts[-3] == "objsize" else 0.0)
    return model


def random_snapshot(config: str, path: Path) -> Path:
    """`random_model` for `config`, saved as a snapshot siamkpn-test loads."""
    import torch

    from siamkpn.config import load_cfg

    torch.save({"state_dict": random_model(load_cfg(str(REPO / config))).state_dict()}, path)
    return path


def _frames_per_second(track, img, calls: int) -> float:
    track(img)  # warm-up: first-call allocations
    tic = time.perf_counter()
    for _ in range(calls):
        track(img)
    return calls / (time.perf_counter() - tic)


def ceiling(config: str, snapshot: Path, threads: int, workers: int, k: int, device: str, frames: int = 24) -> tuple:
    """(frames/s one at a time with `threads` threads, frames/s of K lanes with threads/workers threads, the
    ceiling ratio) of the tracker in memory on one synthetic frame (see the module docstring)."""
    import torch

    from siamkpn import load_tracker
    from siamkpn.config import load_cfg
    from siamkpn.tracker import build_video_batch_tracker

    cfg = load_cfg(str(REPO / config))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    box = [140.0, 100.0, 40.0, 30.0]
    before = torch.get_num_threads()
    try:
        if not device.startswith("cuda"):
            torch.set_num_threads(threads)
        tracker = load_tracker(cfg, snapshot, device)
        tracker.init(img, box)
        single = _frames_per_second(tracker.track, img, frames)
        if not device.startswith("cuda"):
            torch.set_num_threads(max(1, threads // workers))
        lanes = build_video_batch_tracker(tracker.model, cfg, k)
        lanes.init_lanes_images({lane: (img, box) for lane in range(k)})
        batched = k * _frames_per_second(lambda im: lanes.track_lanes_images({lane: im for lane in range(k)}), img,
                                         max(2, frames // k))
    finally:
        torch.set_num_threads(before)
    workers_here = 1 if device.startswith("cuda") else workers  # GPU: the workers share one device
    return single, batched, workers_here * batched / single


def run_row(row: Row, config: str, snapshot: Path, dataset: str, dataset_root: Path, results: Path,
            device: str) -> None:
    """Run siamkpn-test for `row` (wall time around the whole process) and read back its result lines."""
    cmd = [sys.executable, str(REPO / "tools" / "test.py"), "--config", str(REPO / config), "--snapshot",
           str(snapshot), "--dataset", dataset, "--dataset-root", str(dataset_root), "--results-dir", str(results),
           "--tracker-name", "bench", "--device", device, "--no-progress"]
    if row.workers > 1:
        cmd += ["--workers", str(row.workers)]
    if row.batch > 1:
        cmd += ["--batch", str(row.batch)]
    if row.threads:
        cmd += ["--threads", str(row.threads)]
    tic = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    row.wall = time.perf_counter() - tic
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        row.status = f"exit {proc.returncode}: {last}"
        return
    row.lines = read_lines(results, dataset, dataset_root)
    row.speeds = {m[1]: float(m[2]) for m in re.finditer(r"Video: (\S+)\s+Time:\s*[\d.]+s Speed: ([\d.]+)fps",
                                                          proc.stdout + proc.stderr)}


def busy_rate(row: Row) -> float:
    """Frames per second of tracking time per worker (the tool's per-video speeds), NaN if unknown."""
    if not row.lines or not row.speeds or set(row.speeds) != set(row.lines) or min(row.speeds.values()) <= 0:
        return float("nan")
    seconds = sum(len(row.lines[name]) / speed for name, speed in row.speeds.items())
    return sum(len(lines) for lines in row.lines.values()) / (seconds / row.workers)


def read_lines(results: Path, dataset: str, dataset_root: Path) -> Dict[str, list]:
    """{video: result lines} of the run (VOT markers as ints, boxes as float lists)."""
    from toolkit import results as rf
    from toolkit.datasets import DatasetFactory

    kind = rf.result_kind(dataset)
    out = {}
    for video in DatasetFactory.create_dataset(dataset, str(dataset_root), load_img=False):
        path = rf.result_path(results, dataset, "bench", video.name, kind)
        lines = rf.read_vot(path) if kind == "vot" else rf.read_ope(path)
        out[video.name] = [int(v[0]) if len(v) == 1 else v for v in lines]
    return out


def compare(row: Row, seq: Row) -> str:
    """Markers and largest box difference of `row` against the sequential row."""
    if row.lines is None or seq.lines is None:
        return "-"
    same_markers, worst, identical = True, 0.0, True
    for name, ref in seq.lines.items():
        got = row.lines.get(name, [])
        if [b if isinstance(b, int) else None for b in got] != [b if isinstance(b, int) else None for b in ref]:
            same_markers = False
            continue
        boxes = [(np.asarray(a, float), np.asarray(b, float)) for a, b in zip(got, ref) if not isinstance(a, int)]
        identical &= all(np.array_equal(a, b, equal_nan=True) for a, b in boxes)
        diffs = [np.nanmax(np.abs(a - b)) for a, b in boxes if np.isfinite(a - b).any()]
        worst = max([worst, *diffs])
    if not same_markers:
        return "markers DIFFER"
    return "identical" if identical else f"same markers, max {worst:.1e} px"


def bench_config(label: str, config: str, snapshot: Optional[str], runs: List[tuple], dataset: str, videos: int,
                 frames: int, size: str, threads: int, device: str, work: Path, result_lines: bool = False
                 ) -> List[Row]:
    """All rows for one model; prints its table."""
    work.mkdir(parents=True, exist_ok=True)
    root = make_benchmark(work / "data", dataset, videos, frames, size)
    snap = Path(snapshot) if snapshot else random_snapshot(config, work / f"{label}_random.pth")
    rows = [Row(w, k, None if device.startswith("cuda") else max(1, threads // w)) for w, k in runs]
    top_w, top_k = max(runs, key=lambda r: (r[0] * r[1], r))
    one, many, bound = ceiling(config, snap, threads, top_w, top_k, device)
    for i, row in enumerate(rows):
        run_row(row, config, snap, dataset, root, work / f"results_{i}", device)
    seq = rows[0]
    total = sum(len(lines) for lines in seq.lines.values()) if seq.lines else videos * frames
    calls = sum(1 for lines in (seq.lines or {}).values() for b in lines if b != 0) or total
    weights = "given snapshot" if snapshot else "random weights"
    print(f"\n{label}: {config} ({weights}), {dataset}-style synthetic set: {videos} videos x {frames} frames "
          f"({size}), {calls} tracker calls of {total} frames, device {device}")
    print(f"ceiling in memory: {one:.1f} frames/s one at a time ({threads} threads), {many:.1f} with {top_k} lanes "
          f"per call ({max(1, threads // top_w)} thread(s)): --workers {top_w} --batch {top_k} can give at most "
          f"{bound:.2f}x")
    print(f"{'run':<24} {'threads':>7} {'wall s':>8} {'frames/s':>9} {'calls/s':>8} {'x seq':>6} {'busy f/s':>9}"
          "  results vs seq")
    for row in rows:
        if row.status != "ok":
            print(f"{row.name:<24} {row.threads or '-':>7} {row.wall:8.1f}  {row.status}")
            continue
        ratio = seq.wall / row.wall if seq.status == "ok" else float("nan")
        check = "(reference)" if row is seq else compare(row, seq)
        print(f"{row.name:<24} {row.threads or '-':>7} {row.wall:8.1f} {total / row.wall:9.1f} "
              f"{calls / row.wall:8.1f} {ratio:5.2f}x {busy_rate(row):9.1f}  {check}")
    if result_lines:  # one line per row for benchmarks/gpu_check.sh
        print(f"RESULT {label} ceiling: {one:.1f} -> {many:.1f} frames/s in memory, at most {bound:.2f}x")
        for row in rows:
            text = row.status if row.status != "ok" else (
                f"{total / row.wall:.1f} frames/s in {row.wall:.1f} s wall ({seq.wall / row.wall:.2f}x sequential), "
                f"busy {busy_rate(row):.1f} frames/s, {'reference' if row is seq else compare(row, seq)}")
            print(f"RESULT {label} {row.workers}x{row.batch}: {text}")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="quickstart,r50", help="comma-separated: quickstart, r50")
    p.add_argument("--snapshot", default=None, help="quick-start snapshot (default: seeded random weights)")
    p.add_argument("--runs", default="1x1,2x1,1x4,2x4", help="WORKERSxBATCH rows (the sequential 1x1 always runs)")
    p.add_argument("--videos", type=int, default=8, help="videos in the quick-start benchmark")
    p.add_argument("--frames", type=int, default=60, help="frames per video, quick-start benchmark")
    p.add_argument("--r50-videos", type=int, default=4)
    p.add_argument("--r50-frames", type=int, default=8)
    p.add_argument("--size", default="320x240", help="frame size WIDTHxHEIGHT")
    p.add_argument("--dataset", choices=("VOT2018", "OTB100"), default="VOT2018")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="CPU threads in all (each row's workers share them)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (passed to siamkpn-test)")
    p.add_argument("--work", default=None, help="folder for the data and results (default: a temporary one)")
    p.add_argument("--result-lines", action="store_true", help="also print one 'RESULT ...' line per row")
    args = p.parse_args(argv)
    labels = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(labels) - set(CONFIGS))
    if unknown:
        p.error(f"--configs: unknown {unknown}; choose from {', '.join(CONFIGS)}")
    runs = parse_runs(args.runs)

    from siamkpn.utils.device import capability_line

    print(capability_line(args.threads))
    with tempfile.TemporaryDirectory(prefix="test_throughput_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        for label in labels:
            big = label != "r50"
            bench_config(label, CONFIGS[label], args.snapshot if label == "quickstart" else None, runs, args.dataset,
                         args.videos if big else args.r50_videos, args.frames if big else args.r50_frames, args.size,
                         args.threads, args.device, work / label, args.result_lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
