"""Loading released SiamKPN checkpoints, pysot backbones and training snapshots; atomic saving."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

import torch
import torch.nn as nn

from toolkit.atomic import atomic_write_stream
from toolkit.errors import BadInput

__all__ = ["CheckpointError", "LoadReport", "read_checkpoint", "extract_state_dict", "load_checkpoint",
           "load_tracking_checkpoint", "load_pretrained_backbone", "save_checkpoint"]

logger = logging.getLogger(__name__)


class CheckpointError(BadInput, RuntimeError):
    """A checkpoint file that cannot be read or does not fit the model."""


@dataclass
class LoadReport:
    """What a load did: keys the model has but the file lacks, and keys the file has but the model lacks."""

    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    loaded: int = 0


def read_checkpoint(path: str, map_location: Any = "cpu") -> Any:
    """torch.load with weights_only=True and errors that name the file."""
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} is a directory: a .pth file is expected")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files (IndexError, UnpicklingError, ...)
        raise CheckpointError(f"cannot read checkpoint {path}: not a valid PyTorch checkpoint or truncated "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err


def extract_state_dict(obj: Any, path: str = "<checkpoint>") -> Dict[str, torch.Tensor]:
    """The state dict inside `obj` ({'state_dict': ...}, {'model': ...} or bare), `module.` prefixes removed."""
    state = obj
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                state = obj[key]
                break
    if not isinstance(state, Mapping) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict (expected a mapping of parameter names to tensors, "
                              f"or one under 'state_dict')")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _compare(own: Mapping[str, torch.Tensor], state: Dict[str, torch.Tensor], path: str) -> LoadReport:
    """The key gaps between a model's state dict and a checkpoint's; a shape mismatch or no overlap is an error."""
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise CheckpointError(f"shape mismatch for '{key}' in {path}: checkpoint {tuple(value.shape)}, "
                                  f"model {tuple(own[key].shape)}")
    report = LoadReport(
        missing=[k for k in own if k not in state and not k.endswith("num_batches_tracked")],
        unexpected=[k for k in state if k not in own],
    )
    report.loaded = sum(1 for k in state if k in own)
    if report.loaded == 0:
        raise CheckpointError(f"no parameter of {path} matches the model (first keys: {list(state)[:3]}); "
                              "is it a checkpoint of another architecture?")
    return report


def _load_into(module: nn.Module, state: Dict[str, torch.Tensor], path: str, strict: bool) -> LoadReport:
    own = module.state_dict()
    report = _compare(own, state, path)
    if strict and (report.missing or report.unexpected):
        raise CheckpointError(f"{path} does not match the model: missing {report.missing[:10]}, "
                              f"unexpected {report.unexpected[:10]}")
    if report.missing:
        logger.warning("%s: %d model keys missing from the checkpoint (kept as initialised): %s%s", path,
                       len(report.missing), report.missing[:10], " ..." if len(report.missing) > 10 else "")
    if report.unexpected:
        logger.warning("%s: %d checkpoint keys unused by the model: %s%s", path, len(report.unexpected),
                       report.unexpected[:10], " ..." if len(report.unexpected) > 10 else "")
    # load_state_dict copies with a cast, so float16 weights load into a float32 model.
    module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return report


def load_checkpoint(model: nn.Module, path: str, strict: bool = False) -> LoadReport:
    """Load a SiamKPN checkpoint or training snapshot into `model`; warn about (or, strict, fail on) key gaps."""
    state = extract_state_dict(read_checkpoint(path), path)
    return _load_into(model, state, path, strict)


def load_tracking_checkpoint(model: nn.Module, path: str) -> LoadReport:
    """Load a checkpoint that must hold the whole model (tracking, testing, search): any gap is an error.

    A missing key would leave that part randomly initialised and the tracker would still run and write
    results, so it is an error listing the first keys. Extra keys inside one of the model's own parts
    (`backbone.`, `neck.`, `kpn_head.`: another TRAIN.STACK, more backbone layers, another head) mean the file
    is another architecture whose extra stages or layers this model would silently drop: an error too. Extra
    keys outside those parts (a module some other code attached to the model) are never read by the tracker
    and only warned about.
    """
    state = extract_state_dict(read_checkpoint(path), path)
    own = model.state_dict()
    report = _compare(own, state, path)
    if report.missing:
        raise CheckpointError(f"{path} lacks {len(report.missing)} of the model's keys (first: "
                              f"{', '.join(report.missing[:5])}): a backbone-only file, or a config with another "
                              "TRAIN.STACK / KPN / BACKBONE than the checkpoint's? Tracking needs the complete model")
    parts = {name for name, _ in model.named_children()}
    foreign = [k for k in report.unexpected if k.split(".", 1)[0] in parts]
    if foreign:
        raise CheckpointError(f"{path} holds {len(foreign)} keys this model's parts lack (first: "
                              f"{', '.join(foreign[:5])}): a checkpoint of another architecture (TRAIN.STACK, KPN, "
                              "BACKBONE.KWARGS) than the config's?")
    if report.unexpected:
        logger.warning("%s: %d checkpoint keys unused by the model: %s%s", path, len(report.unexpected),
                       report.unexpected[:10], " ..." if len(report.unexpected) > 10 else "")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return report


def load_pretrained_backbone(backbone: nn.Module, path: str) -> LoadReport:
    """Load ImageNet weights such as pysot's `resnet50.model` (classifier `fc.*` keys are reported, unused)."""
    state = extract_state_dict(read_checkpoint(path), path)
    if not any(k in backbone.state_dict() for k in state) and any(k.startswith("backbone.") for k in state):
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return _load_into(backbone, state, path, strict=False)


def save_checkpoint(obj: Dict[str, Any], path: str) -> None:
    """torch.save `obj` atomically (toolkit.atomic): `path` holds the old file or the whole new one."""
    atomic_write_stream(path, lambda f: torch.save(obj, f), binary=True, what="checkpoint")  # disk full names the file
