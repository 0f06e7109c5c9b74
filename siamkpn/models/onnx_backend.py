"""ONNX Runtime sessions behind the tracker's model surface (`template / template_kernels / track`).

`OnnxInferenceModel(folder, cfg)` loads an export folder written by `siamkpn.models.onnx_export`
(template.onnx, track.onnx, optionally track_int8.onnx, siamkpn_onnx.json) and behaves like a prepared
PyTorch model towards the unchanged tracker: `template(z)` returns the packed kernels of every stage (the
template side runs once per initialisation), `template_kernels(zf)` returns them as they are, and
`track(zf, x, kernels)` returns {'heatmap', 'offsets', 'objsize'} lists holding the last stage, as float32
torch tensors on the CPU. Batches (hp-search lanes) run sample by sample: the graphs have batch 1, because
the correlation's group count is fixed in ONNX.

The settings record the sha256 of every graph file at export; a graph is read once, checked against it and handed
to ONNX Runtime as bytes, so a graph replaced after the export (another export's track.onnx) is refused, never run.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from siamkpn.utils.device import capability_line
from toolkit.names import check_name

__all__ = ["BackendUnavailable", "ExportFolderError", "OnnxInferenceModel", "require_onnxruntime", "read_settings",
           "read_graph", "reexport_command"]

BRANCHES = ("heatmap", "offsets", "objsize")


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here (its package is not installed): bad usage, exit 2."""

    exit_code = 2


class ExportFolderError(ValueError):
    """The ONNX export folder is missing, incomplete, or made for other tracker settings (exit 2)."""

    exit_code = 2


