"""Valid values of the config keys that have a range or a relation: one table, checked by every tool at load.

`config_problems(cfg, origin)` lists what is wrong with a merged config (each problem names the key, its value and
what is allowed); `siamkpn.config.check_cfg` turns them into one ConfigError. Keys without an entry here take any
value of their type (paths, names resolved by a registry, switches). Pure Python: the search's grid
(`siamkpn.hpsearch.grid.BOUNDS`) shares `TRACK_RANGES` without importing torch or yacs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["Range", "RANGES", "CHOICES", "TRACK_RANGES", "TRAINING_SETS", "config_problems", "search_region_problem"]

# Training sub-datasets known to DATASET (pysot's prepared crop511 + json layout each).
TRAINING_SETS = ("VID", "YOUTUBEBB", "COCO", "DET", "GOT10K", "LASOT", "TRANET", "SYNTH")

Origin = Callable[[str], str]  # full key -> where its value came from, e.g. " (from --opts)" or ""


@dataclass(frozen=True)
class Range:
    """A closed (or, with `low_open` / `high_open`, open) interval of finite numbers."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        if math.isinf(self.high):
            return f"{'above' if self.low_open else 'at least'} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


_POSITIVE = Range(0.0, low_open=True)
_NON_NEGATIVE = Range(0.0)
_AT_LEAST_1 = Range(1)
_PROBABILITY = Range(0.0, 1.0)

# The tracker's hyper-parameters, also the bounds of the search's grid (siamkpn.hpsearch.grid.BOUNDS): the penalty is
# exp(-(change - 1) * PENALTY_K), WINDOW_INFLUENCE and LR are mixing weights.
TRACK_RANGES: Dict[str, Range] = {"PENALTY_K": _NON_NEGATIVE, "WINDOW_INFLUENCE": _PROBABILITY, "LR": _PROBABILITY}

RANGES: Dict[str, Range] = {
    "TRAIN.EXEMPLAR_SIZE": _AT_LEAST_1, "TRAIN.SEARCH_SIZE": _AT_LEAST_1, "TRAIN.BASE_SIZE": _NON_NEGATIVE,
    "TRAIN.STRIDE": _AT_LEAST_1, "TRAIN.OUTPUT_SIZE": _AT_LEAST_1, "TRAIN.STACK": Range(1, 3),
    "TRAIN.FOCAL_NEG": _NON_NEGATIVE, "TRAIN.EPOCH": _AT_LEAST_1, "TRAIN.START_EPOCH": _NON_NEGATIVE,
    "TRAIN.BATCH_SIZE": _AT_LEAST_1, "TRAIN.NUM_WORKERS": _NON_NEGATIVE, "TRAIN.MOMENTUM": _PROBABILITY,
    "TRAIN.WEIGHT_DECAY": _NON_NEGATIVE, "TRAIN.HM_WEIGHT": _NON_NEGATIVE, "TRAIN.OF_WEIGHT": _NON_NEGATIVE,
    "TRAIN.WH_WEIGHT": _NON_NEGATIVE, "TRAIN.PRINT_FREQ": _NON_NEGATIVE,
    "TRAIN.GRAD_CLIP": _NON_NEGATIVE,  # 0: no clipping
    "TRAIN.BASE_LR": _POSITIVE, "TRAIN.SEED": _NON_NEGATIVE,  # numpy refuses negative seeds
    "TRAIN.MAX_BAD_STEPS": _AT_LEAST_1, "TRAIN.MAX_BAD_FRACTION": _PROBABILITY, "TRAIN.MAX_WEIGHT_ABS": _POSITIVE,
    "TRAIN.HUGE_LOSS": _POSITIVE, "TRAIN.LR_WARMUP.EPOCH": _NON_NEGATIVE,
    "DATASET.NEG": _PROBABILITY, "DATASET.GRAY": _PROBABILITY,
    **{f"DATASET.{part}.{key}": rule for part in ("TEMPLATE", "SEARCH") for key, rule in (
        ("SHIFT", _NON_NEGATIVE), ("SCALE", Range(0.0, 1.0, high_open=True)),  # the crop side scales by 1 +- SCALE
        ("BLUR", _PROBABILITY), ("FLIP", _PROBABILITY), ("COLOR", _PROBABILITY))},
    "BACKBONE.LAYERS_LR": _NON_NEGATIVE, "BACKBONE.TRAIN_EPOCH": _NON_NEGATIVE,
    "KPN.HEATMAP_INIT_PROB": Range(0.0, 1.0, high_open=True),  # 0: PyTorch's initialisation
    **{f"TRACK.{key}": rule for key, rule in TRACK_RANGES.items()},
    "TRACK.TH": _PROBABILITY,  # compared with sigmoid scores
    "TRACK.EXEMPLAR_SIZE": _AT_LEAST_1, "TRACK.INSTANCE_SIZE": _AT_LEAST_1, "TRACK.BASE_SIZE": _NON_NEGATIVE,
    # s_z = sqrt((w + c(w+h)) (h + c(w+h))): a negative c can make the product negative (no crop size)
    "TRACK.CONTEXT_AMOUNT": _NON_NEGATIVE,
}
# Per training sub-dataset (DATASET.<name>.*): NUM_USE -1 means every video once.
_SUB_DATASET_RANGES: Dict[str, Range] = {"FRAME_RANGE": _NON_NEGATIVE, "NUM_USE": Range(-1)}

