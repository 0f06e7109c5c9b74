"""ONNX export of a prepared SiamKPN model into an export folder (`siamkpn.models.onnx_folder`).

The graphs are the exact-mode `InferenceModel` (BatchNorm folded, head packed) at the config's fixed sizes,
batch 1:
- template.onnx: z [1,3,E,E] -> kernel_1..kernel_S, the packed correlation kernels of every stage;
- track.onnx: x [1,3,X,X], kernel_1..kernel_S -> heatmap, [offsets,] objsize of the last stage;
- track_int8.onnx (optional): track.onnx with static QDQ quantisation of the backbone and neck
  (`siamkpn.models.onnx_quantise`), calibrated on training crops, never on a benchmark.
The depthwise correlation against runtime kernels becomes a plain grouped Conv with a weight input.
Opset 18 through the dynamo exporter, the legacy TorchScript exporter as the fallback. Every graph is run
under ONNX Runtime on the given crops and compared with PyTorch before `siamkpn_onnx.json` is written, so a
folder with that file holds checked graphs. The crops are made by the caller (`siamkpn.datasets.calibration`).
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from siamkpn.models.inference import InferenceModel
from siamkpn.models.onnx_folder import (
    ExportError,
    mark_unfinished,
    require_onnxruntime,
    session,
    tracker_settings,
    write_settings,
)
from siamkpn.models.onnx_quantise import quantize_track
from toolkit.atomic import atomic_write

__all__ = ["TemplateGraph", "TrackGraph", "ExportResult", "export_graph", "compare_with_torch", "export_onnx"]

logger = logging.getLogger(__name__)

Pair = Tuple[np.ndarray, np.ndarray]
# relative error (largest |difference| / largest |value| per output) that a float32 graph must stay within:
# float32 reassociation alone gives ~1e-6 on small models and ~1.3e-4 on the ResNet-50 3-stage one
FP32_TOLERANCE = 5e-4


class TemplateGraph(nn.Module):
    """z [1,3,E,E] -> the packed correlation kernels of every stage (the tracker's template side)."""

    def __init__(self, prepared: InferenceModel) -> None:
        super().__init__()
        self.prepared = prepared

    def forward(self, z: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.prepared.packed_kernels(self.prepared.features(z)))


class TrackGraph(nn.Module):
    """x [1,3,X,X] and the kernels of every stage -> the last stage's heatmap, [offsets,] objsize."""

    def __init__(self, prepared: InferenceModel) -> None:
        super().__init__()
        self.prepared = prepared
        self.branches = list(prepared.packed.branches)

    def forward(self, x: torch.Tensor, *kernels: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        xf = self.prepared.features(x)
        xfs = xf if isinstance(xf, (list, tuple)) else [xf]
        out = self.prepared.packed(list(kernels), xfs, False)
        return tuple(out[b][-1] for b in self.branches)


def _exact_model(model: nn.Module) -> InferenceModel:
    prepared = model if isinstance(model, InferenceModel) else InferenceModel(model, device="cpu")
    if prepared.dtype != torch.float32 or prepared.device.type != "cpu" or prepared.channels_last:
        raise ValueError("ONNX export needs the exact (float32, CPU, contiguous) inference model")
    if prepared.packed is None:
        raise ValueError("ONNX export needs a packable head (every level of equal width, as the published configs)")
    if prepared.all_stages:
        raise ValueError("ONNX export writes the last stage only; prepare the model without all_stages")
    return prepared


def export_graph(module: nn.Module, args: Tuple[torch.Tensor, ...], path: str, input_names: List[str],
                 output_names: List[str], opset: int = 18) -> str:
    """Write `module` to `path` (atomically): the dynamo exporter first, the legacy one if it fails; returns which.

    Each exporter writes into the system's temporary folder; only a checked graph reaches `path`.
    """
    errors = []
    for exporter, dynamo in (("dynamo", True), ("legacy", False)):
        with tempfile.TemporaryDirectory() as tmp:
            graph = os.path.join(tmp, "graph.onnx")
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore")  # exporter chatter (deprecations, fallbacks) is not the user's
                    kwargs = {"optimize": True, "verbose": False} if dynamo else {}
                    torch.onnx.export(module, args, graph, input_names=input_names, output_names=output_names,
                                      opset_version=opset, dynamo=dynamo, external_data=False, **kwargs)
                _check_graph(graph, input_names, output_names)
            except Exception as err:  # noqa: BLE001 - try the next exporter, report both if neither works
                errors.append(f"{exporter}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
                logger.info("ONNX %s exporter failed for %s: %s", exporter, path, err)
                continue
            with open(graph, "rb") as f:
                atomic_write(path, f.read())
            return exporter
    raise ExportError(f"could not export {os.path.basename(path)}: " + "; ".join(errors))


def _check_graph(path: str, input_names: Sequence[str], output_names: Sequence[str]) -> None:
    """The written graph is valid ONNX with exactly the expected input and output names."""
    import onnx

    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    inputs = [i.name for i in graph.graph.input]
    outputs = [o.name for o in graph.graph.output]
    if inputs != list(input_names) or outputs != list(output_names):
        raise ExportError(f"graph has inputs {inputs} / outputs {outputs}, expected {list(input_names)} / "
                          f"{list(output_names)}")


def _relative(ref: np.ndarray, got: np.ndarray) -> float:
    return float(np.abs(ref - got).max() / max(float(np.abs(ref).max()), 1e-12))


def compare_with_torch(prepared: InferenceModel, folder: str, pairs: Sequence[Pair],
                       track_file: str = "track.onnx") -> Dict[str, float]:
    """Largest relative error (per output, over `pairs`) of template.onnx + `track_file` against PyTorch."""
    template = session(os.path.join(folder, "template.onnx"))
    track = session(os.path.join(folder, track_file))
    names = [o.name for o in track.get_outputs()]
    worst: Dict[str, float] = {}
    for z, x in pairs:
        zf = prepared.template(torch.from_numpy(z))
        ref_kernels = prepared.template_kernels(zf)
        ref = prepared.track(zf, torch.from_numpy(x), kernels=ref_kernels)
        kernels = template.run(None, {"z": z})
        for s, (a, b) in enumerate(zip(ref_kernels, kernels)):
            worst[f"kernel_{s + 1}"] = max(worst.get(f"kernel_{s + 1}", 0.0), _relative(a.numpy(), b))
        feeds = {"x": x, **{f"kernel_{s + 1}": k for s, k in enumerate(kernels)}}
        for name, got in zip(names, track.run(None, feeds)):
            worst[name] = max(worst.get(name, 0.0), _relative(ref[name][-1].numpy(), got))
    return worst


@dataclass
class ExportResult:
    """What `export_onnx` wrote: the folder, the settings JSON and the measured errors per graph."""

    folder: str
    settings: Dict
    errors: Dict[str, Dict[str, float]]


def export_onnx(model: nn.Module, cfg, out: str, check: Sequence[Pair], check_crops: str = "rendered synthetic video",
                calibration: Optional[Sequence[Pair]] = None, calib_root: Optional[str] = None, opset: int = 18,
                int8_tolerance: float = 0.1, source: Optional[Dict] = None) -> ExportResult:
    """Export `model` (a ModelBuilder or exact InferenceModel) for `cfg` into the folder `out`, check it on the crop
    pairs `check` (described by `check_crops`), and write siamkpn_onnx.json last.

    With `calibration` (crop pairs of the training set `calib_root`) also track_int8.onnx. Raises ExportError when a
    graph's outputs leave the tolerance (relative: FP32_TOLERANCE float32, `int8_tolerance` int8).
    """
    ort = require_onnxruntime()  # fail before any work when the runtime is missing

    if calibration is not None and not calib_root:
        raise ValueError("int8 calibration pairs need calib_root, the training set they come from (it is recorded)")
    prepared = _exact_model(model)
    mark_unfinished(out)  # the graphs are about to change: the folder is unchecked until the new JSON exists
    stack, branches = prepared.packed.stack, list(prepared.packed.branches)
    kernel_names = [f"kernel_{s + 1}" for s in range(stack)]
    z, x = torch.from_numpy(check[0][0]), torch.from_numpy(check[0][1])
    with torch.inference_mode():
        kernels = TemplateGraph(prepared)(z)
    kernels = tuple(k.clone() for k in kernels)  # plain tensors (not inference tensors) as example inputs
    exporters = {
        "template.onnx": export_graph(TemplateGraph(prepared), (z,), os.path.join(out, "template.onnx"), ["z"],
                                      kernel_names, opset),
        "track.onnx": export_graph(TrackGraph(prepared), (x, *kernels), os.path.join(out, "track.onnx"),
                                   ["x", *kernel_names], branches, opset),
    }
    errors = {"track.onnx": compare_with_torch(prepared, out, check)}
    bad = {k: v for k, v in errors["track.onnx"].items() if not v <= FP32_TOLERANCE}
    if bad:
        raise ExportError(f"exported graphs differ from PyTorch beyond {FP32_TOLERANCE:g} relative: {bad}")
    files = {"template": "template.onnx", "track": "track.onnx"}
    int8_info = None
    if calibration is not None:
        quantised = quantize_track(out, calibration)
        errors["track_int8.onnx"] = compare_with_torch(prepared, out, check, "track_int8.onnx")
        # int8 moves outputs by about 1% of their range (quick-start model); what counts is the tracker's
        # accuracy (benchmarks/fast_mode_accuracy.py), so this only catches a broken graph or calibration
        worst = max(v for k, v in errors["track_int8.onnx"].items() if not k.startswith("kernel"))
        if not worst <= int8_tolerance:
            raise ExportError(f"int8 track graph differs from PyTorch by {worst:.3f} relative (> {int8_tolerance}); "
                              "calibrate on more or more typical crops")
        files["track_int8"] = "track_int8.onnx"
        int8_info = {"calibration": os.path.abspath(calib_root), "pairs": len(calibration),
                     "quantised_convs": len(quantised),
                     "format": "QDQ, per-channel int8 weights, uint8 activations; backbone and neck only"}
    import onnx

    settings = write_settings(
        out, files, inputs={"template": ["z"], "track": ["x", *kernel_names]}, outputs=branches, opset=opset,
        exporters=exporters, tracker=tracker_settings(cfg), meta_arc=str(cfg.META_ARC), int8=int8_info,
        source=source or {}, max_relative_error=errors, check_crops=check_crops,
        versions={"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__})
    return ExportResult(out, settings, errors)
