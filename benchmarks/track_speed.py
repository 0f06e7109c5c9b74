"""Tracker frames/s: the plain eager model (as the published tracker runs it) against the prepared model
(`siamkpn.models.inference`, exact and fast modes), through the real tracker, side by side in one run.

Usage: python benchmarks/track_speed.py [--configs 3s] [--frames 2] [--repeats 3] [--batch 1] [--threads N]
                                        [--device cpu|cuda] [--compile] [--fast-dtype auto|bfloat16|float16]
                                        [--modes plain,eager,exact,fast]
The default (SiamKPN-3s, K=1) takes about 3 minutes on 2 busy cores; the full table is
`--configs 1s,2s,3s --batch 1,8` (about 25 minutes there).
Modes: plain = the published path; eager = this repo's tracker on the ModelBuilder (inference_mode, cached
template kernels); exact / fast = `prepare_for_inference(model)` / `(model, fast=True)`.
Random weights; BatchNorm statistics measured on crops of the synthetic video, so activations keep unit scale.
Per mode: frames/s (median over repeats; modes interleaved so load changes hit all alike), ratio to plain,
FLOPs per step (FlopCounterMode), the fraction of this machine's measured GEMM rate, and the largest box
difference from plain. K > 1 runs `BatchSiamKPNTracker` with K hyper-parameter lanes (one batched forward).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from siamkpn.config import load_cfg  # noqa: E402
from siamkpn.models.inference import describe, prepare_for_inference  # noqa: E402
from siamkpn.models.model_builder import ModelBuilder  # noqa: E402
from siamkpn.tracker import BatchSiamKPNTracker, build_tracker  # noqa: E402

CONFIGS = {"1s": "siamkpn_r50_stack1", "2s": "siamkpn_r50_stack2_difstd", "3s": "siamkpn_r50_stack3_difstd"}


class PublishedPath(torch.nn.Module):
    """The model as the published test script runs it: grad mode on (only `kpn2.heatmap.head` trainable; this
    sets requires_grad on `model` itself), no inference_mode, no cached template side (z_conv* every frame)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model.eval()
        for name, param in model.named_parameters():
            param.requires_grad = "kpn2.heatmap.head" in name

    def template(self, z: torch.Tensor):
        with torch.inference_mode(False), torch.enable_grad():
            return self.model.template(z.clone())

    def track(self, zf, x: torch.Tensor):
        with torch.inference_mode(False), torch.enable_grad():
            return self.model.track(zf, x.clone())


def calibrated_model(cfg, device: torch.device, seed: int, frames: List[np.ndarray], box) -> ModelBuilder:
    """Random weights; BN running statistics measured on tracker-like crops of `frames` (template at `box`,
    search crops around it) after a random BN affine part, so that activations keep a unit scale."""
    from siamkpn.tracker.subwindow import get_subwindow

    torch.manual_seed(seed)
    model = ModelBuilder(cfg).eval()
    centre = (box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2)
    s_z = round(float(np.sqrt((box[2] + (box[2] + box[3]) / 2) * (box[3] + (box[2] + box[3]) / 2))))
    avg = frames[0].mean(axis=(0, 1))
    z = [get_subwindow(f, centre, 127, s_z, avg) for f in frames[:4]]
    x = [get_subwindow(f, (centre[0] + 8 * i, centre[1] - 8 * i), 255, round(s_z * 255 / 127), avg)
         for i, f in enumerate(frames[:4])]

    def batch(crops):
        return torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2)).float()

    def set_stats(bn, inputs):  # each BN normalises what it really receives in eval mode, upstream included
        bn.running_mean.copy_(inputs[0].mean((0, 2, 3)))
        bn.running_var.copy_(inputs[0].var((0, 2, 3)))

    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    hooks = [bn.register_forward_pre_hook(set_stats) for bn in bns]
    with torch.no_grad():
        for bn in bns:  # before the statistics, which must see the scale that these give downstream
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0.0, 0.1)
        model.track(model.template(batch(z)), batch(x))  # shared layers end with search-crop statistics
    for hook in hooks:
        hook.remove()
    return model.eval().to(device)


