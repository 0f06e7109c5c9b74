"""Train SiamKPN: `torchrun --nproc_per_node=N tools/train.py --cfg config.yaml` (or `siamkpn-train --config ...`).

One process without torchrun (CPU or one GPU); `python -m torch.distributed.launch` still works.
TRAIN.BATCH_SIZE is per process: the global batch is BATCH_SIZE x the number of processes.
A run holds TRAIN.SNAPSHOT_DIR (and TRAIN.LOG_DIR) for its whole length: a second run into them stops at once.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import sys
from typing import Callable

import numpy as np
import torch

from siamkpn.cli.args import add_config, add_flag, add_opts, add_standard, make_parser
from siamkpn.cli.common import run_tool
from siamkpn.config import load_cfg
from siamkpn.datasets.training_set import DATA_ROOT_ENV, TrainingSet, resolve_data_root, worker_init_fn
from siamkpn.engine.distributed import DistInfo, cleanup, init_distributed
from siamkpn.engine.run_lock import hold_run_folders
from siamkpn.engine.trainer import Trainer
from siamkpn.models.backbone.torchvision_weights import load_imagenet_backbone
from siamkpn.models.checkpoint import load_checkpoint
from siamkpn.models.model_builder import ModelBuilder

# a relative weights path is also looked up in the checkout root (pysot's habit of running from experiments/)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("siamkpn-train", __doc__)
    add_config(p, "--cfg")
    add_flag(p, "--data-root", "--data_root", dest="data_root", default=None,
             help="folder that relative DATASET.*.ROOT/ANNO resolve against (default: DATASET.DATA_ROOT, else "
                  f"${DATA_ROOT_ENV}, else the working directory)")
    add_flag(p, "--resume", default=None,
             help="'auto' (newest readable snapshot in TRAIN.SNAPSHOT_DIR) or a snapshot path (default: "
                  "TRAIN.RESUME, else start from scratch)")
    add_standard(p, ["device", "threads", "progress"])
    add_flag(p, "--local-rank", "--local_rank", dest="local_rank", type=int, default=-1,
             help="set by python -m torch.distributed.launch (torchrun sets LOCAL_RANK instead)")
    add_opts(p)
    return p


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _find(path: str) -> str:
    """A relative weights path: the working directory first, then the repository root (pysot's habit)."""
    for candidate in (path, os.path.join(REPO, path)):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"BACKBONE.PRETRAINED / TRAIN.PRETRAINED file not found: {path}")


def setup_logging(log_dir: str, rank: int) -> None:
    handlers = [logging.StreamHandler()]
    if rank == 0:
        os.makedirs(log_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(log_dir, "train.log")))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, handlers=handlers,
                        format="[%(asctime)s %(name)s %(levelname)s] %(message)s")


def _check_data_root(cfg, data_root) -> None:
    """A missing data root fails here, by name, before the model is built."""
    root = resolve_data_root(cfg, data_root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data root not found: {root} (from --data-root, DATASET.DATA_ROOT or "
                                f"${DATA_ROOT_ENV})")


def _main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_cfg(args.config, args.opts)
    if args.threads:
        torch.set_num_threads(args.threads)
    _check_data_root(cfg, args.data_root)
    dist = init_distributed(args.device, args.local_rank)
    try:
        with hold_run_folders(cfg, dist) as still_held:  # before train.log, event files or snapshots are written
            _train(cfg, args, dist, still_held)
    finally:
        cleanup()
    return 0


def _train(cfg, args: argparse.Namespace, dist: DistInfo, still_held: Callable[[], None]) -> None:
    setup_logging(cfg.TRAIN.LOG_DIR, dist.rank)
    log = logging.getLogger("siamkpn.train")
    log.info("world size %d, device %s\n%s", dist.world_size, dist.device, cfg.dump())
    seed = cfg.TRAIN.SEED + dist.rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    model = ModelBuilder(cfg)
    if cfg.BACKBONE.PRETRAINED:
        load_imagenet_backbone(model.backbone, cfg.BACKBONE.PRETRAINED, find=_find)
    if cfg.TRAIN.PRETRAINED:
        load_checkpoint(model, _find(cfg.TRAIN.PRETRAINED))
    train_set = TrainingSet(cfg, data_root=args.data_root, seed=cfg.TRAIN.SEED)
    trainer = Trainer(cfg, model, train_set, dist, progress=not args.no_progress, worker_init_fn=worker_init_fn,
                      before_save=still_held)
    resume = args.resume or cfg.TRAIN.RESUME
    if resume == "auto":
        if trainer.resume_latest() is None:
            log.info("no snapshot in %s: starting from scratch", cfg.TRAIN.SNAPSHOT_DIR)
    elif resume:
        trainer.resume(resume)
    trainer.fit()  # TrainingDiverged (logged) reaches run_tool: one line, exit 1


def main(argv=None) -> int:
    """``siamkpn-train`` / ``python tools/train.py``: train under the common error policy."""
    return run_tool(_main, argv, "siamkpn-train")


if __name__ == "__main__":
    sys.exit(main())
