"""One worker's loop: enqueue the grid, claim batches, evaluate, tell; refine (level 2) once level 1 settles.

Any number of workers (processes, GPUs, machines) run this loop on the same study; each returns when
no trial of the search is WAITING or RUNNING any more. A trial RUNNING in another worker is waited for
(it either completes or goes stale and is retried), because level 2 and the summary need every result.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from siamkpn.hpsearch.grid import Point, SearchSpace
from siamkpn.hpsearch.notice import Notices
from siamkpn.hpsearch.study import (
    Claim,
    Heartbeat,
    claim_batch,
    drop_duplicates,
    enqueue_missing,
    keyed_trials,
    tell_failure,
    tell_value,
)
from toolkit.errors import BadInput

__all__ = ["WorkerOptions", "WorkerStats", "SearchError", "run_worker", "best_points"]


class SearchError(BadInput, RuntimeError):
    """The search cannot go on as asked (e.g. level 2 requested before level 1 is complete)."""


Evaluate = Callable[[Sequence[Point]], Dict[str, Dict[str, float]]]


@dataclass
class WorkerOptions:
    """How a worker takes part in the search."""

    metric: str
    batch: int = 8
    levels: Sequence[int] = (1, 2)
    refine_top: int = 3
    refine_factor: float = 0.5
    poll: float = 10.0
    progress: bool = True
    heartbeat: float = 60.0  # the storage's heartbeat interval and grace period, for the waiting note
    grace: Optional[float] = None  # None: optuna's default, 2 x heartbeat
    notices: Notices = field(default_factory=Notices)


@dataclass
class WorkerStats:
    """What this worker did: trials evaluated, duplicates skipped, failures, level-2 points it enqueued."""

    evaluated: List[str] = field(default_factory=list)
    duplicates: int = 0
    failed: int = 0
    enqueued: Dict[int, int] = field(default_factory=dict)


def best_points(study: optuna.Study, keys: Sequence[str], n: int) -> List[Point]:
    """The n best COMPLETE points among `keys` (ties: lower epoch, then smaller values first)."""
    wanted = set(keys)
    rows = [t for t in keyed_trials(study, (TrialState.COMPLETE,)) if t.user_attrs["key"] in wanted]
    points = {t.user_attrs["key"]: (t.value, Point.from_params(t.user_attrs["point"])) for t in rows}
    ranked = sorted(points.values(), key=lambda vp: (-vp[0], vp[1].epoch, vp[1].name))
    return [p for _, p in ranked[:n]]


def _states(study: optuna.Study, keys: set) -> Dict[str, set]:
    """For each key of the search: the set of its trials' states."""
    out: Dict[str, set] = {}
    for t in keyed_trials(study):
        if t.user_attrs["key"] in keys:
            out.setdefault(t.user_attrs["key"], set()).add(t.state)
    return out


def _busy(states: Dict[str, set]) -> int:
    return sum(1 for s in states.values() if s & {TrialState.WAITING, TrialState.RUNNING})


def _say_waiting(states: Dict[str, set], opts: WorkerOptions) -> None:
    """Why the worker sleeps: trials other workers hold (they complete, or go stale and come back)."""
    running = sum(1 for s in states.values() if TrialState.RUNNING in s)
    queued = sum(1 for s in states.values() if TrialState.WAITING in s and TrialState.RUNNING not in s)
    grace = opts.grace if opts.grace is not None else 2 * opts.heartbeat
    text = f"waiting for {running} trials held by other workers"
    if queued:
        text += f" and {queued} queued for the other level"
    opts.notices.say("stale", f"{text} (heartbeat every {opts.heartbeat:g} s; the trials of a worker silent for "
                              f"{grace:g} s are retried here)")


def _check_completed(study: optuna.Study, keys: set) -> None:
    """SearchError when no configuration of the search completed (every trial failed), with a reason."""
    completed = [t for t in keyed_trials(study, (TrialState.COMPLETE,)) if t.user_attrs["key"] in keys]
    if completed or not keys:
        return
    failed = [t for t in keyed_trials(study, (TrialState.FAIL,)) if t.user_attrs["key"] in keys]
    reason = ""
    if failed:
        last = failed[-1]
        reason = f"; {len(failed)} trials failed, e.g. {last.user_attrs['key']}: {last.user_attrs.get('error', '?')}"
    raise SearchError(f"no configuration of the search completed{reason}")


