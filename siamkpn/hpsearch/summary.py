"""Report a search: best configuration per epoch and the top N overall (printed, CSV, JSON), and PNG plots of
the metric over each pair of parameters (the best over the other parameters)."""
from __future__ import annotations

import csv
import io
import itertools
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import optuna
from optuna.trial import TrialState

from siamkpn.hpsearch.grid import PARAMS, Point, format_value
from siamkpn.hpsearch.study import keyed_trials
from toolkit.atomic import atomic_write, atomic_write_json, atomic_write_stream

__all__ = ["Row", "collect", "rank", "best_per_epoch", "format_table", "summary_dict", "write_summary", "plot_pairs"]

AXES = ("epoch", *PARAMS, "search_region")


@dataclass
class Row:
    """One evaluated configuration."""

    tracker: str
    epoch: int
    penalty_k: float
    window_influence: float
    lr: float
    search_region: Optional[int]
    level: int
    value: float
    trial: int
    metrics: Dict[str, float] = field(default_factory=dict)


def collect(study: optuna.Study) -> List[Row]:
    """Every COMPLETE search trial of the study as a Row (one per configuration)."""
    rows: Dict[str, Row] = {}
    for t in keyed_trials(study, (TrialState.COMPLETE,)):
        p = Point.from_params(t.user_attrs["point"])
        rows.setdefault(p.name, Row(p.name, p.epoch, p.penalty_k, p.window_influence, p.lr, p.search_region,
                                    int(t.user_attrs.get("level", 1)), float(t.value), t.number,
                                    dict(t.user_attrs.get("metrics", {}))))
    return list(rows.values())


def rank(rows: Sequence[Row]) -> List[Row]:
    """Best first; ties broken by epoch, then by name (deterministic)."""
    return sorted(rows, key=lambda r: (-r.value, r.epoch, r.tracker))


def best_per_epoch(rows: Sequence[Row]) -> List[Row]:
    """The best row of each epoch, by epoch."""
    best: Dict[int, Row] = {}
    for r in rank(rows):
        best.setdefault(r.epoch, r)
    return [best[e] for e in sorted(best)]


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format_value(v) if not math.isnan(v) else "nan"
    return str(v)


def format_table(rows: Sequence[Row], metric: str, title: str) -> str:
    """A plain text table: tracker, epoch, parameters, level and the metric."""
    head = ["tracker", "epoch", "penalty_k", "window_influence", "lr", "search_region", "level", metric]
    body = [[r.tracker, r.epoch, r.penalty_k, r.window_influence, r.lr, r.search_region, r.level, f"{r.value:.4f}"]
            for r in rows]
    cells = [head] + [[_cell(v) if not isinstance(v, str) else v for v in row] for row in body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    line = "-" * (sum(widths) + 3 * (len(widths) - 1) + 4)
    fmt = "| " + " | ".join("{:<%d}" % w for w in widths) + " |"
    out = [title, line, fmt.format(*head), line] + [fmt.format(*row) for row in cells[1:]] + [line]
    return "\n".join(out)


def summary_dict(rows: Sequence[Row], metric: str, top: int, **info) -> Dict:
    """{'metric', 'count', 'best', 'best_per_epoch', 'top', ...info} (rows as dicts)."""
    ranked = rank(rows)
    return {"metric": metric, **info, "count": len(ranked), "best": asdict(ranked[0]) if ranked else None,
            "best_per_epoch": [asdict(r) for r in best_per_epoch(ranked)], "top": [asdict(r) for r in ranked[:top]]}


def _nan_to_none(value):
    """The same structure with every float NaN replaced by None (JSON null)."""
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def write_summary(rows: Sequence[Row], metric: str, folder: str, top: int, **info) -> Dict[str, str]:
    """Write ``hp_search_summary.csv`` (every configuration, best first) and ``hp_search_summary.json``."""
    ranked = rank(rows)
    extra = sorted({m for r in ranked for m in r.metrics} - {metric})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", "tracker", *AXES, "level", metric, *extra, "trial"])
    for i, r in enumerate(ranked, 1):
        writer.writerow([i, r.tracker, r.epoch, r.penalty_k, r.window_influence, r.lr,
                         "" if r.search_region is None else r.search_region, r.level, repr(r.value),
                         *(repr(r.metrics.get(m, math.nan)) for m in extra), r.trial])
    paths = {ext: os.path.join(folder, f"hp_search_summary.{ext}") for ext in ("csv", "json")}
    atomic_write(paths["csv"], buf.getvalue())
    # a metric that could not be computed (NaN) is JSON null, as in siamkpn-eval --json
    atomic_write_json(paths["json"], _nan_to_none(summary_dict(ranked, metric, top, **info)))
    return paths


def plot_pairs(rows: Sequence[Row], metric: str, folder: str) -> List[str]:
    """One PNG per pair of searched parameters: the best metric over the other parameters, per cell."""
    if not rows:
        return []
    # A Figure on its own Agg canvas: no pyplot, no global backend switch, nothing left open in the caller
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    axes = [a for a in AXES if len({getattr(r, a) for r in rows}) > 1]
    paths = []
    for a, b in itertools.combinations(axes, 2):
        xs, ys = sorted({getattr(r, a) for r in rows}), sorted({getattr(r, b) for r in rows})
        grid = np.full((len(ys), len(xs)), np.nan)
        for r in rows:
            i, j = ys.index(getattr(r, b)), xs.index(getattr(r, a))
            grid[i, j] = r.value if np.isnan(grid[i, j]) else max(grid[i, j], r.value)
        size = (min(2.5 + 0.55 * len(xs), 24), min(1.5 + 0.45 * len(ys), 18))
        fig = Figure(figsize=size, dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(xs)), [_cell(x) for x in xs], rotation=90, fontsize=7)
        ax.set_yticks(range(len(ys)), [_cell(y) for y in ys], fontsize=7)
        ax.set_xlabel(a)
        ax.set_ylabel(b)
        ax.set_title(f"best {metric} over the other parameters", fontsize=9)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        path = os.path.join(folder, f"hp_search_{a}_{b}.png")
        # atomic: several workers may plot at once, and a reader never sees half a file
        atomic_write_stream(path, lambda f, fig=fig: fig.savefig(f, format="png"), binary=True)
        paths.append(path)
    return paths
