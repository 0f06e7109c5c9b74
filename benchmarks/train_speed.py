"""Training throughput: the data pipeline against the train step, and what AMP / channels-last buy.

    python benchmarks/train_speed.py [--data-root DIR] [--batches N] [--batch-size B]
                                     [--config CFG] [--step-batch-sizes 2,8] [--steps N] [--device cpu|cuda]
                                     [--variants fp32,channels_last,amp,amp+channels_last]

- data pipeline: TrainingSet + DataLoader on synthetic data (crop511 reading, augmentation, labels),
  samples/s with 0 and 2 worker processes;
- train step: samples/s of `Trainer._step` (forward, losses, backward, clipping, optimizer) of CFG
  (default the quick-start config; `experiments/siamkpn_r50_stack3_difstd/config.yaml` for the published
  one) on pre-loaded batches, per batch size and variant (TRAIN.AMP bf16 autocast, TRAIN.CHANNELS_LAST),
  with the ratio to fp32 at the same batch size and the peak memory: CUDA's max_memory_allocated, or on
  CPU the process's peak RSS so far (batch sizes run in increasing order, so it grows with them).
The step outpaces the pipeline when the data loader is the bottleneck: compare the two figures.
Without --data-root a small synthetic training set is generated in a temporary folder first (not timed).
AMP on a CPU without native bf16 is emulated and slow; the default variants there are fp32 and
channels_last (name the others to measure them anyway).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Optional, Tuple

try:
    import siamkpn  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import itertools
import resource

import torch
from torch.utils.data import DataLoader

from siamkpn.config import get_cfg, load_cfg
from siamkpn.datasets.synthetic_sets import write_train_set
from siamkpn.datasets.training_set import TrainingSet, before_worker_fork, worker_init_fn
from siamkpn.engine.distributed import DistInfo
from siamkpn.engine.trainer import Trainer
from siamkpn.models.model_builder import ModelBuilder
from siamkpn.utils.device import cpu_has_native_bf16

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO, "experiments", "siamkpn_quickstart", "config.yaml")
VARIANTS = {"fp32": (False, False), "channels_last": (False, True), "amp": (True, False),
            "amp+channels_last": (True, True)}


def make_train_data(out_dir: str, videos: int = 8, frames: int = 20) -> str:
    """Write a small synthetic training set into `out_dir`; returns the data root for `--data-root`."""
    write_train_set(out_dir, seed=0, num_videos=videos, num_frames=frames, progress=False)
    return out_dir


def synthetic_cfg(samples: int):
    """Default config reading the synthetic set (DATASET.NAMES ['SYNTH']) with `samples` samples."""
    cfg = get_cfg()
    cfg.DATASET.NAMES = ["SYNTH"]
    cfg.DATASET.VIDEOS_PER_EPOCH = samples
    cfg.TRAIN.EPOCH = 1
    return cfg


def data_pipeline_speed(data_root: str, num_workers: int, batch_size: int = 16, num_batches: int = 10,
                        cfg=None) -> float:
    """Samples/s delivered by TrainingSet + DataLoader (the first batch, worker start-up, is not timed)."""
    cfg = cfg or synthetic_cfg(batch_size * (num_batches + 1))
    dataset = TrainingSet(cfg, data_root=data_root, seed=0)
    if num_workers:
        before_worker_fork()
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, worker_init_fn=worker_init_fn)
    batches = iter(loader)
    next(batches)
    start, count = time.perf_counter(), 0
    for batch in batches:
        count += batch["search"].shape[0]
    return count / (time.perf_counter() - start)


def peak_memory(device: torch.device) -> float:
    """MiB: CUDA's peak allocation since the last reset, or this process's peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def train_step_speed(config: str, data_root: str, device: str, batch_size: int, steps: int, amp: bool = False,
                     channels_last: bool = False, snapshot_dir: str = "") -> Tuple[float, float]:
    """(samples/s, peak MiB) of Trainer._step for `config` on the synthetic set; batches are pre-loaded."""
    opts = ["DATASET.NAMES", "['SYNTH']", "DATASET.VIDEOS_PER_EPOCH", str(batch_size * (steps + 1)),
            "TRAIN.BATCH_SIZE", str(batch_size), "TRAIN.NUM_WORKERS", "0", "TRAIN.AMP", str(amp),
            "TRAIN.CHANNELS_LAST", str(channels_last), "TRAIN.SNAPSHOT_DIR", snapshot_dir]
    cfg = load_cfg(config, opts)
    torch.manual_seed(cfg.TRAIN.SEED)
    dev = torch.device(device)
    trainer = Trainer(cfg, ModelBuilder(cfg), TrainingSet(cfg, data_root=data_root, seed=0),
                      DistInfo(device=dev), progress=False)
    # every backbone layer trainable (the costly case, as after BACKBONE.TRAIN_EPOCH)
    trainer._prepare_epoch(max(cfg.BACKBONE.TRAIN_EPOCH, 0))
    batches = [trainer._to_device(b) for b in itertools.islice(trainer.loader, steps + 1)]
    trainer._step(batches[0])  # warm-up (allocator, cuDNN algorithm choice)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for batch in batches[1:]:
        trainer._step(batch)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return batch_size * (len(batches) - 1) / (time.perf_counter() - start), peak_memory(dev)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help="a synthetic training set (make_synthetic.py DIR/train)")
    parser.add_argument("--batches", type=int, default=10, help="timed batches per measurement")
    parser.add_argument("--batch-size", type=int, default=16, help="data-pipeline batch size")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config of the timed train step")
    parser.add_argument("--step-batch-sizes", default="2,8", help="comma-separated train-step batch sizes")
    parser.add_argument("--steps", type=int, default=3, help="timed train steps per measurement")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--variants", default=None, help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--skip-pipeline", action="store_true", help="train step only")
    args = parser.parse_args(argv)
    bf16 = args.device == "cuda" or cpu_has_native_bf16()
    variants = (args.variants or ",".join(v for v in VARIANTS if bf16 or "amp" not in v)).split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    sizes = sorted(int(b) for b in args.step_batch_sizes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or make_train_data(tmp)
        if not args.skip_pipeline:
            for workers in (0, 2):
                speed = data_pipeline_speed(root, workers, args.batch_size, args.batches)
                print(f"data pipeline, {workers} workers: {speed:.1f} samples/s", flush=True)
        print(f"\ntrain step of {os.path.relpath(args.config)} on {args.device} "
              f"({torch.get_num_threads()} threads), {args.steps} timed steps each")
        print(f"{'batch':>5s} {'variant':18s} {'samples/s':>10s} {'vs fp32':>8s} {'peak MiB':>9s}")
        for batch_size in sizes:
            base = None
            for variant in variants:
                amp, channels_last = VARIANTS[variant]
                speed, peak = train_step_speed(args.config, root, args.device, batch_size, args.steps, amp,
                                               channels_last, snapshot_dir=os.path.join(tmp, "snap"))
                base = speed if variant == "fp32" else base
                ratio = f"{speed / base:7.2f}x" if base else "      -"
                print(f"{batch_size:5d} {variant:18s} {speed:10.2f} {ratio:>8s} {peak:9.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
