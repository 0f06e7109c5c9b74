"""The search space: parameter ranges, the level-1 grid over snapshot epochs, and the level-2 refinement.

A configuration is a :class:`Point` (snapshot epoch + PENALTY_K, WINDOW_INFLUENCE, LR and optionally the
search region INSTANCE_SIZE). Its :attr:`Point.name` (``checkpoint_e12_pk-0.100_wi-0.540_lr-0.590`` and
``_sr-255`` when the region is searched) is both the result folder and the identity used to never
evaluate a configuration twice. Pure Python + numpy: no torch, no optuna.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from siamkpn.config_rules import TRACK_RANGES
from toolkit.errors import BadValue

__all__ = ["PARAMS", "BOUNDS", "DECIMALS", "Point", "SearchSpace", "parse_range", "parse_int_range", "format_value",
           "range_count", "int_range_count", "refine_count"]

PARAMS = ("penalty_k", "window_influence", "lr")
# Values a refinement step may reach: the config's ranges of TRACK.PENALTY_K, WINDOW_INFLUENCE and LR (one rule).
BOUNDS = {p: (TRACK_RANGES[p.upper()].low, TRACK_RANGES[p.upper()].high) for p in PARAMS}
DECIMALS = 6  # grid values are rounded to this many decimals (no float noise in names or keys)
_SHORT = {"penalty_k": "pk", "window_influence": "wi", "lr": "lr"}


def format_value(value: float) -> str:
    """At least 3 decimals, more only when needed: 0.1 -> '0.100', 0.0125 -> '0.0125'."""
    text = f"{round(float(value), DECIMALS):.{DECIMALS}f}".rstrip("0")
    decimals = len(text.split(".")[1])
    return text + "0" * max(0, 3 - decimals)


@dataclass(frozen=True)
class Point:
    """One configuration to evaluate: a snapshot epoch and the tracker's hyper-parameters."""

    epoch: int
    penalty_k: float
    window_influence: float
    lr: float
    search_region: Optional[int] = None  # None: the config's TRACK.INSTANCE_SIZE

    @property
    def name(self) -> str:
        """Result folder / identity, e.g. ``checkpoint_e12_pk-0.100_wi-0.540_lr-0.590[_sr-255]``."""
        parts = [f"checkpoint_e{self.epoch}"] + [f"{_SHORT[p]}-{format_value(getattr(self, p))}" for p in PARAMS]
        if self.search_region is not None:
            parts.append(f"sr-{self.search_region}")
        return "_".join(parts)

    @property
    def group(self) -> tuple:
        """Points of one group share a model and a search region, so they can be tracked in one batch."""
        return (self.epoch, self.search_region)

    def params(self) -> Dict[str, float]:
        """{'epoch', 'penalty_k', 'window_influence', 'lr'[, 'search_region']} (JSON-friendly)."""
        out = {"epoch": int(self.epoch), **{p: float(getattr(self, p)) for p in PARAMS}}
        if self.search_region is not None:
            out["search_region"] = int(self.search_region)
        return out

    @classmethod
    def from_params(cls, params: Dict[str, float]) -> "Point":
        """Inverse of :meth:`params` (values rounded to DECIMALS)."""
        try:
            sr = params.get("search_region")
            return cls(int(params["epoch"]), *(round(float(params[p]), DECIMALS) for p in PARAMS),
                       None if sr is None else int(sr))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a search point: {params!r} ({e})") from None

    def replace(self, **changes) -> "Point":
        """A copy with some values changed (rounded)."""
        values = {**self.params(), "search_region": self.search_region, **changes}
        return Point.from_params(values)


def _split(text: str, flag: str) -> List[str]:
    parts = [s.strip() for s in str(text).split(",")]
    if len(parts) not in (1, 3) or not all(parts):
        raise BadValue(f"{flag}: expected 'start,stop,step' (numpy.arange) or a single value, got {text!r}")
    return parts


