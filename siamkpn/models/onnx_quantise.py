"""Static int8 quantisation of an export folder's track.onnx into track_int8.onnx (backbone and neck only).

QDQ format: per-channel int8 weights, uint8 activations, calibrated on (template, search) crop pairs that the
caller makes (`siamkpn.datasets.calibration`: training crops, never a benchmark). The head stays float32.
"""
from __future__ import annotations

import os
import tempfile
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from siamkpn.models.onnx_folder import ExportError, session
from toolkit.atomic import atomic_write

__all__ = ["quantize_track"]

# the exporters' scope records of the backbone's and neck's nodes: the dynamo exporter's `namespace` metadata,
# the legacy exporter's node names
_FEATURE_SCOPES = ("prepared.backbone", "prepared.neck", "/prepared/backbone/", "/prepared/neck/")


def _feature_convs(graph) -> List[str]:
    """Names of the Conv nodes of the backbone and neck."""
    names = []
    for node in graph.graph.node:
        if node.op_type != "Conv":
            continue
        scope = " ".join([node.name] + [p.value for p in node.metadata_props if p.key == "namespace"])
        if any(part in scope for part in _FEATURE_SCOPES):
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

    template = session(os.path.join(folder, "template.onnx"))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds: Iterator[Dict[str, np.ndarray]] = iter(
                {"x": x, **{f"kernel_{s + 1}": k for s, k in enumerate(template.run(None, {"z": z}))}}
                for z, x in pairs)

        def get_next(self):
            return next(self.feeds, None)

    # scratch graphs in the system's temporary folder; only the result is written into the export folder
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(os.path.join(folder, "track.onnx"), pre, skip_symbolic_shape=True)
        selected = _feature_convs(onnx.load(pre))
        if not selected:
            raise ExportError("cannot find the backbone's convolutions in track.onnx (no scope records): "
                              "no int8 graph written")
        out = os.path.join(tmp, out_name)
        quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_quantize=selected)
        with open(out, "rb") as f:
            atomic_write(os.path.join(folder, out_name), f.read())
    return selected
