"""Tracker frames/s of every inference path, through the real tracker, side by side in one run.

Usage: python benchmarks/track_speed.py [--configs 3s] [--frames 2] [--repeats 3] [--batch 1] [--threads N]
           [--device cpu|cuda] [--compile] [--fast-dtype auto|bfloat16|float16]
           [--modes plain,eager,exact,fast,bf16,onnx,onnx_int8] [--onnx-dir DIR] [--calib TRAIN_ROOT]
           [--published PATH_TO_PUBLISHED_CHECKOUT]
The default (SiamKPN-3s, K=1) takes a few minutes on 2 busy cores (the first ONNX export of the R50 model
about 5 more; `--onnx-dir` keeps it for the next run); the full table is `--configs 1s,2s,3s --batch 1,8`.
Modes: plain = the published path (grad on, template side every frame, all stages); eager = this repo's
tracker on the ModelBuilder; exact / fast = `prepare_for_inference(model)` / `(model, fast=True)` (fast: what
TRACK.FAST picks on this machine); bf16 / bf16_all = forced bf16 in the backbone and neck / everywhere but
the output layer (`fast_scope`); onnx / onnx_int8 = ONNX Runtime on the exported float32 / int8 graphs
(int8 calibrated on `--calib`, a crop511 training set, else on crops of the benchmark's own synthetic
video: fine for speed, never for accuracy); published = the published tracker itself (`--published` names
its checkout; the `pysot` package there), the same weights.
Random weights; BatchNorm statistics measured on crops of the synthetic video, so activations keep unit scale.
Per mode: frames/s (median over repeats; modes interleaved so load changes hit all alike), ratio to the first
mode, FLOPs per step (FlopCounterMode), the share of the float32 convolution ceiling, and the largest box
difference from the first mode. The ceiling is measured here, not assumed: each convolution of the exact
model run alone at its own shape, best of 3; its sum is the time one frame's float32 convolutions need at
this machine's own rates for those shapes. Every figure comes with the CPU capability line. K > 1 runs
`BatchSiamKPNTracker` with K hyper-parameter lanes (one batched forward).
Narrower CPUs can be emulated for the torch rows: `ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2` (or
AVX512_CORE / avx512 for AVX512 without BF16 and VNNI) caps oneDNN's and torch's own kernels, and the capability
line and fast mode follow the cap. ONNX Runtime has no such cap (MLAS picks kernels from cpuid), so its rows
still use the whole CPU: they are marked, not comparable.
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
from siamkpn.utils.device import capability_line, onednn_isa_cap  # noqa: E402

CONFIGS = {"1s": "siamkpn_r50_stack1", "2s": "siamkpn_r50_stack2_difstd", "3s": "siamkpn_r50_stack3_difstd"}
MODES = ("plain", "eager", "exact", "fast", "bf16", "bf16_all", "onnx", "onnx_int8", "published")


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


def conv_ceiling(model, cfg, frames: List[np.ndarray], box, repeats: int = 3) -> tuple:
    """(seconds, FLOPs) of one tracked frame's convolution modules run alone at their own shapes (best of
    `repeats` each): what the float32 convolutions of `model` need per frame at this machine's own rates."""
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp[0].shape, out.numel())))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    runner = Runner(model, cfg, 1)
    runner.init(frames[0], box)
    seen.clear()  # only the tracked frame's convolutions
    runner.step(frames[1])
    for hook in hooks:
        hook.remove()
    total, flops = 0.0, 0.0
    with torch.inference_mode():
        for conv, shape, out_numel in seen:
            x = torch.randn(shape, dtype=conv.weight.dtype, device=conv.weight.device)
            best = float("inf")
            for _ in range(repeats + 1):
                sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
                sync()
                start = time.perf_counter()
                conv(x)
                sync()  # CUDA kernels run asynchronously: time them to their end
                best = min(best, time.perf_counter() - start)
            total += best
            kh, kw = conv.kernel_size
            flops += 2.0 * out_numel * conv.in_channels / conv.groups * kh * kw
    return total, flops


