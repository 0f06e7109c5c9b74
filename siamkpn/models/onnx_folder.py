"""The ONNX export folder: `siamkpn_onnx.json` beside the graphs it names, and how a graph is read and run.

A folder written by `siamkpn.models.onnx_export` holds template.onnx, track.onnx, optionally track_int8.onnx,
and `siamkpn_onnx.json` (written last: a folder without it is unfinished). The settings record the tracker sizes
the graphs were exported for and the sha256 of every graph file; a graph is read once, checked against its record
and handed to ONNX Runtime as bytes, so a graph replaced after the export (another export's track.onnx) is
refused, never run. Every ONNX Runtime session of the package (runtime, export check, quantisation) comes from
`session` here.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Mapping, Union

from siamkpn.utils.provenance import file_identity
from toolkit.atomic import atomic_write_json
from toolkit.errors import BadInput
from toolkit.names import check_name

__all__ = ["SETTINGS_FILE", "FORMAT", "BackendUnavailable", "ExportFolderError", "ExportError", "require_onnxruntime",
           "session", "tracker_settings", "read_settings", "read_graph", "reexport_command", "mark_unfinished",
           "write_settings"]

SETTINGS_FILE = "siamkpn_onnx.json"
FORMAT = 1


class BackendUnavailable(BadInput, RuntimeError):
    """The chosen backend cannot run here: its package is not installed."""


class ExportFolderError(BadInput, ValueError):
    """The ONNX export folder is missing, incomplete, changed since the export, or made for other tracker settings."""


class ExportError(RuntimeError):
    """An exported graph disagrees with PyTorch, or no exporter could write it (a failure while running)."""


def require_onnxruntime():
    """The onnxruntime module, or BackendUnavailable saying how to install it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailable("backend 'onnx' needs onnxruntime, which is not installed here: "
                                 "pip install 'siamkpn[onnx]' (onnx, onnxruntime, onnxscript), "
                                 "or use --backend torch") from err
    return onnxruntime


def session(graph: Union[str, bytes], threads: int = 1):
    """An ONNX Runtime CPU session for a graph file or its bytes (`threads` intra-op threads, all optimisations)."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def tracker_settings(cfg) -> Dict[str, Any]:
    """The config keys the graphs are fixed to (recorded at export, compared at load)."""
    return {"TRACK.EXEMPLAR_SIZE": int(cfg.TRACK.EXEMPLAR_SIZE), "TRACK.INSTANCE_SIZE": int(cfg.TRACK.INSTANCE_SIZE),
            "TRACK.BASE_SIZE": int(cfg.TRACK.BASE_SIZE), "TRAIN.STRIDE": int(cfg.TRAIN.STRIDE),
            "TRAIN.STACK": int(cfg.TRAIN.STACK), "TRAIN.NORMWH": bool(cfg.TRAIN.NORMWH),
            "TRAIN.OFFSETS": bool(cfg.TRAIN.OFFSETS), "TRACK.OFFSETS": bool(cfg.TRACK.OFFSETS)}


def read_settings(folder: str) -> Dict:
    """siamkpn_onnx.json of an export folder; ExportFolderError naming the file when absent or unreadable."""
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


def reexport_command(folder: str, settings: Mapping) -> str:
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


def read_graph(folder: str, settings: Mapping, name: str) -> bytes:
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


def mark_unfinished(folder: str) -> None:
    """Create `folder` and remove its settings: the graphs are about to change, so it is unchecked until
    `write_settings` runs again."""
    os.makedirs(folder, exist_ok=True)
    stale = os.path.join(folder, SETTINGS_FILE)
    if os.path.exists(stale):
        os.unlink(stale)


def write_settings(folder: str, files: Dict[str, str], **fields: Any) -> Dict:
    """Write siamkpn_onnx.json (atomically, last): the format, `files` (key -> graph file), the sha256 of each graph
    as it is now, then `fields` in their order; returns what was written."""
    hashes = {name: file_identity(os.path.join(folder, name))["sha256"] for name in sorted(set(files.values()))}
    settings = {"format": FORMAT, "files": files, "sha256": hashes, **fields}
    atomic_write_json(os.path.join(folder, SETTINGS_FILE), settings)
    return settings
