"""A training run holds its folders, so two runs never mix snapshots, `train.log` or event files.

Rank 0 holds `train.lock` in TRAIN.SNAPSHOT_DIR and, when it is another folder, in TRAIN.LOG_DIR too (two runs
with their own snapshots but one log folder would still share `train.log` and interleave their event files in
one TensorBoard run). It decides alone, before anything is written, and tells the other ranks, so every rank
stops with the same one line and none waits in a collective for a rank that left.

Limits: the heartbeat is refreshed every 30 s by a daemon thread; a lock is stale after 10 minutes without one
(far above the refresh and above clock skew between the machines of a cluster), or at once when its holder was
on this host and its pid is gone: `--resume auto` after a crash or Ctrl-C on the same machine just continues.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable, Iterator, List, Optional, Tuple

from yacs.config import CfgNode

from siamkpn.engine.distributed import DistInfo, broadcast_from_rank0
from siamkpn.utils.lock import FileLock, LockHeld
from toolkit.errors import BadInput

__all__ = ["LOCK_NAME", "HEARTBEAT_S", "STALE_AFTER_S", "RankZeroRefused", "RankZeroStopped", "hold_run_folders",
           "run_folders"]

logger = logging.getLogger("siamkpn.train")
LOCK_NAME = "train.lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0


class RankZeroStopped(RuntimeError):
    """Raised on the other ranks when rank 0 could not hold the run's folders (a failure there)."""


class RankZeroRefused(RankZeroStopped, BadInput):
    """Raised on the other ranks when rank 0 could not hold the run's folders because of bad input (a BadInput)."""


def run_folders(cfg: CfgNode) -> List[Tuple[str, str]]:
    """(config key, folder) that a run writes into: TRAIN.SNAPSHOT_DIR, and TRAIN.LOG_DIR when it is another."""
    folders = [("TRAIN.SNAPSHOT_DIR", cfg.TRAIN.SNAPSHOT_DIR)]
    if os.path.realpath(cfg.TRAIN.LOG_DIR) != os.path.realpath(cfg.TRAIN.SNAPSHOT_DIR):
        folders.append(("TRAIN.LOG_DIR", cfg.TRAIN.LOG_DIR))
    return folders


def _acquire(key: str, folder: str, purpose: str) -> FileLock:
    os.makedirs(folder, exist_ok=True)
    lock = FileLock(os.path.join(folder, LOCK_NAME), purpose, stale_after=STALE_AFTER_S, heartbeat_every=HEARTBEAT_S)
    try:
        lock.acquire()
    except LockHeld as err:
        raise LockHeld(f"{key} {folder} is in use by another training run: {err} (or give this run another "
                       f"{key})", err.path, err.holder) from None
    if lock.took_over is not None:
        logger.info("took over %s from a run that is gone: %s", lock.path, lock.took_over.describe())
    return lock


def _acquire_all(cfg: CfgNode, purpose: str) -> List[FileLock]:
    locks: List[FileLock] = []
    try:
        for key, folder in run_folders(cfg):
            locks.append(_acquire(key, folder, purpose))
    except BaseException:
        for lock in reversed(locks):
            lock.release()
        raise
    return locks


@contextlib.contextmanager
def hold_run_folders(cfg: CfgNode, dist: DistInfo, purpose: str = "siamkpn-train") -> Iterator[Callable[[], None]]:
    """Hold the run's folders for the `with` block (rank 0; released on any exit). Yields a check that raises
    LockLost when the hold was lost; LockHeld (exit 2) when another live run holds one of them."""
    locks: List[FileLock] = []
    error: Optional[BaseException] = None
    if dist.rank == 0:
        try:
            locks = _acquire_all(cfg, purpose)
        except Exception as err:  # noqa: BLE001 - passed to the other ranks, then raised here
            error = err
    verdict = broadcast_from_rank0(None if error is None else (str(error), isinstance(error, BadInput)))
    if error is not None:
        raise error
    if verdict is not None:
        message, bad_input = verdict
        raise (RankZeroRefused if bad_input else RankZeroStopped)(f"process 0 stopped: {message}")

    def check() -> None:
        for lock in locks:
            lock.check()

    try:
        yield check
    finally:
        for lock in reversed(locks):
            lock.release()
