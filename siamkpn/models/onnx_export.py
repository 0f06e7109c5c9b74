"""ONNX export of a prepared SiamKPN model: `template.onnx`, `track.onnx` (last stage) and `siamkpn_onnx.json`.

The graphs are the exact-mode `InferenceModel` (BatchNorm folded, head packed) at the config's fixed sizes,
batch 1:
- template.onnx: z [1,3,E,E] -> kernel_1..kernel_S, the packed correlation kernels of every stage;
- track.onnx: x [1,3,X,X], kernel_1..kernel_S -> heatmap, [offsets,] objsize of the last stage;
- track_int8.onnx (optional): track.onnx with static QDQ quantisation of the backbone and neck (per-channel
  int8 weights, uint8 activations; the head stays float32, see `quantize_track`), calibrated on training
  crops (crop511 images), never on a benchmark.
The depthwise correlation against runtime kernels becomes a plain grouped Conv with a weight input.
Opset 18 through the dynamo exporter, the legacy TorchScript exporter as the fallback. Every graph is run
under ONNX Runtime on real crops and compared with PyTorch before `siamkpn_onnx.json` is written, so a
folder with that file holds checked graphs; the file records each graph's sha256, checked at every load.
"""
from __future__ import annotations

import logging
import os
import random
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from siamkpn.models.inference import InferenceModel
from siamkpn.models.onnx_backend import require_onnxruntime
from siamkpn.utils.atomic import atomic_write_json

__all__ = ["SETTINGS_FILE", "FORMAT", "TemplateGraph", "TrackGraph", "ExportError", "export_graph",
           "calibration_pairs", "synthetic_pairs", "quantize_track", "compare_with_torch", "export_onnx"]

logger = logging.getLogger(__name__)

SETTINGS_FILE = "siamkpn_onnx.json"
FORMAT = 1
# relative error (largest |difference| / largest |value| per output) that a float32 graph must stay within:
# float32 reassociation alone gives ~1e-6 on small models and ~1.3e-4 on the ResNet-50 3-stage one
FP32_TOLERANCE = 5e-4


