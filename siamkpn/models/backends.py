"""One entry point from (config, snapshot) to the model object the tracker runs, for every backend.

`load_tracker_model(cfg, snapshot, device, backend)`:
- backend 'torch' (default, TRACK.BACKEND): `snapshot` is a .pth; the model is prepared for inference
  (`siamkpn.models.inference`); TRACK.FAST adds bf16 in the backbone and neck where the device computes it
  natively (CUDA, AVX512-BF16, AMX), within the accuracy budget; elsewhere it stays float32 and says so;
- backend 'onnx': `snapshot` is an export folder of `siamkpn-export-onnx`; ONNX Runtime on the CPU (float32:
  the exact boxes, faster than PyTorch on the CPUs measured); TRACK.FAST runs the int8 track graph when the
  folder has one (the largest CPU speed-up; its accuracy cost is the model's: measure it).
Every caller (test, demo, search, benchmarks) picks a backend by a value, not by code.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:
    import torch

# torch is imported where a model is loaded, so that BACKENDS and check_backend cost nothing (the VOT TraX server
# checks SIAMKPN_BACKEND before its hello, which goes out before torch is imported)

__all__ = ["BACKENDS", "load_tracker_model", "check_backend", "snapshot_identity", "model_precision",
           "onnx_precision"]

BACKENDS = ("torch", "onnx")


def check_backend(backend: str) -> str:
    """`backend` if known, else ValueError listing the valid names."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (TRACK.BACKEND / --backend): "
                         f"choose one of {', '.join(BACKENDS)}")
    return backend


def load_tracker_model(cfg, snapshot: str, device: Optional[Union[str, torch.device]] = None,
                       backend: Optional[str] = None, fast: Optional[bool] = None):
    """The tracker's model for `cfg` from `snapshot` (.pth for torch, export folder for onnx).

    `backend` defaults to cfg.TRACK.BACKEND, `fast` to cfg.TRACK.FAST, `device` to cuda when available (torch)
    or cpu (onnx). `describe(model)` says what was chosen and why.
    """
    backend = check_backend(backend or str(cfg.TRACK.BACKEND))
    fast = bool(cfg.TRACK.FAST) if fast is None else bool(fast)
    if backend == "onnx":
        return _onnx_model(cfg, snapshot, device, fast)
    import torch

    from siamkpn.models.checkpoint import load_tracking_checkpoint
    from siamkpn.models.inference import prepare_for_inference
    from siamkpn.models.model_builder import ModelBuilder
    from siamkpn.models.onnx_export import SETTINGS_FILE

    if os.path.isfile(os.path.join(snapshot, SETTINGS_FILE)):
        raise ValueError(f"{snapshot} is an ONNX export folder: run it with --backend onnx (TRACK.BACKEND onnx)")
    if os.path.isdir(snapshot):
        raise ValueError(f"snapshot {snapshot} is a directory: backend torch loads a .pth file (an ONNX export folder "
                         "needs --backend onnx)")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = ModelBuilder(cfg)
    load_tracking_checkpoint(model, snapshot)  # the whole model or a CheckpointError, never random heads
    return prepare_for_inference(model.eval(), fast=fast, device=device)


def _onnx_model(cfg, folder: str, device, fast: bool):
    import torch

    from siamkpn.models.onnx_backend import OnnxInferenceModel, require_onnxruntime

    require_onnxruntime()
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"backend onnx runs on the CPU (ONNX Runtime's CPU provider); got --device {device}")
    has_int8 = onnx_precision(folder, True) == "int8"
    if not fast:
        reason = "exact mode: float32 graphs"
    elif has_int8:
        # chosen because the folder was exported with --int8: the largest CPU lever; on the make-quickstart model its
        # AUC / EAO differences from exact stayed within the videos' noise (README, Performance), not proven <= 0.005
        reason = ("fast mode: int8 track graph (the folder has one; the largest CPU speed-up, but measure its accuracy "
                  "on your model: benchmarks/fast_mode_accuracy.py --paths onnx_int8)")
    else:
        reason = (f"fast mode: {folder} has no int8 track graph, so float32 "
                  "(export with --int8 --calib TRAINING_SET for the int8 one)")
    return OnnxInferenceModel(folder, cfg, int8=fast and has_int8, reason=reason)


def snapshot_identity(snapshot: str) -> dict:
    """Content identity of what a tracker loads: a .pth file's, or every file of an ONNX export folder
    (siamkpn_onnx.json and the graphs it names), for result-folder provenance records."""
    from siamkpn.utils.provenance import file_identity

    if not os.path.isdir(snapshot):
        return file_identity(snapshot)
    from siamkpn.models.onnx_backend import read_settings
    from siamkpn.models.onnx_export import SETTINGS_FILE

    names = sorted(set(read_settings(snapshot)["files"].values()) | {SETTINGS_FILE})
    return {name: file_identity(os.path.join(snapshot, name)) for name in names}


def model_precision(model) -> str:
    """What a tracker's model computes in: 'float32', 'bfloat16', ... or 'int8' for an int8 ONNX graph."""
    if getattr(model, "int8", False):
        return "int8"
    return str(getattr(model, "dtype", "float32")).replace("torch.", "")


def onnx_precision(folder: str, fast: bool) -> str:
    """What the onnx backend computes in for an export folder, without loading it: 'int8' in fast mode when the
    folder has an int8 track graph, else 'float32' (ExportFolderError for a folder that is not a finished export)."""
    from siamkpn.models.onnx_backend import read_settings

    return "int8" if fast and "track_int8" in read_settings(folder).get("files", {}) else "float32"