CHOICES: Dict[str, Tuple[str, ...]] = {"TRAIN.OPTI": ("adam", "sgd")}


def _get(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def search_region_problem(size: int, exemplar: int, stride: int) -> Optional[str]:
    """Why `size` cannot be a search region (None if it can): the tracker's score map puts the crop centre on a
    cell only when the region exceeds the exemplar by a multiple of the stride ((size - exemplar) // stride + 1
    + BASE_SIZE cells)."""
    if size > exemplar and (size - exemplar) % stride == 0:
        return None
    low = exemplar + stride * max(1, (size - exemplar) // stride)
    near = f"{low}" if size < low else f"{low} or {low + stride}"
    return f"must exceed EXEMPLAR_SIZE {exemplar} by a multiple of TRAIN.STRIDE {stride} (nearest: {near})"


def _range_problems(cfg: Any, origin: Origin) -> List[str]:
    out = []
    for key, rule in RANGES.items():
        value = _get(cfg, key)
        if value not in rule:
            out.append(f"{key} = {_show(value)}{origin(key)} must be {rule}")
    for key, allowed in CHOICES.items():
        value = _get(cfg, key)
        if value not in allowed:
            out.append(f"{key} = {_show(value)}{origin(key)} must be one of {', '.join(allowed)}")
    for name in cfg.DATASET.NAMES:
        if name not in TRAINING_SETS:
            out.append(f"DATASET.NAMES{origin('DATASET.NAMES')} lists {_show(name)}: each must be one of "
                       f"{', '.join(TRAINING_SETS)}")
            continue
        for key, rule in _SUB_DATASET_RANGES.items():
            full = f"DATASET.{name}.{key}"
            if _get(cfg, full) not in rule:
                out.append(f"{full} = {_show(_get(cfg, full))}{origin(full)} must be {rule}")
    return out


def _grid_problems(cfg: Any, origin: Origin) -> List[str]:
    """Search crops on the stride grid, the training output size that geometry gives."""
    out = []
    stride = cfg.TRAIN.STRIDE
    for node, size_key in (("TRACK", "INSTANCE_SIZE"), ("TRAIN", "SEARCH_SIZE")):
        size, exemplar = cfg[node][size_key], cfg[node].EXEMPLAR_SIZE
        problem = search_region_problem(size, exemplar, stride)
        if problem:
            key = f"{node}.{size_key}"
            out.append(f"{key} = {size}{origin(key)} {problem.replace('EXEMPLAR_SIZE', f'{node}.EXEMPLAR_SIZE')}")
    train = cfg.TRAIN
    if not out:
        expected = (train.SEARCH_SIZE - train.EXEMPLAR_SIZE) // stride + 1 + train.BASE_SIZE
        if train.OUTPUT_SIZE != expected:
            out.append(f"TRAIN.OUTPUT_SIZE = {train.OUTPUT_SIZE}{origin('TRAIN.OUTPUT_SIZE')} must be (SEARCH_SIZE - "
                       f"EXEMPLAR_SIZE) / STRIDE + 1 + BASE_SIZE = {expected}")
    return out


def _relation_problems(cfg: Any, origin: Origin) -> List[str]:
    train = cfg.TRAIN
    out = []
    if train.START_EPOCH >= train.EPOCH:
        out.append(f"TRAIN.START_EPOCH = {train.START_EPOCH}{origin('TRAIN.START_EPOCH')} must be below TRAIN.EPOCH "
                   f"{train.EPOCH}")
    if train.LR_WARMUP.WARMUP and train.LR_WARMUP.EPOCH >= train.EPOCH:
        out.append(f"TRAIN.LR_WARMUP.EPOCH = {train.LR_WARMUP.EPOCH}{origin('TRAIN.LR_WARMUP.EPOCH')} must be below "
                   f"TRAIN.EPOCH {train.EPOCH} (or set TRAIN.LR_WARMUP.WARMUP False)")
    return out


def config_problems(cfg: Any, origin: Origin = lambda key: "") -> List[str]:
    """Every value of `cfg` outside its range or relation, one message each (empty: the config is valid).

    Relations are checked only between keys whose own ranges hold, so each message has one cause.
    """
    problems = _range_problems(cfg, origin)
    if problems:
        return problems
    return _grid_problems(cfg, origin) + _relation_problems(cfg, origin)