def require_onnxruntime():
    """The onnxruntime module, or BackendUnavailable saying how to install it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailable("backend 'onnx' needs onnxruntime, which is not installed here: "
                                 "pip install 'siamkpn[onnx]' (onnx, onnxruntime, onnxscript), "
                                 "or use --backend torch") from err
    return onnxruntime


def read_settings(folder: str) -> Dict:
    """siamkpn_onnx.json of an export folder; ExportFolderError naming the file when absent or unreadable."""
    from siamkpn.models.onnx_export import FORMAT, SETTINGS_FILE

    path = os.path.join(folder, SETTINGS_FILE)
    if not os.path.isdir(folder):
        raise ExportFolderError(f"{folder}: not an ONNX export folder (with --backend onnx, --snapshot names the "
                                "folder that siamkpn-export-onnx wrote)")
    if not os.path.isfile(path):
        raise ExportFolderError(f"{path} is missing: {folder} is not a finished, checked ONNX export "
                                "(run siamkpn-export-onnx again)")
    try:
        with open(path, encoding="utf-8") as f:
            settings = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ExportFolderError(f"{path}: unreadable ({err})") from err
    if settings.get("format") != FORMAT:
        raise ExportFolderError(f"{path}: format {settings.get('format')!r}, this version reads {FORMAT}")
    for key, name in settings.get("files", {}).items():
        check_name(name, f"files.{key}", path)  # a graph file lies in the folder: the settings name no paths
    for key in ("template", "track"):
        name = settings.get("files", {}).get(key)
        if not name or not os.path.isfile(os.path.join(folder, name)):
            raise ExportFolderError(f"{path}: files.{key} ({name!r}) is missing from {folder}")
    if not isinstance(settings.get("sha256"), dict):
        # an export of an earlier version: a graph replaced since (another export's) could not be told apart
        raise ExportFolderError(f"{path} records no sha256 of the graph files (an export of an earlier version), so "
                                f"they cannot be checked; export again: {reexport_command(folder, settings)}")
    return settings


def reexport_command(folder: str, settings: Dict) -> str:
    """The siamkpn-export-onnx command that writes `folder` again, from what its settings recorded."""
    source = settings.get("source") or {}
    parts = ["siamkpn-export-onnx", "--config", source.get("config", "CONFIG.yaml"), "--snapshot",
             source.get("snapshot", "MODEL.pth"), "--out", folder]
    if settings.get("opset", 18) != 18:
        parts += ["--opset", str(settings["opset"])]
    if settings.get("int8"):
        parts += ["--int8", "--calib", settings["int8"].get("calibration", "TRAINING_SET")]
        if settings["int8"].get("pairs", 128) != 128:
            parts += ["--calib-count", str(settings["int8"]["pairs"])]
    if source.get("opts"):
        parts += ["--opts", *[str(v) for v in source["opts"]]]
    return " ".join(parts)


def read_graph(folder: str, settings: Dict, name: str) -> bytes:
    """The bytes of the graph file `name`, checked against the sha256 recorded at export (ExportFolderError naming
    the file when it is missing, unrecorded or changed)."""
    path = os.path.join(folder, name)
    recorded = settings.get("sha256", {}).get(name)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ExportFolderError(f"{path}: cannot read the graph ({err.strerror or err})") from err
    if recorded is None:
        raise ExportFolderError(f"{path}: no sha256 recorded for it in the folder's settings; export again: "
                                f"{reexport_command(folder, settings)}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != recorded:
        raise ExportFolderError(f"{path}: sha256 {digest[:16]}... differs from the {recorded[:16]}... recorded at "
                                "export (the graph was replaced or changed since; another export's?); export again: "
                                f"{reexport_command(folder, settings)}")
    return data


class OnnxInferenceModel(nn.Module):
    """ONNX Runtime template and track sessions with the prepared model's surface (see the module docstring).

    Args:
        folder: the export folder.
        cfg: the experiment config; its tracker sizes must be those the graphs were exported with.
        int8: run track_int8.onnx (ExportFolderError when the folder has none).
        threads: intra-op threads (default: torch's, so one setting governs both backends).
    """

    def __init__(self, folder: str, cfg=None, int8: bool = False, threads: Optional[int] = None,
                 reason: str = "") -> None:
        super().__init__()
        ort = require_onnxruntime()
        self.folder = folder
        self.settings = read_settings(folder)
        if cfg is not None:
            self._check_cfg(cfg)
        track_key = "track_int8" if int8 else "track"
        track_file = self.settings["files"].get(track_key)
        if track_file is None:
            raise ExportFolderError(f"{folder} has no int8 track graph: export it with siamkpn-export-onnx --int8 "
                                    "--calib TRAINING_SET")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        template = read_graph(folder, self.settings, self.settings["files"]["template"])
        self._template = ort.InferenceSession(template, options, providers=providers)
        self._track = ort.InferenceSession(read_graph(folder, self.settings, track_file), options, providers=providers)
        self.kernel_names = list(self.settings["inputs"]["track"][1:])
        self.outputs = [o.name for o in self._track.get_outputs()]
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.int8 = bool(int8)
        self.all_stages = False
        self.applied: List[str] = [
            f"backend onnx: ONNX Runtime {ort.__version__} CPUExecutionProvider, {options.intra_op_num_threads} "
            f"thread(s); graphs from {folder} (opset {self.settings.get('opset')}, exporters "
            f"{self.settings.get('exporters')})",
            "track graph: " + ("int8 backbone and neck (static QDQ: per-channel int8 weights, uint8 "
                               "activations), head float32" if int8 else "float32"),
            "head outputs: last stage only; template kernels computed once per initialisation",
            capability_line(options.intra_op_num_threads),
        ]
        if reason:
            self.applied.insert(0, reason)

    def _check_cfg(self, cfg) -> None:
        from siamkpn.models.onnx_export import SETTINGS_FILE, _tracker_settings

        recorded = self.settings.get("tracker", {})
        for key, value in _tracker_settings(cfg).items():
            if key == "TRACK.OFFSETS":
                continue  # a tracker choice: the graph has the offsets output whenever TRAIN.OFFSETS
            if key in recorded and recorded[key] != value:
                raise ExportFolderError(f"{os.path.join(self.folder, SETTINGS_FILE)}: exported with {key} = "
                                        f"{recorded[key]!r}, the config has {value!r}; export again for this config")

    @staticmethod
    def _numpy(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())

    def template(self, z: torch.Tensor) -> List[torch.Tensor]:
        """The packed kernels of every stage for the exemplar crop(s) z [B,3,E,E] (the template side)."""
        per_sample = [self._template.run(None, {"z": self._numpy(z[b:b + 1])}) for b in range(z.shape[0])]
        return [torch.from_numpy(np.concatenate([s[k] for s in per_sample], 0)) for k in range(len(per_sample[0]))]

    def template_kernels(self, zf: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """`template` already returns the kernels: they pass through."""
        return list(zf)

    def track(self, zf: Sequence[torch.Tensor], x: torch.Tensor, kernels: Optional[Sequence[torch.Tensor]] = None
              ) -> Dict[str, Optional[List[torch.Tensor]]]:
        """Last-stage outputs for search crop(s) x [B,3,X,X]: {'heatmap', 'offsets', 'objsize'} -> [tensor]."""
        kernels = list(zf) if kernels is None else list(kernels)
        runs = []
        for b in range(x.shape[0]):
            feeds = {"x": self._numpy(x[b:b + 1])}
            feeds.update({name: self._numpy(k[b:b + 1]) for name, k in zip(self.kernel_names, kernels)})
            runs.append(self._track.run(None, feeds))
        out: Dict[str, Optional[List[torch.Tensor]]] = {b: None for b in BRANCHES}
        for i, name in enumerate(self.outputs):
            out[name] = [torch.from_numpy(np.concatenate([r[i] for r in runs], 0))]
        return out

    def forward(self, *args, **kwargs):
        raise RuntimeError("an OnnxInferenceModel only tracks: call template / template_kernels / track")
