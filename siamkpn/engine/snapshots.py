"""Training snapshots on disk: their names, the newest readable one, leftovers of interrupted writes, and the
check that keeps blown-up weights out of them."""
from __future__ import annotations

import glob
import logging
import math
import os
import re
from typing import Any, List, Optional, Tuple

import torch.nn as nn

from siamkpn.models.checkpoint import CheckpointError, read_checkpoint
from toolkit.atomic import temp_files

__all__ = ["snapshot_path", "list_snapshots", "latest_snapshot", "read_newest_snapshot", "remove_leftovers",
           "weight_problem"]

logger = logging.getLogger("siamkpn.train")
_NAME = re.compile(r"checkpoint_e(\d+)\.pth")
# temporary files of save_checkpoint before it used toolkit.atomic (mkstemp prefix ".tmp_")
_OLD_TEMP_PATTERN = ".tmp_*.pth"


def snapshot_path(snapshot_dir: str, epoch: int) -> str:
    """`<snapshot_dir>/checkpoint_e{epoch}.pth`."""
    return os.path.join(snapshot_dir, f"checkpoint_e{epoch}.pth")


def list_snapshots(snapshot_dir: str) -> List[Tuple[int, str]]:
    """(epoch, path) of every `checkpoint_e{N}.pth` in `snapshot_dir`, oldest first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(snapshot_dir), "checkpoint_e*.pth")):
        match = _NAME.fullmatch(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_snapshot(snapshot_dir: str) -> Optional[str]:
    """The snapshot with the highest epoch number in `snapshot_dir`, or None (not checked for readability)."""
    found = list_snapshots(snapshot_dir)
    return found[-1][1] if found else None


def read_newest_snapshot(snapshot_dir: str) -> Optional[Tuple[str, Any]]:
    """(path, content) of the newest snapshot that reads, skipping truncated or unreadable ones with a warning.

    None when the folder holds no snapshot; CheckpointError when it holds some and none of them reads (starting
    afresh would silently overwrite them).
    """
    skipped = []
    for _, path in reversed(list_snapshots(snapshot_dir)):
        try:
            return path, read_checkpoint(path, map_location="cpu")
        except CheckpointError as err:
            logger.warning("--resume auto: skipping unreadable snapshot %s (%s); trying the previous one", path, err)
            skipped.append(path)
    if skipped:
        raise CheckpointError(f"--resume auto: no snapshot in {snapshot_dir} can be read ({', '.join(skipped)}); "
                              "move them away to start from scratch")
    return None


def remove_leftovers(snapshot_dir: str) -> List[str]:
    """Delete temporary files that interrupted snapshot writes left in `snapshot_dir`; returns their paths."""
    leftovers = temp_files(snapshot_dir) + sorted(glob.glob(os.path.join(glob.escape(snapshot_dir),
                                                                         _OLD_TEMP_PATTERN)))
    for path in leftovers:
        os.remove(path)
    return leftovers


def weight_problem(model: nn.Module, max_abs: float) -> Optional[str]:
    """What makes the model's weights unusable, or None: a non-finite parameter or float buffer, a parameter
    beyond `max_abs`, or a buffer beyond `max_abs`**2 (BN running variances are squared activations)."""
    param_limit = (max_abs, f"TRAIN.MAX_WEIGHT_ABS {max_abs:g}")
    buffer_limit = (max_abs ** 2, f"TRAIN.MAX_WEIGHT_ABS squared, {max_abs ** 2:g}, for buffers")
    tensors = [(name, t, param_limit) for name, t in model.named_parameters()]
    tensors += [(name, t, buffer_limit) for name, t in model.named_buffers()
                if t.is_floating_point()]  # integer buffers (num_batches_tracked) legitimately grow large
    for name, tensor, (limit, which) in tensors:
        if tensor.numel() == 0:
            continue
        largest = float(tensor.detach().abs().max())  # NaN anywhere makes the maximum NaN
        if not math.isfinite(largest):
            return f"'{name}' holds non-finite values"
        if largest > limit:
            return f"'{name}' reaches {largest:.3g} (more than {which})"
    return None
