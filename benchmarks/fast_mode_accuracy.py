"""Accuracy cost of the fast mode: success AUC / EAO of exact mode against fast mode on the same benchmarks.

Usage: python benchmarks/fast_mode_accuracy.py --config CFG --snapshot W.pth [--data DIR]
                                               [--fast-dtype auto|bfloat16|float16] [--device cpu|cuda]

Typically on the quick start's trained model and held-out synthetic benchmarks:
    python benchmarks/fast_mode_accuracy.py --config experiments/siamkpn_quickstart/config.yaml \
        --snapshot quickstart_output/snapshots/checkpoint_e6.pth --data quickstart_output/data/test
`--data` holds `OTB100/` and/or `VOT2018/` (pysot json or native layout); without it a small synthetic pair
is generated in a temporary folder. `auto` is what TRACK.FAST picks on this device (float32 on a CPU
without native bf16, where fast == exact); `bfloat16` forces it (slow on such CPUs, but it measures the
accuracy a bf16 machine would get). Prints one row per metric: exact, fast, |difference|, and whether it is
within the 0.005 budget, plus each mode's frames/s.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siamkpn.config import load_cfg  # noqa: E402
from siamkpn.models.checkpoint import load_checkpoint  # noqa: E402
from siamkpn.models.inference import describe, prepare_for_inference  # noqa: E402
from siamkpn.models.model_builder import ModelBuilder  # noqa: E402
from siamkpn.tracker import build_tracker  # noqa: E402
from toolkit import protocols, results  # noqa: E402
from toolkit.datasets import DatasetFactory  # noqa: E402
from toolkit.evaluation.runner import evaluate  # noqa: E402

BUDGET = 0.005
HEADLINE = {"ope": "success_auc", "vot": "eao"}
DTYPES = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--snapshot", required=True)
    p.add_argument("--data", default=None, help="folder with OTB100/ and/or VOT2018/ (default: generate a small one)")
    p.add_argument("--fast-dtype", choices=sorted(DTYPES), default="auto")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--videos", type=int, default=3, help="videos per generated benchmark (without --data)")
    return p.parse_args(argv)


def generated_benchmarks(folder: Path, videos: int) -> Path:
    """Held-out synthetic OTB100 / VOT2018-style sets (VOT videos long enough for the EAO interval)."""
    for part, frames in (("otb", 60), ("vot", 110)):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_synthetic.py"), "--out", str(folder),
                        "--seed", "1", "--parts", part, "--test-videos", str(videos), "--test-frames", str(frames)],
                       check=True, stdout=subprocess.DEVNULL)
    return folder / "test"


def track_and_score(model, cfg, bench_root: Path, name: str, tracker_name: str, out: Path
                    ) -> Tuple[Dict[str, float], float]:
    """(metrics, frames/s) of `model` on one benchmark, results written under `out` in pysot's layout."""
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
    return evaluate(dataset, [tracker_name], progress=False)[tracker_name]["metrics"], frames / seconds


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_cfg(args.config)
    model = ModelBuilder(cfg)
    load_checkpoint(model, args.snapshot)
    model.eval()
    modes = {"exact": prepare_for_inference(model, device=args.device),
             "fast": prepare_for_inference(model, fast=True, device=args.device, fast_dtype=DTYPES[args.fast_dtype])}
    print("fast mode here:", describe(modes["fast"]).replace("\n", "; "))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else generated_benchmarks(Path(tmp) / "data", args.videos)
        names = [n for n in ("OTB100", "VOT2018") if (data / n).is_dir()]
        if not names:
            raise SystemExit(f"{data} holds neither OTB100/ nor VOT2018/")
        worst: Optional[float] = None
        print(f"\n{'benchmark':10s} {'metric':15s} {'exact':>8s} {'fast':>8s} {'|diff|':>8s}  within {BUDGET}")
        for name in names:
            scored = {mode: track_and_score(m, cfg, data / name, name, mode, Path(tmp) / "results")
                      for mode, m in modes.items()}
            for metric, exact in scored["exact"][0].items():
                fast = scored["fast"][0][metric]
                diff = abs(fast - exact)
                headline = metric == HEADLINE[results.result_kind(name)]
                if headline:
                    worst = diff if worst is None else max(worst, diff)
                mark = ("yes" if diff <= BUDGET else "NO") if headline else ""
                print(f"{name:10s} {metric:15s} {exact:8.4f} {fast:8.4f} {diff:8.4f}  {mark}")
            print(f"{name:10s} {'frames/s':15s} {scored['exact'][1]:8.2f} {scored['fast'][1]:8.2f}")
    print(f"\nlargest headline difference (success AUC / EAO): {worst:.4f} (budget {BUDGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