def synthetic_video(n: int, seed: int = 0, size=(360, 480)) -> List[np.ndarray]:
    """A textured square drifting over a smooth random background (BGR uint8)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    bg = cv2.resize(rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8), (w, h))
    patch = rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)
    frames = []
    for t in range(n):
        img = bg.copy()
        x, y = int(200 + 40 * np.sin(t / 5)), int(150 + 3 * t) % (h - 60)
        img[y:y + 60, x:x + 60] = patch
        frames.append(img)
    return frames


def gemm_rate(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Best float32 matmul rate (GFLOP/s) of an n x n x n product on `device` (the best: on a shared
    machine the median measures the neighbours)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        (a @ b).sum().item()
        if i:
            times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


class Runner:
    """One tracker (single or K lanes) around one model-like object; `run` times the tracked frames."""

    def __init__(self, model, cfg, k: int) -> None:
        self.k = k
        if k == 1:
            self.tracker = build_tracker(model, cfg)
        else:
            cfgs = []
            for lane in range(k):  # lanes differ in the searched hyper-parameters only
                c = cfg.clone()
                c.defrost()
                c.TRACK.PENALTY_K = float(cfg.TRACK.PENALTY_K) * (0.5 + lane / k)
                c.TRACK.WINDOW_INFLUENCE = 0.3 + 0.5 * lane / k
                c.TRACK.LR = 0.3 + 0.5 * lane / k
                cfgs.append(c)
            self.tracker = BatchSiamKPNTracker(model, cfgs)

    def init(self, img: np.ndarray, box) -> None:
        if self.k == 1:
            self.tracker.init(img, box)
        else:
            self.tracker.init_lanes(img, {lane: box for lane in range(self.k)})

    def step(self, img: np.ndarray) -> np.ndarray:
        if self.k == 1:
            return np.array([self.tracker.track(img)["bbox"]])
        out = self.tracker.track_lanes(img, range(self.k))
        return np.array([out[lane]["bbox"] for lane in range(self.k)])

    def run(self, frames: List[np.ndarray], box) -> tuple:
        """(seconds per tracked frame, boxes [frames, K, 4]); the init frame is not timed."""
        self.init(frames[0], box)
        boxes, start = [], time.perf_counter()
        for img in frames[1:]:
            boxes.append(self.step(img))
        return (time.perf_counter() - start) / (len(frames) - 1), np.stack(boxes)


def step_flops(runner: Runner, frames: List[np.ndarray], box) -> float:
    """FLOPs of one tracked frame (one batched step for K lanes)."""
    runner.init(frames[0], box)
    with FlopCounterMode(display=False) as counter:
        runner.step(frames[1])
    return float(counter.get_total_flops())


def bench_config(name: str, args, device: torch.device) -> List[Dict]:
    """Rows of the table for one config: every mode at every batch size."""
    path = Path(name) if name.endswith(".yaml") else ROOT / "experiments" / CONFIGS.get(name, name) / "config.yaml"
    cfg = load_cfg(str(path))
    box = [200.0, 150.0, 60.0, 60.0]
    model = calibrated_model(cfg, device, args.seed, synthetic_video(4, seed=args.seed), box)
    builders: Dict[str, Callable[[], torch.nn.Module]] = {
        "plain": lambda: PublishedPath(model),
        "eager": lambda: model,  # the current tracker on the ModelBuilder: inference_mode + cached kernels
        "exact": lambda: prepare_for_inference(model, device=device),
        "fast": lambda: prepare_for_inference(model, fast=True, device=device, compile=args.compile,
                                              fast_dtype=args.fast_dtype),
    }
    models = {mode: builders[mode]() for mode in args.modes}
    for mode in ("exact", "fast"):
        if mode in models and name == args.configs[0]:
            print(f"[{mode}]\n{describe(models[mode])}")
    rows = []
    for k in args.batch:
        n_frames = args.frames if k == 1 else args.batch_frames
        frames = synthetic_video(n_frames + 2, seed=args.seed)
        runners = {mode: Runner(m, cfg, k) for mode, m in models.items()}
        # the FLOP count doubles as the warm-up (oneDNN primitives, allocator, CUDA graphs)
        flops = {mode: step_flops(runner, frames, box) for mode, runner in runners.items()}
        times: Dict[str, List[float]] = {mode: [] for mode in runners}
        boxes: Dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for mode, runner in runners.items():  # interleaved, so load changes hit every mode alike
                sec, boxes[mode] = runner.run(frames[:n_frames + 1], box)
                times[mode].append(sec)
        base = statistics.median(times[args.modes[0]])
        for mode in runners:
            sec = statistics.median(times[mode])
            ref = boxes[args.modes[0]]
            rows.append({"config": Path(path).parent.name if name not in CONFIGS else f"SiamKPN-{name}", "K": k,
                         "mode": mode, "ms": sec * 1e3, "fps": 1 / sec, "ratio": base / sec,
                         "gflop": flops[mode] / 1e9,
                         "dbox": float(np.abs(boxes[mode] - ref).max()),
                         "spread": (max(times[mode]) - min(times[mode])) / sec})
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="3s", help="comma list of 1s,2s,3s (published configs) or config.yaml paths")
    p.add_argument("--frames", type=int, default=2, help="tracked frames per repeat at K=1")
    p.add_argument("--batch-frames", type=int, default=1, help="tracked frames per repeat at K>1")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; the median counts")
    p.add_argument("--batch", default="1", help="lanes K per tracker step, e.g. 1,8 (K=8: the hp-search tracker)")
    p.add_argument("--modes", default="plain,eager,exact,fast",
                   help="subset of plain,eager,exact,fast; the first is the baseline")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--compile", action="store_true", help="fast mode: torch.compile + CUDA graphs (CUDA only)")
    p.add_argument("--fast-dtype", choices=("auto", "bfloat16", "float16", "float32"), default="auto",
                   help="fast mode's dtype (auto: bf16 where native, else float32)")
    p.add_argument("--gemm-size", type=int, default=2048, help="n of the n x n x n reference matmul")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    args.batch = [int(b) for b in args.batch.split(",")]
    args.modes = [m for m in args.modes.split(",") if m]
    args.fast_dtype = None if args.fast_dtype == "auto" else getattr(torch, args.fast_dtype)
    unknown = set(args.modes) - {"plain", "eager", "exact", "fast"}
    if unknown:
        p.error(f"unknown modes {sorted(unknown)}")
    if min(args.frames, args.batch_frames, args.repeats, *args.batch) < 1:
        p.error("--frames, --batch-frames, --repeats and --batch must be positive")
    return args


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device available")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name() if device.type == "cuda" else \
        f"CPU {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, {os.cpu_count()} cores"
    load = " load avg %.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    gemm = gemm_rate(device, args.gemm_size)
    print(f"torch {torch.__version__}, {where},{load}; float32 GEMM {gemm:.0f} GFLOP/s "
          f"({args.gemm_size}^3, best of 5)")
    rows = []
    for name in args.configs:
        rows += bench_config(name, args, device)
    gemm_end = gemm_rate(device, args.gemm_size)
    gemm = max(gemm, gemm_end)
    for r in rows:
        r["gemm"] = r["gflop"] / (r["ms"] / 1e3) / gemm
    print(f"\n{'config':<14}{'K':>3} {'mode':<6}{'ms/step':>9}{'steps/s':>9}{'x plain':>8}{'GF/step':>9}"
          f"{'%GEMM':>7}{'dbox px':>9}{'spread':>8}")
    for r in rows:
        print(f"{r['config']:<14}{r['K']:>3} {r['mode']:<6}{r['ms']:>9.0f}{r['fps']:>9.3f}{r['ratio']:>8.2f}"
              f"{r['gflop']:>9.1f}{r['gemm'] * 100:>6.0f}%{r['dbox']:>9.1e}{r['spread'] * 100:>7.0f}%")
    print(f"(K lanes per step: lane-frames/s = K x steps/s; %GEMM of the best GEMM rate, {gemm:.0f} GFLOP/s; "
          f"spread = (max-min)/median of the {args.repeats} repeats; dbox = largest box difference from "
          f"'{args.modes[0]}' over all frames and lanes)")
    return rows


if __name__ == "__main__":
    main()
