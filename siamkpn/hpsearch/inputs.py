"""What a search's scores depend on, recorded where they are kept and compared on every rerun.

A study holds, as user attrs: ``dataset`` and ``metric``; ``settings`` (the config keys that change boxes
other than the three searched ones, fast or exact mode, the backend, for onnx the precision, and the
benchmark's ground truth); and for each snapshot epoch it evaluated, ``snapshot_e{N}``: the content identity
(sha256, size) of checkpoint_e{N}.pth, or with backend onnx of every file of the export folder checkpoint_e{N}/,
not its name, since every training run writes the same names. A rerun with other inputs is refused with
the differences named; epochs not yet recorded are added. Settings recorded before the backend was
(no ``backend``; ``TRACK.BACKEND`` in the config or absent) read as backend torch. Each configuration's
result folder also holds ``hp_search_inputs.json`` (settings and its snapshot), so results of other models left
in a results folder are never scored as this search's, whatever the study.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional

import optuna

from siamkpn.hpsearch.storage import retry_storage
from siamkpn.models.backends import backend_holding
from siamkpn.tracker.provenance import model_settings
from siamkpn.utils.claims import record_lock
from siamkpn.utils.provenance import provenance_differences
from siamkpn.utils.result_record import ResultRecord
from toolkit.errors import BadInput

__all__ = ["InputsError", "RECORD_NAME", "SearchInputs", "dataset_identity", "search_settings",
           "record_study_inputs", "check_result_folder"]

RECORD_NAME = "hp_search_inputs.json"
# Searched per configuration (they are in its name); every other TRACK key counts.
_SEARCHED = ("PENALTY_K", "WINDOW_INFLUENCE", "LR")
_SHOWN = 4  # differences named in one error line


class InputsError(BadInput, ValueError):
    """A study or result folder holds results of other inputs than this run's."""


def _plain(value: Any) -> Any:
    """yacs nodes and tuples as JSON's dicts and lists (the form a stored value is read back in)."""
    return json.loads(json.dumps(value))


def dataset_identity(dataset: Any) -> Dict[str, Any]:
    """{'name', 'videos', 'frames', 'ground_truth_sha256'} of a toolkit Dataset (frames are not read)."""
    digest = hashlib.sha256()
    frames = 0
    for video in dataset:
        frames += len(video)
        digest.update(json.dumps([video.name, len(video), video.gt_traj]).encode())
    return {"name": dataset.name, "videos": len(dataset), "frames": frames, "ground_truth_sha256": digest.hexdigest()}


def search_settings(cfg: Any, dataset: Any, region_searched: bool, precision: Optional[str] = None) -> Dict[str, Any]:
    """The settings that change a configuration's score, apart from its snapshot and searched values.

    `precision`: what the snapshots compute in where the backend knows it before loading (onnx: 'int8' when fast
    mode runs the export folders' int8 graph, else 'float32'; ``siamkpn.hpsearch.evaluate.export_precision``), else None
    (torch: the device decides; not recorded).
    """
    skip = set(_SEARCHED) | {"FAST", "BACKEND"} | ({"INSTANCE_SIZE"} if region_searched else set())
    config = {f"TRACK.{k}": v for k, v in cfg.TRACK.items() if k not in skip}
    config.update(model_settings(cfg))  # the keys outside TRACK that change boxes, as result folders record them
    settings = {"config": config, "mode": "fast" if cfg.TRACK.FAST else "exact", "backend": str(cfg.TRACK.BACKEND),
                "dataset": dataset_identity(dataset)}
    if precision is not None:
        settings["precision"] = precision
    return _plain(settings)


def _comparable(values: Mapping[str, Any]) -> Dict[str, Any]:
    """`values` (a study's attrs or a folder record) with its ``settings`` in the current form: settings recorded
    before the backend was recorded (no ``backend``; ``TRACK.BACKEND`` in the config, or absent) read as torch."""
    out = dict(values)
    settings = out.get("settings")
    if isinstance(settings, Mapping) and "backend" not in settings:
        settings = dict(settings)
        config = settings.get("config")
        backend = "torch"
        if isinstance(config, Mapping):
            config = dict(config)
            backend = config.pop("TRACK.BACKEND", "torch")
            settings["config"] = config
        settings["backend"] = backend
        out["settings"] = settings
    return out


@dataclass
class SearchInputs:
    """The settings and, per epoch, the snapshot identity a search runs with."""

    settings: Dict[str, Any]
    snapshots: Dict[int, Dict[str, Any]]

    @classmethod
    def build(cls, settings: Dict[str, Any], snapshot_paths: Mapping[int, str]) -> "SearchInputs":
        """Hash each snapshot: a .pth file, or every file of an ONNX export folder (content identity)."""
        return cls(settings, {int(e): backend_holding(str(p)).identity(str(p)) for e, p in snapshot_paths.items()})

    def study_attrs(self) -> Dict[str, Any]:
        """The study user attrs that record these inputs."""
        return {"settings": self.settings, **{f"snapshot_e{e}": ident for e, ident in sorted(self.snapshots.items())}}

    def folder_record(self, epoch: int) -> Dict[str, Any]:
        """What a configuration of `epoch` records beside its results."""
        return {"settings": self.settings, "snapshot": self.snapshots[int(epoch)]}


def _joined(differences: List[str]) -> str:
    more = f"; and {len(differences) - _SHOWN} more" if len(differences) > _SHOWN else ""
    return "; ".join(differences[:_SHOWN]) + more


def record_study_inputs(study: optuna.Study, current: Mapping[str, Any], where: str) -> None:
    """Compare `current` with what the study recorded (InputsError naming the differences) and record the rest.

    Values are written only where none is recorded, then read back and compared again: a worker that
    started with other files sees the value recorded first (optuna's attr write is an upsert, so two workers
    writing the very same key within milliseconds of each other could still both go on).
    """
    current = _comparable(current)
    for _ in range(6):
        recorded = _comparable(retry_storage(lambda: study.user_attrs))
        known = [k for k in current if k in recorded]
        differences = provenance_differences({k: recorded[k] for k in known}, {k: current[k] for k in known})
        if differences:
            raise InputsError(f"study {study.study_name!r} in {where} holds results of other inputs: "
                              f"{_joined(differences)}; for these inputs use a new --results-dir (with --storage, "
                              "also another --study-name)")
        missing = [k for k in current if k not in recorded]
        if not missing:
            return
        for key in missing:
            retry_storage(lambda k=key: study.set_user_attr(k, current[k]))
    raise RuntimeError(f"could not record the inputs of study {study.study_name!r} in {where}")


_FOLDER_RECORD = ResultRecord(RECORD_NAME, InputsError, "use a new --results-dir (or move the folder away)",
                              shown=_SHOWN)


def check_result_folder(folder: str, record: Mapping[str, Any], result_files: Iterable[str]) -> None:
    """Before tracking into `folder`: refuse results of other inputs (or of unknown ones); record `record`."""
    current = _comparable(record)
    with record_lock(folder, purpose="siamkpn-hp-search"):  # the check-then-write, one process at a time
        _FOLDER_RECORD.claim(folder, record, result_files,
                             lambda recorded: provenance_differences(_comparable(recorded), current))
