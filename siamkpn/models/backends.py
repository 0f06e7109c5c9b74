"""Inference backends as objects: what a snapshot is, where it runs, what it is and how it loads.

``BACKENDS = {"torch": TorchBackend(), "onnx": OnnxBackend()}``; ``backend_for(cfg)`` is the one TRACK.BACKEND
names and ``backend_holding(snapshot)`` the one whose kind of snapshot a path is. Each answers, for its kind:

- ``check(snapshot, device)``: the snapshot is of its kind and the device one it may run on (one BadInput line
  saying what to do otherwise), without importing torch; ``device(text)`` resolves a --device value;
- ``load(cfg, snapshot, device)``: the model object the tracker runs (``template / template_kernels / track``);
  TRACK.FAST is read from ``cfg``;
- ``identity(snapshot)``, ``precision(model)``, ``planned_precision(snapshot, fast)``: what result records hold;
- ``epoch_path(snapshot_dir, epoch)``, ``check_present(paths, config)``: epoch N's snapshot for the search.

torch: a .pth file; device auto (CUDA when available), cpu, cuda or cuda:N; prepared for inference
(``siamkpn.models.inference``); TRACK.FAST adds bf16 in the backbone and neck where the device computes it
natively (CUDA, AVX512-BF16, AMX), within the accuracy budget; elsewhere it stays float32 and says so.
onnx: a folder that ``siamkpn-export-onnx`` wrote; ONNX Runtime on the CPU (float32: the exact boxes, faster than
PyTorch on the CPUs measured): ``auto`` means the CPU, every tool alike, and a CUDA device is an error; TRACK.FAST
runs the int8 track graph when the folder has one (the largest CPU speed-up; its accuracy cost is the model's).

Nothing else compares backend names. torch is imported only where a model is loaded, so that choosing and checking
a backend cost nothing (the VOT TraX server checks its settings before its hello, which goes out before torch).
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, Dict, Iterable, Optional

from siamkpn.models.onnx_folder import SETTINGS_FILE, read_settings, require_onnxruntime
from siamkpn.utils.provenance import file_identity
from toolkit.errors import BadInput

__all__ = ["BACKENDS", "Backend", "BackendError", "DeviceError", "SnapshotKindError", "SnapshotNotFound",
           "TorchBackend", "OnnxBackend", "backend_named", "backend_for", "backend_holding"]


class BackendError(BadInput, ValueError):
    """A backend name, snapshot or device that no backend (or not the chosen one) runs; the message says what to do."""


class SnapshotKindError(BackendError):
    """A snapshot of the other backend's kind (a folder for torch, a file for onnx).

    ``snapshot``, ``backend`` (the chosen one's name) and ``other`` (the name of the one that runs it) let a tool
    that takes its settings from elsewhere than flags (the TraX server: environment variables) word it its own way.
    """

    def __init__(self, message: str, snapshot: str, backend: str, other: str) -> None:
        super().__init__(message)
        self.snapshot, self.backend, self.other = snapshot, backend, other


class SnapshotNotFound(BadInput, FileNotFoundError):
    """A snapshot (or a search epoch's snapshots) that is not there; the message names every missing one."""


class DeviceError(BackendError):
    """A device the backend cannot run on: ``--device DEVICE: REASON``."""

    def __init__(self, device: str, reason: str) -> None:
        super().__init__(f"--device {device}: {reason}")
        self.device, self.reason = device, reason


class Backend(ABC):
    """One inference backend: the kind of snapshot it runs, where, and how it loads (see the module docstring)."""

    name = ""
    snapshot_kind = ""  # what a snapshot of this backend is, for messages
    fixed_search_region = False  # True where the graphs take a crop of one fixed size (TRACK.INSTANCE_SIZE)
    # how a batch of lanes (siamkpn-test --batch, the search's lanes) runs: None = one forward pass for the batch,
    # else what happens instead (siamkpn-test --batch K says it once)
    lanes_note: Optional[str] = None

    @abstractmethod
    def holds(self, snapshot: str) -> bool:
        """True when `snapshot` is of this backend's kind (a file or a folder; it need not exist)."""

    @abstractmethod
    def device(self, device: str = "auto") -> Any:
        """The device to load on for a --device value (auto, cpu, cuda, cuda:N); DeviceError where it cannot run."""

    @abstractmethod
    def check(self, snapshot: str, device: str = "auto") -> None:
        """Refuse a snapshot of another kind or a device the backend never runs on (one BadInput line saying what to
        do), before anything is loaded and without importing torch."""

    @abstractmethod
    def check_config(self, cfg: Any, snapshot: str) -> None:
        """That `snapshot` runs with `cfg`, where that is known without reading the weights (for a tool that hands
        both to another process)."""

    @abstractmethod
    def load(self, cfg: Any, snapshot: str, device: str = "auto") -> Any:
        """The model object the tracker runs, for `cfg` (TRACK.FAST included) from a checked `snapshot`."""

    @abstractmethod
    def identity(self, snapshot: str) -> Dict[str, Any]:
        """The content identity of what `load` reads (sha256 and size), for the records beside results."""

    def precision(self, model: Any) -> str:
        """What a loaded model computes in: 'float32', 'bfloat16', ... or 'int8'."""
        return str(getattr(model, "dtype", "float32")).replace("torch.", "")

    def planned_precision(self, snapshot: str, fast: bool) -> Optional[str]:
        """What `snapshot` will compute in, known before loading; None where the device decides."""
        return None

    def epoch_path(self, snapshot_dir: str, epoch: int) -> str:
        """Epoch N's snapshot in a training run's snapshot folder."""
        return os.path.join(snapshot_dir, f"checkpoint_e{epoch}.pth")

    @abstractmethod
    def check_present(self, paths: Iterable[str], config: str = "CONFIG") -> None:
        """SnapshotNotFound naming every path that is not a finished snapshot of this backend."""


class TorchBackend(Backend):
    """PyTorch: a .pth file, prepared for inference on the CPU or a CUDA device."""

    name = "torch"
    snapshot_kind = "a .pth file"

    def holds(self, snapshot: str) -> bool:
        return not os.path.isdir(snapshot)

    def device(self, device: str = "auto") -> Any:
        """A torch.device: 'auto' picks CUDA when available; a CUDA device on a machine without one is a DeviceError
        (known only once torch is imported)."""
        import torch

        text = str(device)  # a --device value, or a torch.device this method returned
        if text == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if text.startswith("cuda") and not torch.cuda.is_available():
            raise DeviceError(text, "CUDA is not available on this machine (use --device cpu)")
        return torch.device(text)

    def check(self, snapshot: str, device: str = "auto") -> None:
        if os.path.isfile(os.path.join(snapshot, SETTINGS_FILE)):
            raise SnapshotKindError(f"snapshot {snapshot} is a folder, an ONNX export folder: run it with --backend "
                                    "onnx (TRACK.BACKEND onnx)", snapshot, self.name, "onnx")
        if os.path.isdir(snapshot):
            raise SnapshotKindError(f"snapshot {snapshot} is a directory: backend torch loads a .pth file (an ONNX "
                                    "export folder needs --backend onnx)", snapshot, self.name, "onnx")
        if not os.path.isfile(snapshot):
            raise SnapshotNotFound(f"snapshot not found: {snapshot}")

    def check_config(self, cfg: Any, snapshot: str) -> None:
        """Nothing: a .pth is only read at load (its keys are checked against the config's model there)."""

    def load(self, cfg: Any, snapshot: str, device: str = "auto") -> Any:
        from siamkpn.models.checkpoint import load_tracking_checkpoint
        from siamkpn.models.inference import prepare_for_inference
        from siamkpn.models.model_builder import ModelBuilder

        torch_device = self.device(device)
        model = ModelBuilder(cfg)
        load_tracking_checkpoint(model, snapshot)  # the whole model or a CheckpointError, never random heads
        return prepare_for_inference(model.eval(), fast=bool(cfg.TRACK.FAST), device=torch_device)

    def identity(self, snapshot: str) -> Dict[str, Any]:
        return file_identity(snapshot)

    def check_present(self, paths: Iterable[str], config: str = "CONFIG") -> None:
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise SnapshotNotFound(f"{len(missing)} snapshot(s) not found: {', '.join(missing)}")


class OnnxBackend(Backend):
    """ONNX Runtime on the CPU: a folder that siamkpn-export-onnx wrote."""

    name = "onnx"
    snapshot_kind = "an ONNX export folder"
    fixed_search_region = True  # the graphs' input size is fixed at export
    lanes_note = ("backend onnx runs the lanes of a batch sample by sample (the exported graphs take one crop at a "
                  "time): the same boxes as without batching, no batching speed-up (use --workers to run in "
                  "parallel)")

    def holds(self, snapshot: str) -> bool:
        return os.path.isdir(snapshot)

    def device(self, device: str = "auto") -> str:
        if str(device) not in ("auto", "cpu"):
            raise DeviceError(device, "backend onnx runs on the CPU (ONNX Runtime's CPU provider)")
        return "cpu"

    def check(self, snapshot: str, device: str = "auto") -> None:
        if os.path.isfile(snapshot):
            raise SnapshotKindError(f"--snapshot {snapshot} is a file, but backend onnx runs the folder that "
                                    "siamkpn-export-onnx wrote (export it with siamkpn-export-onnx --snapshot "
                                    "MODEL.pth --out FOLDER, or use --backend torch)", snapshot, self.name, "torch")
        self.device(device)
        require_onnxruntime()

    def check_config(self, cfg: Any, snapshot: str) -> None:
        self.load(cfg, snapshot)  # the folder, its graphs and the config's crop sizes agree

    def load(self, cfg: Any, snapshot: str, device: str = "auto") -> Any:
        from siamkpn.models.onnx_runtime import OnnxInferenceModel

        self.device(device)
        fast = bool(cfg.TRACK.FAST)
        has_int8 = self.planned_precision(snapshot, True) == "int8"
        if not fast:
            reason = "exact mode: float32 graphs"
        elif has_int8:
            # chosen because the folder was exported with --int8: the largest CPU lever; on the make-quickstart model
            # its AUC / EAO differences from exact stayed within the videos' noise (README, Performance), not proven
            # <= 0.005
            reason = ("fast mode: int8 track graph (the folder has one; the largest CPU speed-up, but measure its "
                      "accuracy on your model: benchmarks/fast_mode_accuracy.py --paths onnx_int8)")
        else:
            reason = (f"fast mode: {snapshot} has no int8 track graph, so float32 "
                      "(export with --int8 --calib TRAINING_SET for the int8 one)")
        return OnnxInferenceModel(snapshot, cfg, int8=fast and has_int8, reason=reason)

    def identity(self, snapshot: str) -> Dict[str, Any]:
        """Every file of the folder: siamkpn_onnx.json and the graphs it names."""
        names = sorted(set(read_settings(snapshot)["files"].values()) | {SETTINGS_FILE})
        return {name: file_identity(os.path.join(snapshot, name)) for name in names}

    def precision(self, model: Any) -> str:
        return "int8" if getattr(model, "int8", False) else "float32"

    def planned_precision(self, snapshot: str, fast: bool) -> Optional[str]:
        """'int8' in fast mode when the folder has an int8 track graph, else 'float32' (ExportFolderError for a
        folder that is not a finished export)."""
        return "int8" if fast and "track_int8" in read_settings(snapshot).get("files", {}) else "float32"

    def epoch_path(self, snapshot_dir: str, epoch: int) -> str:
        """The export folder of epoch N's .pth: ``<snapshot_dir>/checkpoint_eN``."""
        return os.path.splitext(super().epoch_path(snapshot_dir, epoch))[0]

    def check_present(self, paths: Iterable[str], config: str = "CONFIG") -> None:
        # a folder without siamkpn_onnx.json is an export that did not finish (the file is written last)
        missing = [p for p in paths if not os.path.isfile(os.path.join(p, SETTINGS_FILE))]
        if missing:
            first = missing[0]
            raise SnapshotNotFound(
                f"{len(missing)} ONNX export folder(s) not found (or unfinished: no {SETTINGS_FILE}): "
                f"{', '.join(missing)}; with --backend onnx epoch N runs <snapshot-dir>/checkpoint_eN/: export each, "
                f"e.g. siamkpn-export-onnx --config {config} --snapshot {first}.pth --out {first}")


BACKENDS: Dict[str, Backend] = {b.name: b for b in (TorchBackend(), OnnxBackend())}


def backend_named(name: str) -> Backend:
    """The backend called `name`; BackendError listing the valid names."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r} (TRACK.BACKEND / --backend): choose one of "
                           f"{', '.join(BACKENDS)}")
    return BACKENDS[name]


def backend_for(cfg: Any) -> Backend:
    """The backend the config names (TRACK.BACKEND)."""
    return backend_named(str(cfg.TRACK.BACKEND))


def backend_holding(snapshot: str) -> Backend:
    """The backend whose kind of snapshot `snapshot` is: an export folder for onnx, a .pth file for torch."""
    return next(b for b in BACKENDS.values() if b.holds(snapshot))