def _numbers(text: str, flag: str) -> List[float]:
    """'start,stop,step' or 'v' as finite floats (the one reading of a float range)."""
    parts = _split(text, flag)
    try:
        nums = [float(v) for v in parts]
    except ValueError:
        raise BadValue(f"{flag}: not numbers: {text!r}") from None
    if not all(math.isfinite(v) for v in nums):
        raise BadValue(f"{flag}: values must be finite, got {text!r}")
    return nums


def parse_range(text: str, flag: str = "range", bounds: Optional[Tuple[float, float]] = None) -> List[float]:
    """'start,stop,step' -> the values of numpy.arange(start, stop, step), rounded; 'v' -> [v].

    The stop stays exclusive even where float noise would make arange reach it (0.3,0.8,0.1 ends at 0.7).
    With `bounds` (low, high), every value must lie in [low, high] (e.g. BOUNDS[param]).
    """
    nums = _numbers(text, flag)
    if len(nums) == 1:
        values = [round(nums[0], DECIMALS)]
    else:
        start, stop, step = nums
        if step <= 0:
            raise BadValue(f"{flag}: step must be positive, got {text!r}")
        stop_r = round(stop, DECIMALS)
        values = sorted({round(float(v), DECIMALS) for v in np.arange(start, stop, step)} - {stop_r})
        values = [v for v in values if v < stop_r]
        if not values:
            raise BadValue(f"{flag}: the range {text!r} is empty (start must be below stop)")
    if bounds is not None:
        low, high = bounds
        outside = [v for v in values if not low <= v <= high]
        if outside:
            where = f"at least {low:g}" if math.isinf(high) else f"in [{low:g}, {high:g}]"
            raise BadValue(f"{flag}: values must be {where}; {text!r} gives {', '.join(f'{v:g}' for v in outside)}")
    return values


def _int_range(text: str, flag: str) -> range:
    """'start,stop,step' of integers -> range(start, stop, step); 'v' -> range(v, v + 1); nothing is made."""
    parts = _split(text, flag)
    try:
        nums = [int(v) for v in parts]
    except ValueError:
        raise BadValue(f"{flag}: expected integers, got {text!r}") from None
    if len(nums) == 1:
        return range(nums[0], nums[0] + 1)
    if nums[2] <= 0:
        raise BadValue(f"{flag}: step must be positive, got {text!r}")
    values = range(*nums)
    if not values:
        raise BadValue(f"{flag}: the range {text!r} is empty (start must be below stop)")
    return values


def parse_int_range(text: str, flag: str = "range") -> List[int]:
    """'start,stop,step' of integers -> list(range(start, stop, step)); 'v' -> [v]."""
    return list(_int_range(text, flag))


def range_count(text: str, flag: str = "range") -> int:
    """How many values parse_range(text) gives, counted without making them (a grid is sized before it is built).

    numpy.arange(start, stop, step) has ceil((stop - start) / step) values: start, start + step, then start + i * d
    with d = (start + step) - start, as numpy fills them. Rounded to DECIMALS they never decrease, so the ones left
    below the exclusive stop are found by bisection; a step under 10**-DECIMALS merges neighbours, and then every
    rounded value between the first and the last occurs. Raises parse_range's errors except the bounds check.
    """
    nums = _numbers(text, flag)
    if len(nums) == 1:
        return 1
    start, stop, step = nums
    if step <= 0:
        raise BadValue(f"{flag}: step must be positive, got {text!r}")
    quotient = (stop - start) / step
    if not math.isfinite(quotient):
        raise BadValue(f"{flag}: the range {text!r} has too many values to count")
    n, d, stop_r = max(0, math.ceil(quotient)), (start + step) - start, round(stop, DECIMALS)

    def value(i: int) -> float:
        return round(start + step if i == 1 else start + i * d, DECIMALS)

    lo, hi = 0, n  # the first index whose rounded value reaches the stop
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if value(mid) < stop_r else (lo, mid)
    if lo == 0:
        raise BadValue(f"{flag}: the range {text!r} is empty (start must be below stop)")
    if d * 10 ** DECIMALS >= 1:
        return lo
    return round((value(lo - 1) - value(0)) * 10 ** DECIMALS) + 1


