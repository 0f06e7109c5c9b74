"""Tables, verdict and Markdown report of `scripts/quickstart.py` (plain Python: no torch, no siamkpn).

Metrics arrive as `tools/eval.py --json` writes them: {tracker: {metric: value}}.
"""
from __future__ import annotations

import math
import os
from typing import List, Mapping, Optional, Sequence, Tuple

__all__ = ["HIGHER_IS_BETTER", "METRIC_LABELS", "comparison_rows", "format_table", "learning_verdict",
           "write_report", "format_seconds"]

Metrics = Mapping[str, Mapping[str, float]]

# Direction of each metric of tools/eval.py --json (one-pass and VOT benchmarks).
HIGHER_IS_BETTER = {"success_auc": True, "precision": True, "norm_precision": True, "eao": True,
                    "accuracy": True, "robustness": False, "lost_number": False}
METRIC_LABELS = {"success_auc": "Success (AUC)", "precision": "Precision (20 px)",
                 "norm_precision": "Norm. precision", "eao": "EAO", "accuracy": "Accuracy",
                 "robustness": "Robustness", "lost_number": "Lost"}


def _fmt(value: Optional[float], metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.0f}" if metric == "lost_number" else f"{value:.3f}"


def comparison_rows(metrics: Metrics, trackers: Sequence[str], names: Optional[Sequence[str]] = None
                    ) -> List[Tuple[str, List[Optional[float]], Optional[float]]]:
    """(metric, value per tracker, last minus first) for every metric of the first tracker, in file order."""
    missing = [t for t in trackers if t not in metrics]
    if missing:
        raise KeyError(f"no metrics for tracker(s) {missing}; the evaluation has {sorted(metrics)}")
    names = list(names or metrics[trackers[0]].keys())
    rows = []
    for name in names:
        values = [metrics[t].get(name) for t in trackers]
        delta = None
        if len(values) > 1 and values[0] is not None and values[-1] is not None:
            delta = float(values[-1]) - float(values[0])
            delta = None if math.isnan(delta) else delta
        rows.append((name, values, delta))
    return rows


def format_table(title: str, metrics: Metrics, trackers: Sequence[str], markdown: bool = False) -> str:
    """A side-by-side table (metrics as rows, trackers as columns, plus the change first -> last)."""
    rows = comparison_rows(metrics, trackers)
    header = ["metric", *trackers, "change"]
    body = []
    for name, values, delta in rows:
        arrow = ""
        if delta is not None and name in HIGHER_IS_BETTER and delta != 0:
            arrow = " (better)" if (delta > 0) == HIGHER_IS_BETTER[name] else " (worse)"
        change = "n/a" if delta is None else (f"{delta:+.0f}" if name == "lost_number" else f"{delta:+.3f}") + arrow
        body.append([METRIC_LABELS.get(name, name), *(_fmt(v, name) for v in values), change])
    if markdown:
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [title, sep, "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |", sep]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in body]
    lines.append(sep)
    return "\n".join(lines)


def learning_verdict(ope: Metrics, vot: Metrics, untrained: str, trained: str, min_auc_gain: float
                     ) -> Tuple[bool, str]:
    """(passed, sentence): did training raise success AUC by `min_auc_gain` and EAO at all?"""
    auc_gain = ope[trained]["success_auc"] - ope[untrained]["success_auc"]
    eao_gain = vot[trained]["eao"] - vot[untrained]["eao"]
    passed = auc_gain >= min_auc_gain and eao_gain > 0
    verb = "learned" if passed else "did NOT learn enough"
    return passed, (f"The model {verb}: success AUC {ope[untrained]['success_auc']:.3f} -> "
                    f"{ope[trained]['success_auc']:.3f} ({auc_gain:+.3f}, expected >= {min_auc_gain:+.3f}), "
                    f"EAO {vot[untrained]['eao']:.3f} -> {vot[trained]['eao']:.3f} ({eao_gain:+.3f}).")


def format_seconds(seconds: float) -> str:
    """'1 min 05 s' style duration."""
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def write_report(path: str, *, settings: Mapping[str, object], commands: Sequence[str],
                 timings: Mapping[str, float], tables: Mapping[str, Tuple[Metrics, Sequence[str]]],
                 plots: Sequence[str], verdict: str, notes: Sequence[str] = (), embed: Sequence[str] = ()) -> str:
    """Write the Markdown report (settings, commands, timings, tables, plots) to `path`; returns it.

    Plots whose file name is in `embed` are shown inline; every plot is linked."""
    root = os.path.dirname(os.path.abspath(path))
    total = sum(timings.values())
    lines = ["# SiamKPN quick start report", "", verdict, "", "## What ran", ""]
    lines += [f"- {key}: `{value}`" for key, value in settings.items()]
    lines += ["", "Commands (in order):", "", "```"] + list(commands) + ["```", "", "## Timings", "",
                                                                        "| stage | time |", "|---|---|"]
    lines += [f"| {stage} | {format_seconds(sec)} |" for stage, sec in timings.items()]
    lines += [f"| **total** | **{format_seconds(total)}** |", "", "## Results (held-out synthetic benchmarks)", ""]
    for title, (metrics, trackers) in tables.items():
        lines += [format_table(title, metrics, trackers, markdown=True), ""]
    lines += ["## Plots", ""]
    for plot in plots:
        if os.path.basename(plot) in embed:
            lines += [f"![{os.path.relpath(plot, root)}]({os.path.relpath(plot, root)})", ""]
    lines += [f"- [{os.path.relpath(p, root)}]({os.path.relpath(p, root)})" for p in plots] or ["(none)"]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path
