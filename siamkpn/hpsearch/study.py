"""The work queue: an Optuna study in an RDB storage (SQLite file, PostgreSQL, MySQL) shared by every worker.

Each configuration is an enqueued trial (user attrs ``key`` = :attr:`Point.name`, ``level``, ``point``).
A worker claims WAITING trials atomically (WAITING -> RUNNING, the same step ``Study.ask`` uses, but
restricted to one snapshot and never creating a sampled trial), keeps their heartbeats fresh while it
works and tells the value. A crashed worker's trials go stale after the grace period; the next
``fail_stale_trials`` marks them FAIL and the retry callback enqueues them again. Two workers that
enqueue the same grid at once make duplicate trials: a claimed trial whose key has a lower-numbered
trial WAITING, RUNNING or COMPLETE is a duplicate and is closed as PRUNED, so each key is evaluated once.
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from siamkpn.hpsearch.grid import Point
from siamkpn.hpsearch.inputs import record_study_inputs
from siamkpn.hpsearch.storage import (
    default_storage_url,
    open_storage,
    retry_race,
    retry_storage,
    shown_url,
    storage_errors,
)

__all__ = ["Claim", "Heartbeat", "default_storage_url", "open_storage", "open_study", "enqueue_missing",
           "claim_batch", "drop_duplicates", "tell_value", "tell_failure", "keyed_trials", "retry_storage",
           "LIVE_STATES"]

LIVE_STATES = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
ENQUEUE_BAR_MIN = 500  # points from which enqueueing shows a progress bar (about 10 s at 40-80 trials/s)


def open_study(storage: optuna.storages.RDBStorage, study_name: str, attrs: Dict[str, Any]) -> optuna.Study:
    """Create or load the study (maximised); `attrs` (dataset, metric, the inputs) must match what it recorded.

    An InputsError names every difference; attrs the study has not recorded yet are recorded.
    """
    sampler = optuna.samplers.RandomSampler()  # never consulted: every trial is enqueued
    with storage_errors(storage.url):
        study = retry_race(lambda: optuna.create_study(storage=storage, study_name=study_name, direction="maximize",
                                                       sampler=sampler, load_if_exists=True))
        record_study_inputs(study, attrs, shown_url(storage.url))
    return study


def _storage(study: optuna.Study) -> Any:
    # optuna has no public accessor for a study's storage; the claim needs its state-change call
    return study._storage  # noqa: SLF001


def keyed_trials(study: optuna.Study, states: Optional[Sequence[TrialState]] = None) -> List[FrozenTrial]:
    """The study's search trials (those with a key), in trial-number order."""
    trials = retry_storage(lambda: study.get_trials(deepcopy=False, states=states))
    return sorted((t for t in trials if "key" in t.user_attrs), key=lambda t: t.number)


def _distributions(point: Point) -> Dict[str, Any]:
    """One-value distributions: the params of a grid point, for dashboards and trials_dataframe."""
    return {name: IntDistribution(int(v), int(v)) if name in ("epoch", "search_region") else FloatDistribution(v, v)
            for name, v in point.params().items()}


def enqueue_missing(study: optuna.Study, points: Iterable[Point], level: int, total: Optional[int] = None,
                    progress: bool = False) -> int:
    """Enqueue (as WAITING trials) every point without a WAITING, RUNNING or COMPLETE trial; returns the count.

    `points` is consumed one at a time (a generator is never made into a list); with `progress` and a `total` of
    at least ENQUEUE_BAR_MIN points, a progress bar shows the enqueueing (one database transaction per trial).
    """
    live = {t.user_attrs["key"] for t in keyed_trials(study, LIVE_STATES)}
    shown = progress and total is not None and total >= ENQUEUE_BAR_MIN
    points = tqdm(points, total=total, desc=f"enqueueing level {level}", unit="cfg", disable=not shown,
                  dynamic_ncols=True, leave=False)
    added = 0
    for p in points:
        if p.name in live:
            continue
        live.add(p.name)
        trial = optuna.create_trial(state=TrialState.WAITING, params=p.params(), distributions=_distributions(p),
                                    user_attrs={"key": p.name, "level": level, "point": p.params()})
        retry_storage(lambda t=trial: study.add_trial(t))
        added += 1
    return added