def int_range_count(text: str, flag: str = "range") -> int:
    """How many values parse_int_range(text) gives (len of a range object: nothing is made)."""
    return len(_int_range(text, flag))


def refine_count(centres: int, refined_params: int) -> int:
    """At most how many level-2 points `centres` centres give when `refined_params` parameters have several values
    (each centre's -h/0/+h neighbours, the centre itself excluded)."""
    return centres * (3 ** refined_params - 1)


def _step(values: Sequence[float]) -> Optional[float]:
    """The grid spacing of sorted values (smallest gap), None for a single value."""
    if len(values) < 2:
        return None
    return round(min(b - a for a, b in zip(values, values[1:])), DECIMALS)


@dataclass
class SearchSpace:
    """Level 1: every epoch x every parameter value; level 2: a finer grid around the best level-1 points."""

    epochs: List[int]
    penalty_k: List[float]
    window_influence: List[float]
    lr: List[float]
    search_region: List[Optional[int]] = field(default_factory=lambda: [None])

    def __post_init__(self) -> None:
        for name in ("epochs", *PARAMS, "search_region"):
            if not getattr(self, name):
                raise ValueError(f"search space: no values for {name}")
        self.epochs = sorted(set(int(e) for e in self.epochs))
        for p in PARAMS:
            setattr(self, p, sorted({round(float(v), DECIMALS) for v in getattr(self, p)}))

    def size(self) -> int:
        """The number of level-1 points (without making them)."""
        return math.prod(len(getattr(self, name)) for name in ("epochs", "search_region", *PARAMS))

    def iter_level1(self) -> Iterator[Point]:
        """The coarse grid one point at a time, epoch-major (one snapshot's points are contiguous)."""
        combos = itertools.product(self.epochs, self.search_region, self.penalty_k, self.window_influence, self.lr)
        return (Point(e, pk, wi, lr, sr) for e, sr, pk, wi, lr in combos)

    def level1(self) -> List[Point]:
        """The coarse grid as a list (for small grids; the search enumerates :meth:`iter_level1`)."""
        return list(self.iter_level1())

    def steps(self) -> Dict[str, Optional[float]]:
        """Level-1 spacing per parameter (None where the parameter has a single value: not refined)."""
        return {p: _step(getattr(self, p)) for p in PARAMS}

    def refine(self, centres: Iterable[Point], factor: float = 0.5) -> List[Point]:
        """Level 2: each centre's neighbours at `factor` x the level-1 step (same epoch and region).

        Every parameter searched with more than one value moves by -h, 0, +h (h = factor x step); values
        outside BOUNDS are dropped; the centre itself is not repeated.
        """
        if not 0 < factor < 1:
            raise ValueError(f"refinement factor must be in (0, 1), got {factor}")
        out: Dict[str, Point] = {}
        steps = self.steps()
        for c in centres:
            axes = []
            for p in PARAMS:
                v = getattr(c, p)
                if steps[p] is None:
                    axes.append([v])
                    continue
                h = steps[p] * factor
                low, high = BOUNDS[p]
                axes.append([round(x, DECIMALS) for x in (v - h, v, v + h)
                             if low <= round(x, DECIMALS) <= high])
            for pk, wi, lr in itertools.product(*axes):
                point = Point(c.epoch, pk, wi, lr, c.search_region)
                if point != c:
                    out.setdefault(point.name, point)
        return sorted(out.values(), key=lambda q: (q.epoch, q.search_region or 0, q.penalty_k,
                                                   q.window_influence, q.lr))