def _evaluate(study: optuna.Study, claims: List[Claim], evaluate: Evaluate, opts: WorkerOptions,
              heartbeat: Heartbeat, stats: WorkerStats) -> None:
    try:
        results = evaluate([c.point for c in claims])
    except BaseException as e:
        try:
            for c in claims:
                tell_failure(study, c, f"{type(e).__name__}: {e}", heartbeat)
        except Exception:  # noqa: BLE001 - e.g. the same full disk: the evaluation's error (naming its file) is the
            pass  # one to report; the untold claims go stale and are retried by the next run
        stats.failed += len(claims)
        raise
    for c in claims:
        metrics = results[c.point.name]
        value = metrics.get(opts.metric, math.nan)
        if not math.isfinite(value):
            tell_failure(study, c, f"{opts.metric} is {value} (too few frames for the metric's interval?)", heartbeat)
            tqdm.write(f"warning: {c.point.name}: {opts.metric} is {value}; trial {c.number} marked FAIL")
            stats.failed += 1
        elif tell_value(study, c, value, metrics, heartbeat):
            stats.evaluated.append(c.point.name)
        else:
            tqdm.write(f"warning: trial {c.number} ({c.point.name}) was closed by another worker meanwhile; "
                       "its retry will reuse the result files")


def run_worker(study: optuna.Study, space: SearchSpace, evaluate: Evaluate, opts: WorkerOptions,
               heartbeat: Heartbeat) -> WorkerStats:
    """Work on the search until every point of it is settled; returns this worker's statistics."""
    stats = WorkerStats()
    keys1 = {p.name for p in space.iter_level1()}  # names only: the grid itself is enumerated, never held
    keys2: set = set()
    if 1 in opts.levels:
        stats.enqueued[1] = enqueue_missing(study, space.iter_level1(), level=1, total=len(keys1),
                                            progress=opts.progress)
    refined = 2 not in opts.levels
    bar = tqdm(total=len(keys1), desc="hp search", unit="cfg", disable=not opts.progress, dynamic_ncols=True)
    bar.update(sum(1 for s in _states(study, keys1).values() if TrialState.COMPLETE in s))
    while True:
        claims = claim_batch(study, opts.batch, opts.levels, heartbeat)
        if claims:
            kept = drop_duplicates(study, claims, heartbeat)
            stats.duplicates += len(claims) - len(kept)
            if kept:
                bar.set_postfix_str(f"e{kept[0].point.epoch} x{len(kept)}")
                before = len(stats.evaluated)
                _evaluate(study, kept, evaluate, opts, heartbeat, stats)
                bar.update(len(stats.evaluated) - before)
            continue
        states = _states(study, keys1 | keys2)
        if _busy(states):  # held by other workers: wait for them to finish or go stale
            _say_waiting(states, opts)
            time.sleep(opts.poll)
            continue
        if not refined:
            refined = True
            missing = [k for k in keys1 if TrialState.COMPLETE not in states.get(k, set())]
            if missing and 1 not in opts.levels:
                raise SearchError(f"level 1 is incomplete ({len(keys1) - len(missing)} of {len(keys1)} "
                                   "configurations done); run --level 1 (or both) first")
            if missing:
                tqdm.write(f"warning: {len(missing)} level-1 configurations failed; refining around the others")
            centres = best_points(study, sorted(keys1), opts.refine_top)
            level2 = space.refine(centres, opts.refine_factor)
            keys2 = {p.name for p in level2}
            stats.enqueued[2] = enqueue_missing(study, level2, level=2, total=len(level2), progress=opts.progress)
            bar.reset(total=len(level2))
            bar.set_description("hp search (level 2)")
            bar.update(sum(1 for s in _states(study, keys2).values() if TrialState.COMPLETE in s))
            continue
        break
    bar.close()
    _check_completed(study, keys1 | keys2)
    return stats

