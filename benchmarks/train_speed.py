"""Training throughput, one figure per measurement (samples/s).

    python benchmarks/train_speed.py [--data-root DIR] [--batches N] [--batch-size B]

- data pipeline: TrainingSet + DataLoader on synthetic data (crop511 reading, augmentation, labels),
  with 0 and 2 worker processes.
Without --data-root a small synthetic training set is generated in a temporary folder first (not timed).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Optional

try:
    import siamkpn  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch.utils.data import DataLoader

from siamkpn.config import get_cfg
from siamkpn.datasets.synthetic_sets import write_train_set
from siamkpn.datasets.training_set import TrainingSet, worker_init_fn


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
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, worker_init_fn=worker_init_fn)
    batches = iter(loader)
    next(batches)
    start, count = time.perf_counter(), 0
    for batch in batches:
        count += batch["search"].shape[0]
    return count / (time.perf_counter() - start)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help="a synthetic training set (make_synthetic.py DIR/train)")
    parser.add_argument("--batches", type=int, default=10, help="timed batches per measurement")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or make_train_data(tmp)
        for workers in (0, 2):
            speed = data_pipeline_speed(root, workers, args.batch_size, args.batches)
            print(f"data pipeline, {workers} workers: {speed:.1f} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