class PublishedTracker:
    """The published tracker (`pysot` package of the published checkout at `path`) on the same weights."""

    def __init__(self, path: str, config: str, model: torch.nn.Module, device: torch.device) -> None:
        sys.path.insert(0, os.path.abspath(path))
        from pysot.core.config import cfg as published_cfg
        from pysot.models.model_builder import ModelBuilder as PublishedModel
        from pysot.tracker.tracker_builder import build_tracker as published_tracker

        published_cfg.merge_from_file(config)
        published_cfg.CUDA = device.type == "cuda"  # its default is True: crops would go to a GPU that may not exist
        net = PublishedModel()
        net.load_state_dict(model.state_dict(), strict=True)
        net.eval()
        for name, param in net.named_parameters():  # as the published tools/test.py does
            param.requires_grad = "kpn2.heatmap.head" in name
        self.tracker = published_tracker(net)

    def init(self, img, box) -> None:
        self.tracker.init(img, box)

    def track(self, img):
        return self.tracker.track(img)


class Runner:
    """One tracker (single or K lanes) around one model-like object; `run` times the tracked frames."""

    def __init__(self, model, cfg, k: int) -> None:
        self.k = k
        if isinstance(model, PublishedTracker):
            if k != 1:
                raise SystemExit("--modes published runs K=1 only (the published tracker has no lanes)")
            self.tracker = model
        elif k == 1:
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


def onnx_export_folder(args, model, cfg, cfg_path: Path, frames: List[np.ndarray], box) -> str:
    """An export of `model` for the onnx modes: reused from --onnx-dir when it was made from the same source."""
    import json

    from siamkpn.datasets.calibration import calibration_pairs, check_pairs
    from siamkpn.models.onnx_export import export_onnx
    from siamkpn.models.onnx_folder import SETTINGS_FILE

    source = {"benchmark": "track_speed", "config": str(cfg_path), "seed": args.seed,
              "calib": os.path.abspath(args.calib) if args.calib else "own synthetic video"}
    cache = os.path.join(os.path.expanduser("~"), ".cache", "siamkpn", "track_speed_onnx")  # outside the checkout
    folder = os.path.join(args.onnx_dir or cache, cfg_path.parent.name)
    settings = os.path.join(folder, SETTINGS_FILE)
    int8 = "onnx_int8" in args.modes
    if os.path.isfile(settings):
        with open(settings, encoding="utf-8") as f:
            recorded = json.load(f)
        if recorded.get("source") == source and (not int8 or recorded.get("int8")):
            return folder
    calib = args.calib
    if int8 and not calib:  # speed only: crops of the timed video itself (never do this for accuracy)
        from siamkpn.tracker.subwindow import get_subwindow

        calib = os.path.join(folder + "_calib", "crop511", "video")
        os.makedirs(calib, exist_ok=True)
        s_z = float(np.sqrt((box[2] + sum(box[2:]) / 2) * (box[3] + sum(box[2:]) / 2)))
        centre = np.array([box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2])
        for t, img in enumerate(frames):
            crop = get_subwindow(img, centre, 511, round(s_z * 511 / 127), img.mean(axis=(0, 1)))
            import cv2

            cv2.imwrite(os.path.join(calib, f"{t:06d}.00.x.jpg"), crop)
        calib = os.path.dirname(os.path.dirname(calib))
    print(f"exporting {cfg_path.parent.name} to {folder} (int8: {int8}) ...", flush=True)
    # speed only: random weights quantise badly (R50 3-stage: ~90% of the heat map's range off), so no int8 gate
    exemplar, instance = int(cfg.TRACK.EXEMPLAR_SIZE), int(cfg.TRACK.INSTANCE_SIZE)
    check, check_crops = check_pairs(calib, exemplar, instance)
    calibration = calibration_pairs(calib, exemplar, instance, 16) if int8 else None
    result = export_onnx(model, cfg, folder, check, check_crops, calibration=calibration, calib_root=calib,
                         source=source, int8_tolerance=float("inf"))
    print(f"largest relative differences from PyTorch: {result.errors}")
    return folder


