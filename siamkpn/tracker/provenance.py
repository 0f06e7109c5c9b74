"""What produced a tracking-result folder: a record beside the results, checked before a run resumes.

``<results>/<dataset>/<tracker>/provenance.json`` holds ``{"provenance": {...}, "written_by": {...}}``.
Only ``provenance`` is compared when tools/test.py runs again into the folder; it holds what changes boxes:

- ``snapshot``: the content identity of the weights (sha256, size), not their name: every training run
  writes ``checkpoint_eN.pth``, so the same default tracker name often means other weights;
- ``config``: the whole TRACK node (FAST apart) and the keys that shape the model or the score map
  (backbone, neck, head, TRAIN.STACK/INTER_SUPER/OFFSETS/CROP_TEMPLATE, TRAIN.STRIDE/NORMWH);
- ``mode`` (fast or exact, as asked) and ``precision`` (the dtype the model really runs in);
- ``tracking_version``: bumped whenever the tracker or the protocol loop changes boxes.

Not compared, because they do not change boxes: the number of threads, ``--video``, ``--vis``, the
dataset root path. The device is not compared either: in exact mode CPU and CUDA run the same float32
computation with other kernels, so boxes differ only at float rounding (as between two GPU models, or
pysot's common practice of splitting a benchmark over machines); the precision, which is compared, is
what separates a bf16 fast run on a GPU from a float32 one on a CPU without native bf16. The device
and paths go to ``written_by`` for the reader.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from siamkpn.models.backends import backend_for
from siamkpn.utils.claims import record_lock
from siamkpn.utils.provenance import provenance_differences
from siamkpn.utils.result_record import ResultRecord
from toolkit.errors import BadInput

__all__ = ["TRACKING_VERSION", "RECORD_NAME", "MODEL_KEYS", "ResultFolderError", "model_settings",
           "tracking_provenance", "read_record", "prepare_result_folder"]

# Bump when siamkpn.tracker, siamkpn.models.inference or toolkit.protocols change the boxes they produce.
TRACKING_VERSION = 1
RECORD_NAME = "provenance.json"
# Config keys outside TRACK that change boxes: the model's structure and the score map's geometry.
MODEL_KEYS = ("BACKBONE.TYPE", "BACKBONE.KWARGS", "ADJUST.ADJUST", "ADJUST.TYPE", "ADJUST.KWARGS", "KPN.TYPE",
              "KPN.KWARGS", "TRAIN.STACK", "TRAIN.INTER_SUPER", "TRAIN.OFFSETS", "TRAIN.CROP_TEMPLATE",
              "TRAIN.STRIDE", "TRAIN.NORMWH")
REMEDY = "use --tracker-name NAME to write to another folder, or --overwrite to re-track every video here"


class ResultFolderError(BadInput, ValueError):
    """A result folder that holds results of other inputs, or results without a readable record."""


def _plain(value: Any) -> Any:
    """yacs nodes, tuples and lists as JSON's dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _lookup(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def model_settings(cfg: Any) -> Dict[str, Any]:
    """{dotted key: plain value} of the config keys outside TRACK that change boxes (MODEL_KEYS)."""
    return {key: _plain(_lookup(cfg, key)) for key in MODEL_KEYS}


def tracking_provenance(cfg: Any, snapshot: str, precision: str) -> Dict[str, Any]:
    """The inputs that decide a result folder's boxes, as compared on a rerun (see the module docstring)."""
    config = {f"TRACK.{k}": _plain(v) for k, v in cfg.TRACK.items() if k != "FAST"}
    config.update(model_settings(cfg))
    current = {"tracking_version": TRACKING_VERSION, "snapshot": backend_for(cfg).identity(snapshot),
               "config": config, "mode": "fast" if cfg.TRACK.FAST else "exact", "precision": precision}
    return json.loads(json.dumps(current))  # the form a reread record has, so equal inputs compare equal


_RECORD = ResultRecord(RECORD_NAME, ResultFolderError, REMEDY, section="provenance")


def read_record(folder: str) -> Optional[Dict[str, Any]]:
    """The folder's record, or None when it has none; ResultFolderError for one that cannot be read."""
    return _RECORD.read(folder)


def _snapshot_moved(written_by: Mapping[str, Any]) -> Callable[[Dict[str, Any], List[str]], str]:
    """Where the weights are now and were then, when their identity is among the differences."""
    def detail(record: Dict[str, Any], differences: List[str]) -> str:
        if not any(d.startswith("snapshot.") for d in differences):
            return ""
        old = record.get("written_by", {}).get("snapshot", "?")
        return f" (snapshot now {written_by.get('snapshot')}, recorded {old})"
    return detail


def prepare_result_folder(folder: str, current: Dict[str, Any], result_files: Iterable[str], overwrite: bool,
                          written_by: Mapping[str, Any]) -> None:
    """Make ``folder`` ready to take results of ``current``, or raise ResultFolderError naming the differences.

    ``result_files`` are every result file the benchmark's videos may have there. A matching record lets the
    run resume (the record is left as it is); a folder without a record but with results is refused. With
    ``overwrite`` the old record and result files are removed first, so an interrupted overwrite never
    leaves old results under the new record. All of it happens under the folder's record lock
    (``siamkpn.utils.claims.record_lock``): of two runs with different inputs started together, one writes the
    record and the other is refused.
    """
    result_files = [str(p) for p in result_files]
    with record_lock(folder, purpose=str(written_by.get("tool", "siamkpn-test"))):  # one check-then-write at a time
        if overwrite:
            _RECORD.reset(folder, result_files)
        _RECORD.claim(folder, {"provenance": current, "written_by": dict(written_by)}, result_files,
                      lambda record: provenance_differences(record["provenance"], current),
                      _snapshot_moved(written_by))