class ExportError(RuntimeError):
    """An exported graph disagrees with PyTorch, or no exporter could write it (a failure while running)."""


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
    """Write `module` to `path` (atomically): the dynamo exporter first, the legacy one if it fails; returns which."""
    folder = os.path.dirname(os.path.abspath(path))
    errors = []
    for exporter, dynamo in (("dynamo", True), ("legacy", False)):
        fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=folder)
        os.close(fd)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # exporter chatter (deprecations, fallbacks) is not the user's
                kwargs = {"optimize": True, "verbose": False} if dynamo else {}
                torch.onnx.export(module, args, tmp, input_names=input_names, output_names=output_names,
                                  opset_version=opset, dynamo=dynamo, external_data=False, **kwargs)
            _check_graph(tmp, input_names, output_names)
            os.chmod(tmp, _file_mode())  # mkstemp made it private; the graphs are ordinary output files
            os.replace(tmp, path)
            return exporter
        except Exception as err:  # noqa: BLE001 - try the next exporter, report both if neither works
            errors.append(f"{exporter}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            logger.info("ONNX %s exporter failed for %s: %s", exporter, path, err)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise ExportError(f"could not export {os.path.basename(path)}: " + "; ".join(errors))


def _file_mode() -> int:
    """0o666 less the process umask (what open() would have given the file)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


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


# ---------------------------------------------------------------------------------------------- crops
def _crop(img: np.ndarray, center: Tuple[float, float], size: int) -> np.ndarray:
    from siamkpn.tracker.subwindow import get_subwindow

    return get_subwindow(img, np.asarray(center, dtype=np.float64), size, size, img.mean(axis=(0, 1)))


def _chw(crop: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None].astype(np.float32))


def calibration_pairs(root: str, exemplar: int, instance: int, count: int, seed: int = 0
                      ) -> List[Tuple[np.ndarray, np.ndarray]]:
    """`count` (template, search) crop pairs [1,3,E,E] / [1,3,X,X] from a pysot crop511 training set under `root`.

    Each crop511 image has its target centred at the exemplar scale (pysot's layout), so the template is the
    centre E x E and the search region an X x X crop around a shifted centre of another frame of the same track.
    Raises FileNotFoundError naming `root` when it holds no `*.x.jpg` crops.
    """
    import cv2

    tracks: Dict[Tuple[Path, str], List[Path]] = {}
    for path in sorted(Path(root).rglob("*.x.jpg")):
        track = path.name.split(".")[1] if path.name.count(".") >= 3 else "00"
        tracks.setdefault((path.parent, track), []).append(path)
    if not tracks:
        raise FileNotFoundError(f"{root}: no crop511 training crops (*.x.jpg) to calibrate on")
    rng = random.Random(seed)
    keys = sorted(tracks)
    pairs = []
    for i in range(count):
        frames = tracks[keys[rng.randrange(len(keys))] if i >= len(keys) else keys[i * len(keys) // count]]
        first, second = rng.choice(frames), rng.choice(frames)
        z_img, x_img = cv2.imread(str(first)), cv2.imread(str(second))
        if z_img is None or x_img is None:
            raise ValueError(f"cannot read the training crop {first if z_img is None else second}")
        c = (z_img.shape[1] - 1) / 2, (z_img.shape[0] - 1) / 2
        shift = rng.uniform(-0.1, 0.1) * instance, rng.uniform(-0.1, 0.1) * instance
        pairs.append((_chw(_crop(z_img, c, exemplar)), _chw(_crop(x_img, (c[0] + shift[0], c[1] + shift[1]),
                                                                     instance))))
    return pairs


def synthetic_pairs(exemplar: int, instance: int, count: int, seed: int = 0) -> List[Tuple[np.ndarray, np.ndarray]]:
    """(template, search) crop pairs from a rendered synthetic video (for checking without a training set)."""
    from siamkpn.datasets.synthetic import render_video

    video = render_video(np.random.default_rng(seed), count + 1)
    x1, y1, x2, y2 = video.boxes[0]
    w, h = x2 - x1, y2 - y1
    s_z = float(np.sqrt((w + (w + h) / 2) * (h + (w + h) / 2)))
    pairs = []
    for t in range(1, count + 1):
        bx1, by1, bx2, by2 = video.boxes[t]
        cz = ((x1 + x2 - 1) / 2, (y1 + y2 - 1) / 2)
        cx = ((bx1 + bx2 - 1) / 2, (by1 + by2 - 1) / 2)
        from siamkpn.tracker.subwindow import get_subwindow

        avg = video.frames[0].mean(axis=(0, 1))
        z = get_subwindow(video.frames[0], np.asarray(cz), exemplar, round(s_z), avg)
        x = get_subwindow(video.frames[t], np.asarray(cx), instance, round(s_z * instance / exemplar), avg)
        pairs.append((_chw(z), _chw(x)))
    return pairs


# ---------------------------------------------------------------------------------------------- checks
def _session(path: str, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _relative(ref: np.ndarray, got: np.ndarray) -> float:
    return float(np.abs(ref - got).max() / max(float(np.abs(ref).max()), 1e-12))


def compare_with_torch(prepared: InferenceModel, folder: str, pairs: Sequence[Tuple[np.ndarray, np.ndarray]],
                       track_file: str = "track.onnx") -> Dict[str, float]:
    """Largest relative error (per output, over `pairs`) of template.onnx + `track_file` against PyTorch."""
    template = _session(os.path.join(folder, "template.onnx"))
    track = _session(os.path.join(folder, track_file))
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


def _feature_convs(graph) -> List[str]:
    """Names of the Conv nodes of the backbone and neck (from the exporters' scope records: the dynamo
    exporter's `namespace` metadata, the legacy exporter's '/prepared/backbone/...' node names)."""
    names = []
    for node in graph.graph.node:
        if node.op_type != "Conv":
            continue
        scope = " ".join([node.name] + [p.value for p in node.metadata_props if p.key == "namespace"])
        if any(part in scope for part in ("prepared.backbone", "prepared.neck", "/prepared/backbone/",
                                          "/prepared/neck/")):
            names.append(node.name)
    return names


def quantize_track(folder: str, pairs: Sequence[Tuple[np.ndarray, np.ndarray]], out_name: str = "track_int8.onnx"
                   ) -> List[str]:
    """Static QDQ int8 quantisation of track.onnx calibrated on `pairs`: per-channel int8 weights, uint8
    activations, in the backbone and neck only; returns the names of the quantised convolutions.

    The head stays float32. Measured on the quick-start model against PyTorch, largest error as a share of each
    output's range: backbone + neck int8 0.7% heat map / 1.2% offsets / 0.9% sizes; + the head's search convs
    1.8 / 8 / 15%; + its hidden and output layers 24 / 86 / 92% (heat-map logits, offsets ~0.1 and log-sizes
    share one output tensor, and the correlations' kernels are runtime activations).
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    template = _session(os.path.join(folder, "template.onnx"))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds: Iterator[Dict[str, np.ndarray]] = iter(
                {"x": x, **{f"kernel_{s + 1}": k for s, k in enumerate(template.run(None, {"z": z}))}}
                for z, x in pairs)

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(os.path.join(folder, "track.onnx"), pre, skip_symbolic_shape=True)
        selected = _feature_convs(onnx.load(pre))
        if not selected:
            raise ExportError("cannot find the backbone's convolutions in track.onnx (no scope records): "
                              "no int8 graph written")
        out = os.path.join(tmp, out_name)
        quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_quantize=selected)
        os.chmod(out, _file_mode())
        os.replace(out, os.path.join(folder, out_name))
    return selected


# ---------------------------------------------------------------------------------------------- export
@dataclass
class ExportResult:
    """What `export_onnx` wrote: the folder, the settings JSON and the measured errors per graph."""

    folder: str
    settings: Dict
    errors: Dict[str, Dict[str, float]]


def _tracker_settings(cfg) -> Dict:
    return {"TRACK.EXEMPLAR_SIZE": int(cfg.TRACK.EXEMPLAR_SIZE), "TRACK.INSTANCE_SIZE": int(cfg.TRACK.INSTANCE_SIZE),
            "TRACK.BASE_SIZE": int(cfg.TRACK.BASE_SIZE), "TRAIN.STRIDE": int(cfg.TRAIN.STRIDE),
            "TRAIN.STACK": int(cfg.TRAIN.STACK), "TRAIN.NORMWH": bool(cfg.TRAIN.NORMWH),
            "TRAIN.OFFSETS": bool(cfg.TRAIN.OFFSETS), "TRACK.OFFSETS": bool(cfg.TRACK.OFFSETS)}


def export_onnx(model: nn.Module, cfg, out: str, opset: int = 18, int8: bool = False, calib: Optional[str] = None,
                calib_count: int = 128, check_count: int = 4, int8_tolerance: float = 0.1,
                source: Optional[Dict] = None) -> ExportResult:
    """Export `model` (a ModelBuilder or exact InferenceModel) for `cfg` into the folder `out`, check it, and
    write siamkpn_onnx.json last. `int8` needs `calib` (a crop511 training set). Raises ExportError when a
    graph's outputs leave the tolerance (relative: FP32_TOLERANCE float32, `int8_tolerance` int8)."""
    ort = require_onnxruntime()  # fail before any work when the runtime is missing

    if int8 and not calib:
        raise ValueError("--int8 needs --calib DATASET_ROOT (a crop511 training set; never the benchmark)")
    prepared = _exact_model(model)
    exemplar, instance = int(cfg.TRACK.EXEMPLAR_SIZE), int(cfg.TRACK.INSTANCE_SIZE)
    os.makedirs(out, exist_ok=True)
    stale = os.path.join(out, SETTINGS_FILE)
    if os.path.exists(stale):
        os.unlink(stale)  # the graphs are about to change: the folder is unchecked until the new JSON exists
    # real crops: held-out pairs of the calibration set (other seed), else a rendered synthetic video
    check = (calibration_pairs(calib, exemplar, instance, check_count, seed=1) if calib
             else synthetic_pairs(exemplar, instance, check_count))
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
    if int8:
        pairs = calibration_pairs(calib, exemplar, instance, calib_count, seed=0)
        quantised = quantize_track(out, pairs)
        errors["track_int8.onnx"] = compare_with_torch(prepared, out, check, "track_int8.onnx")
        # int8 moves outputs by about 1% of their range (quick-start model); what counts is the tracker's
        # accuracy (benchmarks/fast_mode_accuracy.py), so this only catches a broken graph or calibration
        worst = max(v for k, v in errors["track_int8.onnx"].items() if not k.startswith("kernel"))
        if not worst <= int8_tolerance:
            raise ExportError(f"int8 track graph differs from PyTorch by {worst:.3f} relative (> {int8_tolerance}); "
                              "calibrate on more or more typical crops")
        files["track_int8"] = "track_int8.onnx"
        int8_info = {"calibration": os.path.abspath(calib), "pairs": len(pairs), "quantised_convs": len(quantised),
                     "format": "QDQ, per-channel int8 weights, uint8 activations; backbone and neck only"}
    import onnx

    from siamkpn.utils.provenance import file_identity

    # the graphs' content, checked at every load (onnx_backend.read_graph): a graph replaced later is refused
    hashes = {name: file_identity(os.path.join(out, name))["sha256"] for name in sorted(set(files.values()))}
    settings = {"format": FORMAT, "files": files, "sha256": hashes,
                "inputs": {"template": ["z"], "track": ["x", *kernel_names]}, "outputs": branches, "opset": opset,
                "exporters": exporters, "tracker": _tracker_settings(cfg),
                "meta_arc": str(cfg.META_ARC), "int8": int8_info, "source": source or {},
                "max_relative_error": errors, "check_crops": "calibration set (held-out pairs)" if calib
                else "rendered synthetic video",
                "versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                             "onnxruntime": ort.__version__}}
    atomic_write_json(os.path.join(out, SETTINGS_FILE), settings)
    return ExportResult(out, settings, errors)