@dataclass
class Claim:
    """A trial this worker holds (RUNNING, heartbeat kept fresh)."""

    number: int
    trial_id: int
    point: Point
    level: int


class Heartbeat:
    """Records the heartbeat of every held trial every `interval` seconds from a daemon thread."""

    def __init__(self, storage: Any, interval: float):
        self.storage, self.interval = storage, float(interval)
        self._ids: set = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpsearch-heartbeat", daemon=True)
        self._thread.start()

    def beat(self, trial_id: int) -> None:
        """Record one heartbeat now (synchronously)."""
        retry_storage(lambda: self.storage.record_heartbeat(trial_id))

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self._ids)
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def claim_batch(study: optuna.Study, k: int, levels: Sequence[int], heartbeat: Heartbeat) -> List[Claim]:
    """Claim up to k WAITING trials of one snapshot epoch and search region (lowest numbers first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry_storage(lambda: optuna.storages.fail_stale_trials(study))
    waiting = [t for t in keyed_trials(study, (TrialState.WAITING,)) if t.user_attrs.get("level") in levels]
    if not waiting:
        return []
    group = Point.from_params(waiting[0].user_attrs["point"]).group
    storage = _storage(study)
    claims: List[Claim] = []
    for t in waiting:
        point = Point.from_params(t.user_attrs["point"])
        if point.group != group:
            continue
        trial_id = t._trial_id  # noqa: SLF001 - FrozenTrial keeps the storage id private
        # Beat first: a claim that dies before its first beat would never be seen as stale.
        heartbeat.beat(trial_id)
        try:
            claimed = retry_storage(lambda i=trial_id: storage.set_trial_state_values(i, TrialState.RUNNING))
        except optuna.exceptions.UpdateFinishedTrialError:
            claimed = False
        if not claimed:
            continue
        heartbeat.add(trial_id)
        claims.append(Claim(t.number, trial_id, point, int(t.user_attrs["level"])))
        if len(claims) >= k:
            break
    return claims


def drop_duplicates(study: optuna.Study, claims: List[Claim], heartbeat: Heartbeat) -> List[Claim]:
    """Close (PRUNED, user attr ``duplicate_of``) claims whose key has a lower-numbered live trial."""
    lowest: Dict[str, int] = {}
    for t in keyed_trials(study, LIVE_STATES):
        lowest.setdefault(t.user_attrs["key"], t.number)
    kept = []
    for c in claims:
        first = lowest.get(c.point.name, c.number)
        if first < c.number:
            retry_storage(lambda c=c, f=first: _storage(study).set_trial_user_attr(c.trial_id, "duplicate_of", f))
            _tell(study, c, heartbeat, state=TrialState.PRUNED)
        else:
            kept.append(c)
    return kept


def _tell(study: optuna.Study, claim: Claim, heartbeat: Heartbeat, **kwargs: Any) -> bool:
    """study.tell; False when the trial was closed meanwhile (failed as stale by another worker)."""
    heartbeat.discard(claim.trial_id)
    try:
        retry_storage(lambda: study.tell(claim.number, **kwargs))
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError):
        return False
    return True


def tell_value(study: optuna.Study, claim: Claim, value: float, metrics: Dict[str, float],
               heartbeat: Heartbeat) -> bool:
    """Store all metrics as the user attr ``metrics`` and complete the trial with `value`."""
    try:
        retry_storage(lambda: _storage(study).set_trial_user_attr(claim.trial_id, "metrics", dict(metrics)))
    except optuna.exceptions.UpdateFinishedTrialError:
        heartbeat.discard(claim.trial_id)
        return False
    return _tell(study, claim, heartbeat, values=float(value))


def tell_failure(study: optuna.Study, claim: Claim, reason: str, heartbeat: Heartbeat) -> bool:
    """Close the trial as FAIL with user attr ``error`` (a later run enqueues its point again)."""
    try:
        retry_storage(lambda: _storage(study).set_trial_user_attr(claim.trial_id, "error", reason[:1000]))
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
    return _tell(study, claim, heartbeat, state=TrialState.FAIL)
