"""The training loop: epochs of (data -> losses -> clipped step), with the pysot hooks made explicit:
learning-rate schedule, backbone unfreezing at BACKBONE.TRAIN_EPOCH, snapshots, logging, exact resume
and protection against divergence. The published step rule (pysot's `is_valid_number`): a step whose loss is
non-finite or above TRAIN.HUGE_LOSS (1e4) is skipped, counted and logged (TRAIN.SKIP_HUGE_LOSS False trains on a
finite huge loss with a warning instead); and a run whose weights blew up or whose last epoch skipped too many
steps stops with TrainingDiverged instead of writing a snapshot of them."""
from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from yacs.config import CfgNode

from siamkpn.datasets.training_set import before_worker_fork
from siamkpn.engine.distributed import DistInfo, all_reduce_mean
from siamkpn.engine.epoch_sampler import EpochShardSampler
from siamkpn.engine.lr_scheduler import EpochLR
from siamkpn.engine.rng_state import rng_state, set_rng_state
from siamkpn.engine.snapshots import (
    latest_snapshot,
    read_newest_snapshot,
    remove_leftovers,
    snapshot_path,
    weight_problem,
)
from siamkpn.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from siamkpn.utils.device import cpu_has_native_bf16
from toolkit.errors import BadValue

__all__ = ["Trainer", "TrainingDiverged", "latest_snapshot", "snapshot_path"]

logger = logging.getLogger("siamkpn.train")
LOSS_KEYS = ("total_loss", "heatmap_loss", "offsets_loss", "objsize_loss")


class TrainingDiverged(RuntimeError):
    """Training stopped: unusable weights or too many skipped steps; earlier snapshots are kept, none of these."""


