"""Headless PNG plots of evaluation results: success / precision curves (overall and per attribute), EAO ranking.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend switch), so plotting
works without a display and does not disturb an interactive session.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from toolkit.atomic import atomic_write
from toolkit.evaluation.got10k import GOT10K_THRESHOLDS
from toolkit.evaluation.ope import NORM_PRECISION_THRESHOLDS, PRECISION_INDEX, PRECISION_THRESHOLDS, SUCCESS_THRESHOLDS

__all__ = ["plot_curves", "plot_ope", "plot_eao_ranking", "plot_got10k", "plot_reports"]

PathLike = Union[str, Path]


def _save(fig: Figure, path: PathLike, tight: bool = False) -> Path:
    """Render ``fig`` as PNG in memory, then write it atomically (a full disk names the plot, leaves no half PNG)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight" if tight else None)  # a tight box: a second draw
    atomic_write(path, buf.getvalue())
    return Path(path)


def plot_curves(x: np.ndarray, curves: Mapping[str, np.ndarray], scores: Mapping[str, float], path: PathLike, *,
                title: str, xlabel: str, ylabel: str, score_fmt: str = "[{:.3f}]") -> Path:
    """One line per tracker (legend 'name [score]', best score first) saved as a PNG."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    order = sorted(curves, key=lambda t: scores[t], reverse=True)
    styles = ["-", "--", "-.", ":"]
    for i, t in enumerate(order):
        ax.plot(x, curves[t], styles[(i // 10) % len(styles)], linewidth=2,
                label=f"{t} " + score_fmt.format(scores[t]))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(float(x[0]), float(x[-1])), ylim=(0, 1.02))
    ax.grid(True, alpha=0.4)
    if order:
        ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_ope(summaries: Mapping[str, Mapping[str, object]], out_dir: PathLike, dataset_name: str,
             attributes: Optional[Mapping[str, Sequence[str]]] = None) -> List[Path]:
    """Success and precision plots, overall and for each attribute's videos; normalised precision overall."""
    groups: Dict[str, Optional[Sequence[str]]] = {"ALL": None}
    for attr, videos in (attributes or {}).items():
        if attr != "ALL":
            groups[attr] = videos
    kinds = [("success", SUCCESS_THRESHOLDS, "Overlap threshold", "Success rate", "Success plots of OPE"),
             ("precision", PRECISION_THRESHOLDS, "Location error threshold", "Precision",
              "Precision plots of OPE"),
             ("norm_precision", NORM_PRECISION_THRESHOLDS, "Normalized location error threshold", "Precision",
              "Normalized precision plots of OPE")]
    paths = []
    for attr, videos in groups.items():
        for key, x, xlabel, ylabel, title in kinds if attr == "ALL" else kinds[:2]:
            curves, scores = {}, {}
            for t, s in summaries.items():
                per_video = s["per_video"]
                names = [v for v in (videos if videos is not None else per_video) if v in per_video]
                if not names:
                    continue
                curves[t] = np.mean([per_video[v][key] for v in names], axis=0)
                scores[t] = float(np.mean(curves[t])) if key == "success" else float(curves[t][PRECISION_INDEX])
            if curves:
                suffix = "" if attr == "ALL" else f" - {attr}"
                paths.append(plot_curves(x, curves, scores, Path(out_dir) / f"{key}_plot_{attr}.png",
                                         title=f"{title} on {dataset_name}{suffix}", xlabel=xlabel, ylabel=ylabel))
    return paths


def plot_eao_ranking(eao: Mapping[str, Mapping[str, float]], path: PathLike, dataset_name: str) -> Path:
    """Trackers ranked by EAO ('all'), with per-tag EAO as markers when present."""
    order = sorted(eao, key=lambda t: eao[t].get("all", np.nan), reverse=True)
    tags = [t for t in next(iter(eao.values())) if t != "all"] if eao else []
    fig = Figure(figsize=(max(5, 0.6 * len(order) + 3), 4.5))
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(order))
    ax.bar(x, [eao[t].get("all", np.nan) for t in order], color="tab:blue", alpha=0.7, label="all")
    for i, tag in enumerate(tags):
        ax.plot(x, [eao[t][tag] for t in order], "o", markersize=5, label=tag, color=f"C{(i + 1) % 10}")
    for xi, t in zip(x, order):
        ax.text(xi, 0.01, f"{eao[t].get('all', np.nan):.3f}", ha="center", va="bottom", fontsize=8, color="white")
    ax.set_xticks(x)
    ax.set_xticklabels(order, rotation=30, ha="right")
    ax.set(title=f"Expected average overlap on {dataset_name}", ylabel="EAO", ylim=(0, 1))
    ax.grid(True, axis="y", alpha=0.4)
    ax.legend(loc="upper right", fontsize=7)
    return _save(fig, path, tight=True)


def plot_got10k(results: Mapping[str, Mapping[str, object]], path: PathLike, dataset_name: str) -> Path:
    """GOT-10k success plot (101 thresholds), legend AO."""
    return plot_curves(GOT10K_THRESHOLDS, {t: r["success_curve"] for t, r in results.items()},
                       {t: r["ao"] for t, r in results.items()}, path, title=f"Success plots on {dataset_name}",
                       xlabel="Overlap threshold", ylabel="Success rate")


def plot_reports(reports: Mapping[str, Mapping[str, object]], out_dir: PathLike, dataset) -> List[Path]:
    """The plots that fit a runner report set (see `toolkit.evaluation.runner.evaluate`)."""
    if not reports:
        return []
    kind = next(iter(reports.values()))["kind"]
    details = {t: r["details"] for t, r in reports.items()}
    out_dir = Path(out_dir)
    if kind == "ope":
        return plot_ope(details, out_dir, dataset.name, getattr(dataset, "attr", None))
    if kind == "vot":
        return [plot_eao_ranking({t: d["eao"] for t, d in details.items()}, out_dir / "eao_rank.png", dataset.name)]
    if kind == "got10k":
        return [plot_got10k(details, out_dir / "success_plot.png", dataset.name)]
    return []
