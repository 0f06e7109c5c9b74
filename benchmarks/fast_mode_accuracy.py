"""Accuracy cost of every fast path: success AUC / EAO of each against exact mode on the same benchmarks.

Usage: python benchmarks/fast_mode_accuracy.py --config CFG --snapshot W.pth [--data DIR | --videos N]
           [--paths fast,bf16,bf16_all,onnx,onnx_int8] [--onnx-dir DIR] [--calib TRAIN_ROOT] [--device cpu|cuda]

Typically on the quick start's trained model, on held-out synthetic benchmarks large enough that a 0.005
difference is resolvable (default: 20 OTB-style videos x 100 frames and 12 VOT-style videos x 140 frames,
generated with seed 1; the quick start trains on seed 0):
    python benchmarks/fast_mode_accuracy.py --config experiments/siamkpn_quickstart/config.yaml \
        --snapshot quickstart_output/snapshots/checkpoint_e1.pth --calib quickstart_output/data/train
Paths (exact is always the baseline):
  fast      what TRACK.FAST picks here (`siamkpn.load_tracker`, torch backend): bf16 where native, else exact
  bf16      forced bf16 backbone and neck, correlations and heads float32 (fast_scope "backbone")
  bf16_all  forced bf16 everywhere but the output layer (fast_scope "all", TRACK.FAST's choice)
  fp16      forced float16 backbone and neck
  onnx      ONNX Runtime, float32 graphs;  onnx_int8  ONNX Runtime, int8 track graph
The onnx paths use `--onnx-dir` when it holds an export, else export there (int8 calibrated on `--calib`,
a crop511 training set, never the benchmark). Prints one row per benchmark and path: the headline metric,
|difference| from exact, within the 0.005 budget or not, and frames/s (paths run one after another, so
load changes hit them unequally: benchmarks/track_speed.py measures speed); emulated bf16 on a CPU without
it is slow but measures what a bf16 machine would get.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siamkpn.api import load_tracker  # noqa: E402
from siamkpn.config import load_cfg  # noqa: E402
from siamkpn.models.checkpoint import load_checkpoint  # noqa: E402
from siamkpn.models.inference import describe, prepare_for_inference  # noqa: E402
from siamkpn.models.model_builder import ModelBuilder  # noqa: E402
from siamkpn.tracker import build_tracker  # noqa: E402
from siamkpn.utils.device import capability_line  # noqa: E402
from toolkit import protocols, results  # noqa: E402
from toolkit.datasets import DatasetFactory  # noqa: E402
from toolkit.evaluation.eao import EAOBenchmark  # noqa: E402
from toolkit.evaluation.ope import OPEBenchmark  # noqa: E402
from toolkit.evaluation.runner import evaluate  # noqa: E402

BUDGET = 0.005
HEADLINE = {"ope": "success_auc", "vot": "eao"}
PATHS = ("fast", "bf16", "bf16_all", "fp16", "onnx", "onnx_int8")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--snapshot", required=True)
    p.add_argument("--data", default=None, help="folder with OTB100/ and/or VOT2018/ (default: generate them)")
    p.add_argument("--paths", default="fast,bf16,bf16_all,onnx,onnx_int8", help=f"comma list of {','.join(PATHS)}")
    p.add_argument("--onnx-dir", default=None, help="ONNX export folder (used if present, else written)")
    p.add_argument("--calib", default=None, help="crop511 training set for the int8 calibration")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch / ONNX Runtime threads (0: torch's default)")
    p.add_argument("--videos", type=int, default=20, help="OTB-style videos generated without --data")
    p.add_argument("--vot-videos", type=int, default=12, help="VOT-style videos generated without --data")
    args = p.parse_args(argv)
    args.paths = [x for x in args.paths.split(",") if x]
    unknown = set(args.paths) - set(PATHS)
    if unknown:
        p.error(f"unknown paths {sorted(unknown)}; choose from {', '.join(PATHS)}")
    if "onnx_int8" in args.paths and not args.calib and not (args.onnx_dir and os.path.isdir(args.onnx_dir)):
        p.error("onnx_int8 needs --calib TRAIN_ROOT (or an --onnx-dir that already holds an int8 export)")
    return args


def generated_benchmarks(folder: Path, otb_videos: int, vot_videos: int) -> Path:
    """Held-out synthetic OTB100 / VOT2018-style sets (seed 1; VOT videos long enough for the EAO interval)."""
    for part, videos, frames in (("otb", otb_videos, 100), ("vot", vot_videos, 140)):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_synthetic.py"), "--out", str(folder),
                        "--seed", "1", "--parts", part, "--test-videos", str(videos), "--test-frames", str(frames)],
                       check=True, stdout=subprocess.DEVNULL)
    return folder / "test"


def track_and_score(model, cfg, bench_root: Path, name: str, tracker_name: str, out: Path):
    """(metrics, frames/s, the dataset with this tracker's results set) of `model` on one benchmark, results
    written under `out` in pysot's layout."""
    dataset = DatasetFactory.create_dataset(name, str(bench_root), load_img=False)
    kind = results.result_kind(name)
    tracker, frames, seconds = build_tracker(model, cfg), 0, 0.0
    for video in dataset:
        start = time.perf_counter()
        res = protocols.run_protocol(tracker, video, kind)
        seconds += time.perf_counter() - start
        frames += len(video)
        results.write_video_result(out, name, tracker_name, video.name, res.boxes, scores=res.scores,
                                   times=res.times, kind=kind)
    dataset.set_tracker(str(out / name), [tracker_name])
    return evaluate(dataset, [tracker_name], progress=False)[tracker_name]["metrics"], frames / seconds, dataset


def paired_error(per_video: Dict[str, float], exact: Dict[str, float]) -> float:
    """Standard error of the mean per-video difference from exact (paired over the same videos; NaN if < 2).

    A difference is resolvable against the 0.005 budget only when this is well below it: a small perturbation
    moves the frame where a video's target is lost or re-initialised, so per-video differences can be large."""
    diffs = np.array([per_video[v] - exact[v] for v in exact if v in per_video])
    return float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")


def jackknife_error(statistic: Callable[[List[str]], float], videos: List[str]) -> float:
    """Leave-one-video-out jackknife standard error of `statistic(videos)` (NaN below 2 videos); for a mean over
    videos it equals the usual standard error, and it also covers pooled figures such as EAO."""
    return jackknife_spread([statistic(videos[:i] + videos[i + 1:]) for i in range(len(videos))])


def jackknife_spread(leave_one_out: Sequence[float]) -> float:
    """The jackknife standard error from a statistic's leave-one-out values (NaN below 2)."""
    values, n = np.asarray(leave_one_out, np.float64), len(leave_one_out)
    return float(np.sqrt((n - 1) / n * ((values - values.mean()) ** 2).sum())) if n > 1 else float("nan")


def per_video_statistics(dataset, tracker: str) -> Dict[str, float]:
    """What the standard error is built from, per video: its success AUC (OTB-style), or the EAO of every video but
    it (VOT-style: EAO pools its videos, so the jackknife's leave-one-out values)."""
    videos = [video.name for video in dataset]
    if results.result_kind(dataset.name) == "ope":
        return {v: float(c["success"].mean()) for v, c in OPEBenchmark(dataset).eval_curves(tracker).items()}
    if len(videos) < 2:  # no leave-one-out set to score
        return {}
    eao = EAOBenchmark(dataset)
    return {v: eao.eval_curves(tracker, videos[:i] + videos[i + 1:])["all"]["eao"] for i, v in enumerate(videos)}


def difference_error(dataset, path: str, exact: Dict[str, float]) -> float:
    """Standard error over videos of `path`'s headline difference from exact, paired on the same videos; `exact`
    is `per_video_statistics(dataset, "exact")`, computed once per benchmark."""
    mine = per_video_statistics(dataset, path)
    if results.result_kind(dataset.name) == "ope":
        return paired_error(mine, exact)
    return jackknife_spread([mine[v] - exact[v] for v in exact])


def onnx_folder(args, model, cfg, tmp: str) -> str:
    """An export folder for the onnx paths: `--onnx-dir` when it holds one, else a fresh export (there or in tmp)."""
    from siamkpn.datasets.calibration import calibration_pairs, check_pairs
    from siamkpn.models.onnx_export import export_onnx
    from siamkpn.models.onnx_folder import SETTINGS_FILE

    folder = args.onnx_dir or os.path.join(tmp, "onnx")
    if os.path.isfile(os.path.join(folder, SETTINGS_FILE)):
        return folder
    print(f"exporting to {folder} ...", flush=True)
    exemplar, instance = int(cfg.TRACK.EXEMPLAR_SIZE), int(cfg.TRACK.INSTANCE_SIZE)
    check, check_crops = check_pairs(args.calib, exemplar, instance)
    calibration = (calibration_pairs(args.calib, exemplar, instance, 128) if "onnx_int8" in args.paths
                   else None)
    export_onnx(model, cfg, folder, check, check_crops, calibration=calibration, calib_root=args.calib)
    return folder


def build_paths(args, cfg, model, tmp: str) -> Dict[str, torch.nn.Module]:
    """The exact model and every requested fast path, by name."""
    device = args.device
    out: Dict[str, torch.nn.Module] = {"exact": prepare_for_inference(model, device=device)}
    for path in args.paths:
        if path == "fast":
            out[path] = load_tracker(cfg, args.snapshot, device, fast=True).model
        elif path in ("bf16", "bf16_all", "fp16"):
            dtype = torch.float16 if path == "fp16" else torch.bfloat16
            out[path] = prepare_for_inference(model, fast=True, device=device, fast_dtype=dtype,
                                              fast_scope="all" if path == "bf16_all" else "backbone")
        else:
            from siamkpn.models.onnx_runtime import OnnxInferenceModel

            out[path] = OnnxInferenceModel(onnx_folder(args, model, cfg, tmp), cfg, int8=path == "onnx_int8")
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_cfg(args.config)
    model = ModelBuilder(cfg)
    load_checkpoint(model, args.snapshot)
    model.eval()
    print(capability_line())
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_paths(args, cfg, model, tmp)
        for name, m in paths.items():
            print(f"[{name}] " + describe(m).replace("\n", "; "))
        data = Path(args.data) if args.data else generated_benchmarks(Path(tmp) / "data", args.videos,
                                                                      args.vot_videos)
        names = [n for n in ("OTB100", "VOT2018") if (data / n).is_dir()]
        if not names:
            raise SystemExit(f"{data} holds neither OTB100/ nor VOT2018/")
        worst: Dict[str, float] = {}
        rows = []
        for name in names:
            scored = {path: track_and_score(m, cfg, data / name, name, path, Path(tmp) / "results")
                      for path, m in paths.items()}
            metric = HEADLINE[results.result_kind(name)]
            videos = len(DatasetFactory.create_dataset(name, str(data / name), load_img=False).videos)
            dataset = scored["exact"][2]
            dataset.set_tracker(str(Path(tmp) / "results" / name), list(paths))
            exact_stats = per_video_statistics(dataset, "exact")
            for path, (metrics, fps, _) in scored.items():
                diff = abs(metrics[metric] - scored["exact"][0][metric])
                if path != "exact":
                    worst[path] = max(worst.get(path, 0.0), diff)
                se = difference_error(dataset, path, exact_stats) if path != "exact" else float("nan")
                rows.append((name, videos, path, metric, metrics[metric], diff, se, fps, fps / scored["exact"][1]))
        print(f"\n{'benchmark':10s} {'videos':>6s} {'path':10s} {'metric':12s} {'value':>8s} {'|diff|':>8s} "
              f"{'+-SE':>7s} {'budget':>6s} {'frames/s':>9s} {'x exact':>8s}")
        for name, videos, path, metric, value, diff, se, fps, ratio in rows:
            ok = "" if path == "exact" else ("yes" if diff <= BUDGET else "NO")
            se_text = "" if np.isnan(se) else f"{se:.4f}"
            print(f"{name:10s} {videos:6d} {path:10s} {metric:12s} {value:8.4f} {diff:8.4f} {se_text:>7s} {ok:>6s} "
                  f"{fps:9.2f} {ratio:8.2f}")
    line: Optional[str] = ", ".join(f"{p} {d:.4f}" for p, d in worst.items())
    print(f"\nlargest headline difference from exact (success AUC / EAO): {line} (budget {BUDGET}); +-SE: standard "
          f"error over videos of the difference (paired: per-video AUC; EAO: leave-one-video-out jackknife), so a "
          f"difference well inside it is not resolved by these videos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
