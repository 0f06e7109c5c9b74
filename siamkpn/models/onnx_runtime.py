"""ONNX Runtime sessions behind the tracker's model surface (`template / template_kernels / track`).

`OnnxInferenceModel(folder, cfg)` loads an export folder (`siamkpn.models.onnx_folder`) and behaves like a prepared
PyTorch model towards the unchanged tracker: `template(z)` returns the packed kernels of every stage (the
template side runs once per initialisation), `template_kernels(zf)` returns them as they are, and
`track(zf, x, kernels)` returns {'heatmap', 'offsets', 'objsize'} lists holding the last stage, as float32
torch tensors on the CPU. Batches (hp-search lanes) run sample by sample: the graphs have batch 1, because
the correlation's group count is fixed in ONNX.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from siamkpn.models.onnx_folder import (
    SETTINGS_FILE,
    ExportFolderError,
    read_graph,
    read_settings,
    require_onnxruntime,
    session,
    tracker_settings,
)
from siamkpn.utils.device import capability_line

__all__ = ["OnnxInferenceModel"]

BRANCHES = ("heatmap", "offsets", "objsize")


class OnnxInferenceModel(nn.Module):
    """ONNX Runtime template and track sessions with the prepared model's surface (see the module docstring).

    Args:
        folder: the export folder.
        cfg: the experiment config; its tracker sizes must be those the graphs were exported with.
        int8: run track_int8.onnx (ExportFolderError when the folder has none).
        threads: intra-op threads (default: torch's, so one setting governs both backends).
        reason: a first line for `applied` (why this model was chosen).
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
        threads = int(threads or torch.get_num_threads())
        self._template = session(read_graph(folder, self.settings, self.settings["files"]["template"]), threads)
        self._track = session(read_graph(folder, self.settings, track_file), threads)
        self.kernel_names = list(self.settings["inputs"]["track"][1:])
        self.outputs = [o.name for o in self._track.get_outputs()]
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.int8 = bool(int8)
        self.all_stages = False
        self.applied: List[str] = [
            f"backend onnx: ONNX Runtime {ort.__version__} CPUExecutionProvider, {threads} "
            f"thread(s); graphs from {folder} (opset {self.settings.get('opset')}, exporters "
            f"{self.settings.get('exporters')})",
            "track graph: " + ("int8 backbone and neck (static QDQ: per-channel int8 weights, uint8 "
                               "activations), head float32" if int8 else "float32"),
            "head outputs: last stage only; template kernels computed once per initialisation",
            capability_line(threads),
        ]
        if reason:
            self.applied.insert(0, reason)

    def _check_cfg(self, cfg) -> None:
        recorded = self.settings.get("tracker", {})
        for key, value in tracker_settings(cfg).items():
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
