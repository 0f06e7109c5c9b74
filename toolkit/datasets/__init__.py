"""Benchmark datasets: one table from a benchmark name to its loader, pysot json or native layout.

``DatasetFactory.create_dataset('OTB100', root)`` reads ``<root>/OTB100.json`` when it exists
(pysot's layout; also ``<NAME>_new.json``, a json named by ``json_name``, or the only pysot-style
json in ``root``), otherwise the benchmark's native folder layout. ``layout='json'|'native'``
forces one of them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

from toolkit.datasets import got10k, lasot, nfs, otb, trackingnet, uav, vot
from toolkit.datasets.parse import DatasetError, is_pysot_json
from toolkit.datasets.video import VOT_TAGS, Dataset, FrameReadError, Video
from toolkit.errors import UnknownName

__all__ = ["DatasetFactory", "resolve_dataset_root", "DATASETS_ENV",
           "Dataset", "Video", "DatasetError", "FrameReadError", "LOADERS", "VOT_TAGS",
           "find_json"]

Loader = Callable[[str, Path, Optional[Path], bool], Dataset]

LOADERS: dict[str, Loader] = {
    **{n: otb.load for n in otb.NAMES},
    "VOT2016": vot.load, "VOT2017": vot.load, "VOT2018": vot.load, "VOT2019": vot.load,
    "VOT2018-LT": vot.load_lt,
    "UAV123": uav.load, "UAV20L": uav.load,
    "LaSOT": lasot.load,
    "GOT-10k": got10k.load, "GOT-10k-val": got10k.load, "GOT-10k-test": got10k.load,
    "NFS30": nfs.load, "NFS240": nfs.load,
    "TrackingNet": trackingnet.load,
}
# Jsons that also describe a benchmark (pysot's names for OTB; full OTB jsons serve its subsets).
_JSON_ALIASES = {"OTB100": ["OTB2015"], "OTB2015": ["OTB100"], "OTB2013": ["CVPR13", "OTB100", "OTB2015"],
                 "CVPR13": ["OTB2013", "OTB100", "OTB2015"], "OTB50": ["OTB100", "OTB2015"],
                 "GOT-10k-val": ["GOT-10k"]}


def find_json(name: str, root: Path, json_name: Optional[str] = None, layout: Optional[str] = None
              ) -> Optional[Path]:
    """The pysot json to read for ``name`` under ``root``, or None for the native layout."""
    if layout not in (None, "json", "native"):
        raise ValueError(f"layout must be 'json', 'native' or None, got {layout!r}")
    if layout == "native":
        return None
    if json_name is not None:
        path = root / (json_name if json_name.endswith(".json") else f"{json_name}.json")
        if not path.is_file():
            raise DatasetError(f"{name}: dataset json {path} not found")
        return path
    for stem in [name, *_JSON_ALIASES.get(name, [])]:
        for path in (root / f"{stem}.json", root / f"{stem}_new.json"):
            if path.is_file():
                return path
    candidates = [p for p in sorted(root.glob("*.json")) if is_pysot_json(p)]
    if len(candidates) == 1:
        return candidates[0]
    if layout == "json":
        raise DatasetError(f"{name}: no dataset json in {root} ({len(candidates)} pysot-style candidates); "
                           "name one with json_name")
    return None


DATASETS_ENV = "SIAMKPN_DATASETS"  # a folder holding one sub-folder per benchmark


def resolve_dataset_root(name: str, root: Optional[str] = None) -> str:
    """A benchmark's folder: the explicit `root`, then $SIAMKPN_DATASETS/<name>, then testing_dataset/<name>
    under the working directory (pysot's habit)."""
    if root:
        return str(root)
    if os.environ.get(DATASETS_ENV):
        return os.path.join(os.environ[DATASETS_ENV], name)
    candidate = os.path.join("testing_dataset", name)
    if os.path.isdir(candidate):
        return candidate
    raise FileNotFoundError(f"no folder for benchmark {name}: pass --dataset-root, set ${DATASETS_ENV} to a "
                            f"folder holding {name}/, or put it at ./{candidate}")


class DatasetFactory:
    """pysot's entry point: ``DatasetFactory.create_dataset(name=..., dataset_root=..., load_img=False)``."""

    @staticmethod
    def create_dataset(name: str, dataset_root: Union[str, Path], load_img: bool = False, *,
                       json_name: Optional[str] = None, layout: Optional[str] = None) -> Dataset:
        """Load benchmark ``name`` from ``dataset_root`` (json layout if present, else native)."""
        if name not in LOADERS:
            raise UnknownName(f"unknown dataset {name!r}; valid names: {', '.join(sorted(LOADERS))}")
        root = Path(dataset_root)
        if not root.is_dir():
            raise DatasetError(f"{name}: dataset root {root} is not a directory")
        return LOADERS[name](name, root, find_json(name, root, json_name, layout), load_img)