class Trainer:
    """Trains `model` on `train_set` for cfg.TRAIN.EPOCH epochs of len(train_set) samples each.

    Args:
        cfg: the experiment config (TRAIN, BACKBONE read here).
        model: a ModelBuilder on CPU; moved to `dist.device` here.
        train_set: a Dataset of dicts of arrays; optional `set_epoch(epoch)` varies samples per epoch.
        dist: rank/world/device from `init_distributed`.
        progress: show a tqdm bar on rank 0.
        worker_init_fn: passed to the DataLoader (e.g. one OpenCV thread per worker).
        before_save: called on rank 0 before each snapshot is written; an exception it raises stops every rank
            (the run lock's check: never write into a folder that another run has taken over).
    """

    def __init__(self, cfg: CfgNode, model: nn.Module, train_set: Dataset, dist: DistInfo,
                 progress: bool = True, worker_init_fn: Optional[Callable[[int], None]] = None,
                 before_save: Optional[Callable[[], None]] = None) -> None:
        self.cfg, self.dist, self.progress = cfg, dist, progress and dist.rank == 0
        self.before_save = before_save
        self.model = model.to(dist.device)
        self.memory_format = torch.channels_last if cfg.TRAIN.CHANNELS_LAST else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        if cfg.TRAIN.AMP and dist.device.type == "cpu" and not cpu_has_native_bf16():
            logger.warning("TRAIN.AMP on a CPU without native bf16 (%s): correct but slower than float32",
                           torch.backends.cpu.get_cpu_capability())
        self.train_set = train_set
        self.schedule = EpochLR(cfg.TRAIN)
        self.snapshot_dir = cfg.TRAIN.SNAPSHOT_DIR
        self.start_epoch = cfg.TRAIN.START_EPOCH
        self.bad_steps = 0  # consecutive skipped steps
        self.skipped_steps = 0  # skipped steps in all
        self.epoch_skipped = 0
        self.epoch_skipped_huge = 0  # of epoch_skipped: finite losses above TRAIN.HUGE_LOSS (TRAIN.SKIP_HUGE_LOSS)
        self.epoch_huge: List[float] = []  # this epoch's huge losses trained on (TRAIN.SKIP_HUGE_LOSS False)
        self.last_snapshot: Optional[str] = None  # the newest good snapshot: resumed from or written by this run
        self.writer = None
        self._optimizer_state: Optional[Dict[str, Any]] = None
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.ddp: Optional[nn.Module] = None
        self.sampler = EpochShardSampler(train_set, dist.rank, dist.world_size, cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.SEED)
        if cfg.TRAIN.NUM_WORKERS > 0:
            before_worker_fork()
        self.loader = DataLoader(train_set, batch_size=cfg.TRAIN.BATCH_SIZE, sampler=self.sampler,
                                 num_workers=cfg.TRAIN.NUM_WORKERS, pin_memory=dist.device.type == "cuda",
                                 drop_last=True, worker_init_fn=worker_init_fn)
        if len(self.loader) == 0:
            raise BadValue(f"an epoch has no full batch: {len(train_set)} samples in all, batch "
                             f"{cfg.TRAIN.BATCH_SIZE} x {dist.world_size} processes (raise DATASET.VIDEOS_PER_EPOCH)")

    # ------------------------------------------------------------------ setup per epoch
    def _backbone_trainable(self, epoch: int) -> List[str]:
        return list(self.cfg.BACKBONE.TRAIN_LAYERS) if epoch >= self.cfg.BACKBONE.TRAIN_EPOCH else []

    def _set_train_mode(self, epoch: int) -> None:
        """Train mode, except the backbone (params frozen, BN statistics fixed) outside TRAIN_LAYERS."""
        self.model.train()
        backbone = self.model.backbone
        trainable = set(self._backbone_trainable(epoch))
        for p in backbone.parameters():
            p.requires_grad = False
        for m in backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        for name in trainable:
            layer = getattr(backbone, name, None)
            if layer is None:
                continue  # a layer the config does not build (e.g. layer4 with used_layers [2, 3])
            for p in layer.parameters():
                p.requires_grad = True
            for m in layer.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.train()

    def _build_optimizer(self) -> None:
        """Param groups as pysot: trainable backbone layers at LAYERS_LR x BASE_LR, neck and head at BASE_LR."""
        train, base_lr = self.cfg.TRAIN, self.cfg.TRAIN.BASE_LR
        groups = []
        backbone_params = [p for p in self.model.backbone.parameters() if p.requires_grad]
        if backbone_params:
            groups.append({"params": backbone_params, "lr": self.cfg.BACKBONE.LAYERS_LR * base_lr})
        if getattr(self.model, "use_neck", False):
            groups.append({"params": list(self.model.neck.parameters()), "lr": base_lr})
        groups.append({"params": list(self.model.kpn_head.parameters()), "lr": base_lr})
        if train.OPTI == "adam":
            self.optimizer = torch.optim.Adam(groups, weight_decay=train.WEIGHT_DECAY)
        elif train.OPTI == "sgd":
            self.optimizer = torch.optim.SGD(groups, momentum=train.MOMENTUM, weight_decay=train.WEIGHT_DECAY)
        else:
            raise BadValue(f"TRAIN.OPTI must be 'adam' or 'sgd', got '{train.OPTI}'")
        if self.dist.distributed:
            # DDP registers the parameters that need gradients now, so it is rebuilt when that set changes.
            ids = [self.dist.local_rank] if self.dist.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.ddp = self.model

    def _prepare_epoch(self, epoch: int) -> None:
        previous = self._backbone_trainable(epoch - 1) if self.optimizer is not None else None
        self._set_train_mode(epoch)
        if previous != self._backbone_trainable(epoch):
            self._build_optimizer()
            if self._optimizer_state is not None:  # resuming: same groups as when it was saved
                self.optimizer.load_state_dict(self._optimizer_state)
                self._optimizer_state = None
        self.schedule.apply(self.optimizer, epoch)
        self.epoch_skipped, self.epoch_skipped_huge, self.epoch_huge = 0, 0, []
        self.sampler.set_epoch(epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)

    # ------------------------------------------------------------------ snapshots
    def resume(self, path: str) -> None:
        """Continue from snapshot `path`: model, optimizer, epoch and RNG state, so the run continues exactly."""
        self._restore(read_checkpoint(path, map_location="cpu"), path)

    def resume_latest(self) -> Optional[str]:
        """`--resume auto`: continue from the newest snapshot that reads (unreadable ones are skipped with a
        warning); returns its path, or None when TRAIN.SNAPSHOT_DIR holds none."""
        found = read_newest_snapshot(self.snapshot_dir)
        if found is not None:
            self._restore(found[1], found[0])
        return found[0] if found else None

    def _restore(self, ckpt: Any, path: str) -> None:
        if not isinstance(ckpt, dict) or "epoch" not in ckpt:
            raise BadValue(f"{path} is a model checkpoint without training state (no 'epoch'): use it as "
                             "BACKBONE.PRETRAINED / TRAIN.PRETRAINED instead of resuming from it")
        load_checkpoint(self.model, path, strict=True)
        self.start_epoch = int(ckpt["epoch"])
        # At BACKBONE.TRAIN_EPOCH the optimizer is rebuilt with new groups (as an uninterrupted run does), so
        # the saved state applies only while the trainable backbone layers stay the same.
        if ckpt.get("trainable_backbone") == self._backbone_trainable(self.start_epoch):
            self._optimizer_state = ckpt.get("optimizer")
        rng = ckpt.get("rng", {}).get(str(self.dist.rank))
        if rng is not None:
            set_rng_state(rng)
        self.last_snapshot = path
        logger.info("resumed from %s at epoch %d", path, self.start_epoch)

    def _last_good(self) -> str:
        if self.last_snapshot is None:
            return "no good snapshot of this run exists"
        return f"the last good snapshot is {self.last_snapshot}"

    def _diverged(self, message: str) -> None:
        """Log `message` (train.log keeps it) and stop the run with it."""
        logger.error("%s", message)
        raise TrainingDiverged(message)

    def _check_weights(self, epoch: int, path: str) -> None:
        """Stop (on every rank) instead of snapshotting weights that are non-finite or blown up."""
        problem = weight_problem(self.model, self.cfg.TRAIN.MAX_WEIGHT_ABS)
        flag = torch.tensor([0.0 if problem is None else 1.0], device=self.dist.device)
        if all_reduce_mean(flag).item() > 0:
            self._diverged(f"training diverged: after epoch {epoch} {problem or 'another process has unusable weights'}"
                           f"; snapshot {path} not written (lower TRAIN.BASE_LR?); {self._last_good()}")

    def _check_before_save(self) -> None:
        """Run `before_save` on rank 0; its exception stops rank 0, and the other ranks with it."""
        if self.before_save is None:
            return
        error: Optional[Exception] = None
        if self.dist.rank == 0:
            try:
                self.before_save()
            except Exception as err:  # noqa: BLE001 - re-raised below, after the other ranks know
                error = err
        flag = torch.tensor([0.0 if error is None else 1.0], device=self.dist.device)
        if error is not None:
            all_reduce_mean(flag)
            raise error
        if all_reduce_mean(flag).item() > 0:
            raise RuntimeError("process 0 stopped before writing a snapshot (see its message)")

    def save(self, epoch: int) -> str:
        """Write `checkpoint_e{epoch}.pth` atomically (rank 0), with every rank's RNG state; TrainingDiverged
        instead when the weights are unusable."""
        path = snapshot_path(self.snapshot_dir, epoch)
        self._check_before_save()
        self._check_weights(epoch, path)
        rng = {str(self.dist.rank): rng_state()}
        if self.dist.distributed:
            gathered: List[Any] = [None] * self.dist.world_size
            torch.distributed.all_gather_object(gathered, rng)
            rng = {k: v for part in gathered for k, v in part.items()}
        if self.dist.rank == 0:
            save_checkpoint({"epoch": epoch, "state_dict": self.model.state_dict(),
                             "optimizer": self.optimizer.state_dict(), "rng": rng,
                             "trainable_backbone": self._backbone_trainable(epoch - 1),
                             "cfg": self.cfg.dump()}, path)
        self.last_snapshot = path
        return path

    # ------------------------------------------------------------------ the loop
    def _to_device(self, batch: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        moved = {k: v.to(self.dist.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        if self.memory_format is torch.channels_last:
            for key in ("template", "search"):
                moved[key] = moved[key].contiguous(memory_format=torch.channels_last)
        return moved

    def _invalid(self, loss: float) -> torch.Tensor:
        """[non-finite, huge] for this process's loss, averaged over ranks: the published rule skips the step
        when either is non-zero (huge: above TRAIN.HUGE_LOSS, with TRAIN.SKIP_HUGE_LOSS)."""
        huge = math.isfinite(loss) and self.cfg.TRAIN.SKIP_HUGE_LOSS and loss > self.cfg.TRAIN.HUGE_LOSS
        flags = torch.tensor([0.0 if math.isfinite(loss) else 1.0, 1.0 if huge else 0.0], device=self.dist.device)
        return all_reduce_mean(flags)

    def _step(self, batch: Dict[str, torch.Tensor]) -> Optional[Dict[str, float]]:
        """One optimisation step; None when the step was skipped (its loss, on any rank, was non-finite or, with
        TRAIN.SKIP_HUGE_LOSS, above TRAIN.HUGE_LOSS)."""
        # BN running statistics are updated by the forward pass itself: keep a copy so that a batch with a
        # non-finite loss (often non-finite activations) cannot poison them even though its step is skipped.
        buffers = [b.detach().clone() for b in self.model.buffers()]
        with torch.autocast(self.dist.device.type, dtype=torch.bfloat16, enabled=bool(self.cfg.TRAIN.AMP)):
            outputs = self.ddp(batch)
        loss = outputs["total_loss"].float()
        non_finite, huge = self._invalid(float(loss.detach())).tolist()
        self.optimizer.zero_grad(set_to_none=True)
        if non_finite or huge:
            with torch.no_grad():
                for b, saved in zip(self.model.buffers(), buffers):
                    b.copy_(saved)
            self._skipped(bool(non_finite), float(loss.detach()))
            return None
        self.bad_steps = 0
        loss.backward()
        if self.cfg.TRAIN.GRAD_CLIP > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.TRAIN.GRAD_CLIP)
        self.optimizer.step()
        losses = {k: float(v.detach()) for k, v in outputs.items() if k in LOSS_KEYS}
        if losses["total_loss"] > self.cfg.TRAIN.HUGE_LOSS:  # only with TRAIN.SKIP_HUGE_LOSS False
            if not self.epoch_huge:  # the first of the epoch; _end_epoch counts the rest
                logger.warning("huge loss %.3g (more than TRAIN.HUGE_LOSS %g): training may be diverging "
                               "(lower TRAIN.BASE_LR?)", losses["total_loss"], self.cfg.TRAIN.HUGE_LOSS)
            self.epoch_huge.append(losses["total_loss"])
        return losses

    def _skipped(self, non_finite: bool, loss: float) -> None:
        """Count and log a skipped step (`loss`: this process's); stop after TRAIN.MAX_BAD_STEPS in a row."""
        self.bad_steps += 1
        self.skipped_steps += 1
        self.epoch_skipped += 1
        self.epoch_skipped_huge += not non_finite
        reason = "non-finite loss" if non_finite else f"loss above TRAIN.HUGE_LOSS {self.cfg.TRAIN.HUGE_LOSS:g}"
        where = " on some process" if self.dist.distributed else ""
        logger.warning("%s%s (here %.4g); step skipped (%d in a row)", reason, where, loss, self.bad_steps)
        if self.bad_steps >= self.cfg.TRAIN.MAX_BAD_STEPS:
            what = "non-finite or huge" if self.cfg.TRAIN.SKIP_HUGE_LOSS else "non-finite"
            self._diverged(f"{self.bad_steps} consecutive {what} losses (TRAIN.MAX_BAD_STEPS); stopping "
                           f"(lower TRAIN.BASE_LR?); {self._last_good()}")

    def fit(self) -> None:
        """Run epochs start_epoch .. EPOCH-1, saving `checkpoint_e{epoch+1}.pth` after each."""
        if self.dist.rank == 0:
            os.makedirs(self.snapshot_dir, exist_ok=True)
            removed = remove_leftovers(self.snapshot_dir)
            if removed:
                logger.info("removed %d temporary file(s) of interrupted snapshot writes: %s", len(removed),
                            ", ".join(os.path.basename(p) for p in removed))
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(self.cfg.TRAIN.LOG_DIR)
        try:
            for epoch in range(self.start_epoch, self.cfg.TRAIN.EPOCH):
                self._run_epoch(epoch)
                self._end_epoch(epoch)
                path = self.save(epoch + 1)
                if self.dist.rank == 0:
                    logger.info("epoch %d done; snapshot %s", epoch + 1, path)
        finally:  # the event file keeps the losses up to a divergence
            if self.writer is not None:
                self.writer.close()

    def _run_epoch(self, epoch: int) -> None:
        """The steps of one epoch (the snapshot is written by `fit`)."""
        from tqdm import tqdm

        self._prepare_epoch(epoch)
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{self.cfg.TRAIN.EPOCH}", disable=not self.progress,
                   dynamic_ncols=True)
        data_start = time.time()
        for it, batch in enumerate(bar):
            data_time = time.time() - data_start
            step_start = time.time()
            losses = self._step(self._to_device(batch))
            step_time = time.time() - step_start
            global_step = epoch * len(self.loader) + it
            if losses is not None and self.dist.rank == 0:
                self._log(losses, global_step, data_time, step_time, bar, it)
            data_start = time.time()

    def _end_epoch(self, epoch: int) -> None:
        """Report the epoch's huge losses and skipped steps; stop when the last epoch skipped too many."""
        steps, limit = len(self.loader), self.cfg.TRAIN.MAX_BAD_FRACTION
        if self.epoch_huge:
            logger.warning("epoch %d: %d of %d steps had a loss above TRAIN.HUGE_LOSS %g (largest %.3g)", epoch + 1,
                           len(self.epoch_huge), steps, self.cfg.TRAIN.HUGE_LOSS, max(self.epoch_huge))
        if not self.epoch_skipped:
            return
        too_many = self.epoch_skipped / steps > limit
        why = self._skip_summary()
        if too_many and epoch + 1 == self.cfg.TRAIN.EPOCH:
            # its weights are not the result of the configured training: no final snapshot that looks finished
            self._diverged(f"the last epoch ({epoch + 1}) skipped {self.epoch_skipped} of {steps} steps for "
                           f"{why} (more than TRAIN.MAX_BAD_FRACTION {limit:g}); snapshot "
                           f"{snapshot_path(self.snapshot_dir, epoch + 1)} not written; {self._last_good()}")
        logger.warning("epoch %d skipped %d of %d steps for %s%s", epoch + 1, self.epoch_skipped, steps, why,
                       f" (more than TRAIN.MAX_BAD_FRACTION {limit:g})" if too_many else "")

    def _skip_summary(self) -> str:
        """'non-finite losses', or the split between non-finite and huge ones when some were huge."""
        huge = self.epoch_skipped_huge
        if not huge:
            return "non-finite losses"
        limit = f"{huge} above TRAIN.HUGE_LOSS {self.cfg.TRAIN.HUGE_LOSS:g}"
        if huge == self.epoch_skipped:
            return f"huge losses ({limit})"
        return f"non-finite or huge losses ({self.epoch_skipped - huge} non-finite, {limit})"

    def _log(self, losses: Dict[str, float], step: int, data_time: float, step_time: float, bar, it: int) -> None:
        lr = self.optimizer.param_groups[-1]["lr"]
        for key, value in losses.items():
            self.writer.add_scalar(f"losses/{key}", value, step)
        self.writer.add_scalar("lr", lr, step)
        self.writer.add_scalar("time/data", data_time, step)
        self.writer.add_scalar("time/step", step_time, step)
        bar.set_postfix(loss=f"{losses['total_loss']:.4f}", lr=f"{lr:.2e}")
        if it % max(1, self.cfg.TRAIN.PRINT_FREQ) == 0:
            logger.info("step %d: %s lr %.3e data %.3fs step %.3fs", step,
                        " ".join(f"{k} {v:.4f}" for k, v in losses.items()), lr, data_time, step_time)