def build_modes(args, name: str, cfg, cfg_path: Path, model, device: torch.device, frames, box) -> Dict:
    """Every requested mode's model-like object (or the published tracker), by name."""
    builders: Dict[str, Callable[[], object]] = {
        "plain": lambda: PublishedPath(model),
        "eager": lambda: model,  # the current tracker on the ModelBuilder: inference_mode + cached kernels
        "exact": lambda: prepare_for_inference(model, device=device),
        "fast": lambda: prepare_for_inference(model, fast=True, device=device, compile=args.compile,
                                              fast_dtype=args.fast_dtype),
        "bf16": lambda: prepare_for_inference(model, fast=True, device=device, fast_dtype=torch.bfloat16,
                                              fast_scope="backbone"),
        "bf16_all": lambda: prepare_for_inference(model, fast=True, device=device, fast_dtype=torch.bfloat16,
                                                  fast_scope="all"),
        "published": lambda: PublishedTracker(args.published, str(cfg_path), model, device),
    }
    models = {}
    for mode in args.modes:
        if mode in ("onnx", "onnx_int8"):
            from siamkpn.models.onnx_runtime import OnnxInferenceModel

            folder = onnx_export_folder(args, model, cfg, cfg_path, frames, box)
            models[mode] = OnnxInferenceModel(folder, cfg, int8=mode == "onnx_int8")
        else:
            models[mode] = builders[mode]()
        if name == args.configs[0] and hasattr(models[mode], "applied"):
            print(f"[{mode}]\n{describe(models[mode])}")
    return models


def bench_config(name: str, args, device: torch.device) -> List[Dict]:
    """Rows of the table for one config: every mode at every batch size."""
    path = Path(name) if name.endswith(".yaml") else ROOT / "experiments" / CONFIGS.get(name, name) / "config.yaml"
    cfg = load_cfg(str(path))
    box = [200.0, 150.0, 60.0, 60.0]
    model = calibrated_model(cfg, device, args.seed, synthetic_video(4, seed=args.seed), box)
    label = Path(path).parent.name if name not in CONFIGS else f"SiamKPN-{name}"
    models = build_modes(args, name, cfg, path, model, device, synthetic_video(8, seed=args.seed), box)
    ceiling = conv_ceiling(prepare_for_inference(model, device=device), cfg, synthetic_video(2, seed=args.seed),
                           box)
    print(f"{label}: float32 convolution ceiling {ceiling[0] * 1e3:.0f} ms/frame = {1 / ceiling[0]:.2f} frames/s "
          f"({ceiling[1] / 1e9:.1f} GFLOP in the exact model's convolutions at {ceiling[1] / ceiling[0] / 1e9:.0f} "
          f"GFLOP/s, each alone at its own shape) -- {capability_line()}")
    rows = []
    for k in args.batch:
        n_frames = args.frames if k == 1 else args.batch_frames
        frames = synthetic_video(n_frames + 2, seed=args.seed)
        runners = {mode: Runner(m, cfg, k) for mode, m in models.items() if k == 1 or mode != "published"}
        # the FLOP count doubles as the warm-up (oneDNN primitives, allocator, ONNX Runtime, CUDA graphs)
        flops = {mode: step_flops(runner, frames, box) for mode, runner in runners.items()}
        for mode in runners:  # ONNX Runtime runs outside torch's FLOP counter: the same graph as exact
            if mode.startswith("onnx") and "exact" in flops:
                flops[mode] = flops["exact"]
        times: Dict[str, List[float]] = {mode: [] for mode in runners}
        boxes: Dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for mode, runner in runners.items():  # interleaved, so load changes hit every mode alike
                sec, boxes[mode] = runner.run(frames[:n_frames + 1], box)
                times[mode].append(sec)
        first = next(iter(runners))
        base = statistics.median(times[first])
        for mode in runners:
            sec = statistics.median(times[mode])
            rows.append({"config": label, "K": k, "mode": mode, "ms": sec * 1e3, "fps": 1 / sec, "ratio": base / sec,
                         "gflop": flops[mode] / 1e9, "ceiling": ceiling[0] * k / sec,
                         "dbox": float(np.abs(boxes[mode] - boxes[first]).max()),
                         "spread": (max(times[mode]) - min(times[mode])) / sec, "baseline": first})
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="3s", help="comma list of 1s,2s,3s (published configs) or config.yaml paths")
    p.add_argument("--frames", type=int, default=2, help="tracked frames per repeat at K=1")
    p.add_argument("--batch-frames", type=int, default=1, help="tracked frames per repeat at K>1")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; the median counts")
    p.add_argument("--batch", default="1", help="lanes K per tracker step, e.g. 1,8 (K=8: the hp-search tracker)")
    p.add_argument("--modes", default="plain,eager,exact,fast",
                   help=f"subset of {','.join(MODES)}; the first is the baseline")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch / ONNX Runtime intra-op threads (0: torch's default)")
    p.add_argument("--compile", action="store_true", help="fast mode: torch.compile + CUDA graphs (CUDA only)")
    p.add_argument("--fast-dtype", choices=("auto", "bfloat16", "float16", "float32"), default="auto",
                   help="fast mode's dtype (auto: bf16 where native, else float32)")
    p.add_argument("--onnx-dir", default=None,
                   help="where the onnx modes' exports are kept (default ~/.cache/siamkpn/track_speed_onnx)")
    p.add_argument("--calib", default=None, help="crop511 training set for the int8 calibration")
    p.add_argument("--published", default=None, help="checkout of the published SiamKPN code (for --modes published)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    args.batch = [int(b) for b in args.batch.split(",")]
    args.modes = [m for m in args.modes.split(",") if m]
    if args.published and "published" not in args.modes:
        args.modes.insert(0, "published")  # the published tracker is then the baseline
    args.fast_dtype = None if args.fast_dtype == "auto" else getattr(torch, args.fast_dtype)
    unknown = set(args.modes) - set(MODES)
    if unknown:
        p.error(f"unknown modes {sorted(unknown)}")
    if "published" in args.modes and not args.published:
        p.error("mode 'published' needs --published PATH (a checkout of the published code)")
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
    where = torch.cuda.get_device_name() if device.type == "cuda" else capability_line()
    load = "; load avg %.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    print(f"torch {torch.__version__}, {where}{load}")
    if onednn_isa_cap() and any(m.startswith("onnx") for m in args.modes):
        print(f"note: oneDNN is capped at {onednn_isa_cap()} (ONEDNN_MAX_CPU_ISA) but ONNX Runtime cannot be: "
              f"its rows run on the whole CPU and are not figures for a {onednn_isa_cap()} machine")
    rows = []
    for name in args.configs:
        rows += bench_config(name, args, device)
    print(f"\n{capability_line()}")
    print(f"{'config':<14}{'K':>3} {'mode':<10}{'ms/step':>9}{'steps/s':>9}{'x base':>8}{'GF/step':>9}"
          f"{'%ceil':>7}{'dbox px':>9}{'spread':>8}")
    for r in rows:
        print(f"{r['config']:<14}{r['K']:>3} {r['mode']:<10}{r['ms']:>9.0f}{r['fps']:>9.3f}{r['ratio']:>8.2f}"
              f"{r['gflop']:>9.1f}{r['ceiling'] * 100:>6.0f}%{r['dbox']:>9.1e}{r['spread'] * 100:>7.0f}%")
    print(f"(base = '{rows[0]['baseline']}'; K lanes per step: lane-frames/s = K x steps/s; %ceil = the float32 "
          f"convolution ceiling's time / this mode's (over 100%: faster than float32 convolutions can be here); "
          f"spread = (max-min)/median of the {args.repeats} repeats; dbox = largest box difference from the base "
          f"over all frames and lanes; ONNX rows count the exact graph's FLOPs)")
    return rows


if __name__ == "__main__":
    main()
