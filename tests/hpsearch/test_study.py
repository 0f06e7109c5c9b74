"""siamkpn.hpsearch.study / worker / summary with a stand-in evaluation (no tracking): the shared Optuna queue hands
every configuration to exactly one worker, survives duplicate grids and dead workers, and refines."""
from __future__ import annotations

import collections
import csv
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import siamkpn.hpsearch.study as st
from siamkpn.hpsearch import summary
from siamkpn.hpsearch.grid import Point, SearchSpace
from siamkpn.hpsearch.notice import Notices
from siamkpn.hpsearch.worker import SearchError, WorkerOptions, run_worker

REPO = Path(__file__).resolve().parents[2]
SPACE = SearchSpace([1, 2], [0.0, 0.2, 0.4], [0.3, 0.5, 0.7], [0.4])


def score(p: Point) -> float:
    """A smooth stand-in metric peaking between grid points (pk 0.27, wi 0.5), better at epoch 2."""
    return 0.5 - (p.penalty_k - 0.27) ** 2 - (p.window_influence - 0.5) ** 2 + 0.01 * p.epoch


class FakeEvaluator:
    """Counts how often each configuration is evaluated (thread-safe)."""

    def __init__(self, fn=score, delay: float = 0.0):
        self.fn, self.delay = fn, delay
        self.calls = collections.Counter()
        self.batches = []
        self._lock = threading.Lock()

    def __call__(self, points):
        with self._lock:
            self.calls.update(p.name for p in points)
            self.batches.append([p.group for p in points])
        time.sleep(self.delay)
        return {p.name: {"eao": self.fn(p), "accuracy": 0.5} for p in points}


def _open(tmp_path, heartbeat=60, grace=None, metric="eao"):
    storage = st.open_storage(f"sqlite:///{tmp_path / 'hp.db'}", heartbeat, grace)
    return storage, st.open_study(storage, "s", {"metric": metric})


def _opts(**kw):
    return WorkerOptions(**{"metric": "eao", "batch": 4, "refine_top": 1, "poll": 0.05, "progress": False, **kw})


def test_enqueue_is_idempotent_and_a_claim_takes_one_snapshot(tmp_path):
    storage, study = _open(tmp_path)
    grid = SPACE.level1()
    assert st.enqueue_missing(study, grid, level=1) == 18
    assert st.enqueue_missing(study, grid, level=1) == 0
    hb = st.Heartbeat(storage, 60)
    first = st.claim_batch(study, 5, (1,), hb)
    assert [c.number for c in first] == [0, 1, 2, 3, 4] and {c.point.epoch for c in first} == {1}
    second = st.claim_batch(study, 5, (1,), hb)
    assert [c.number for c in second] == [5, 6, 7, 8]  # the rest of epoch 1 only
    third = st.claim_batch(study, 5, (1,), hb)
    assert {c.point.epoch for c in third} == {2}
    assert st.claim_batch(study, 5, (2,), hb) == []  # no level-2 work
    trial = study.trials[first[0].number]
    assert trial.state == TrialState.RUNNING and trial.params == grid[0].params()
    assert st.tell_value(study, first[0], 0.25, {"eao": 0.25}, hb)
    assert study.trials[0].value == 0.25 and study.trials[0].user_attrs["metrics"] == {"eao": 0.25}
    hb.close()


def test_duplicate_grids_from_racing_workers_are_evaluated_once(tmp_path, monkeypatch):
    storage, study = _open(tmp_path)
    grid = SPACE.level1()
    st.enqueue_missing(study, grid, level=1)
    with monkeypatch.context() as m:  # a second worker that read the study before the first enqueued
        m.setattr(st, "keyed_trials", lambda *a, **k: [])
        st.enqueue_missing(study, grid, level=1)
    assert len(study.trials) == 36
    evaluator = FakeEvaluator(delay=0.01)
    hbs = [st.Heartbeat(storage, 60) for _ in range(2)]
    studies = [study, optuna.load_study(study_name="s", storage=st.open_storage(f"sqlite:///{tmp_path / 'hp.db'}"))]
    threads = [threading.Thread(target=run_worker, args=(s, SPACE, evaluator, _opts(batch=3, levels=(1,)), hb))
               for s, hb in zip(studies, hbs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert evaluator.calls == {p.name: 1 for p in grid}
    states = collections.Counter(t.state for t in study.trials)
    assert states == {TrialState.COMPLETE: 18, TrialState.PRUNED: 18}
    for t in study.get_trials(states=(TrialState.PRUNED,)):
        original = study.trials[t.user_attrs["duplicate_of"]]
        assert original.user_attrs["key"] == t.user_attrs["key"] and original.number < t.number
    assert all(len(set(b)) == 1 for b in evaluator.batches)  # a batch never mixes snapshots


CLAIMER = """
import sys, json
sys.path.insert(0, sys.argv[1])
import siamkpn.hpsearch.study as st
storage = st.open_storage(sys.argv[2], 60)
study = st.open_study(storage, "s", {"metric": "eao"})
hb = st.Heartbeat(storage, 60)
got = []
while True:
    claims = st.claim_batch(study, 2, (1,), hb)
    if not claims:
        break
    for c in claims:
        got.append(c.number)
        st.tell_value(study, c, 1.0, {}, hb)
print(json.dumps(got))
"""


def test_worker_processes_never_claim_the_same_trial(tmp_path):
    storage, study = _open(tmp_path)
    space = SearchSpace([1, 2], [0.0, 0.1, 0.2, 0.3, 0.4], [0.3, 0.5], [0.4, 0.5])
    st.enqueue_missing(study, space.level1(), level=1)
    url = f"sqlite:///{tmp_path / 'hp.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(REPO), url], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    claimed = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    numbers = [n for got in claimed for n in got]
    assert sorted(numbers) == list(range(40))  # each trial claimed by exactly one process
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_trials_of_a_dead_worker_go_stale_and_are_retried(tmp_path):
    storage, study = _open(tmp_path, heartbeat=1, grace=2)
    st.enqueue_missing(study, SPACE.level1(), level=1)
    dead = st.Heartbeat(storage, 1)
    lost = st.claim_batch(study, 2, (1,), dead)
    dead.close()  # the worker dies: no more heartbeats, its trials stay RUNNING
    evaluator = FakeEvaluator()
    hb = st.Heartbeat(storage, 1)
    tic = time.monotonic()
    notes = []
    run_worker(study, SPACE, evaluator, _opts(levels=(1,), poll=0.2, heartbeat=1, grace=2,
                                              notices=Notices(every=0.5, write=notes.append)), hb)
    waited = time.monotonic() - tic
    assert waited >= 2  # it waited for the grace period, and said so (it used to wait silently)
    assert notes and set(notes) == {"waiting for 2 trials held by other workers (heartbeat every 1 s; the trials of "
                                    "a worker silent for 2 s are retried here)"}
    assert len(notes) <= waited / 0.5 + 1
    assert evaluator.calls == {p.name: 1 for p in SPACE.level1()}
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert sorted(t.number for t in failed) == [c.number for c in lost]
    retried = [t for t in study.get_trials(states=(TrialState.COMPLETE,)) if t.system_attrs.get("failed_trial")
               is not None]
    assert sorted(t.user_attrs["key"] for t in retried) == sorted(c.point.name for c in lost)
    hb.close()


def test_level2_refines_the_best_and_a_rerun_redoes_nothing(tmp_path):
    storage, study = _open(tmp_path)
    evaluator = FakeEvaluator()
    hb = st.Heartbeat(storage, 60)
    stats = run_worker(study, SPACE, evaluator, _opts(), hb)
    best1 = Point(2, 0.2, 0.5, 0.4)  # best level-1 point; level 2 moves pk/wi by 0.1 around it (lr fixed)
    level2 = SPACE.refine([best1])
    assert len(level2) == 8 and stats.enqueued == {1: 18, 2: 8}
    assert evaluator.calls == {p.name: 1 for p in SPACE.level1() + level2}
    rows = summary.collect(study)
    assert summary.rank(rows)[0].tracker == Point(2, 0.3, 0.5, 0.4).name and summary.rank(rows)[0].level == 2
    again = FakeEvaluator()
    assert run_worker(study, SPACE, again, _opts(), hb).evaluated == [] and not again.calls
    hb.close()


def test_level2_alone_needs_a_complete_level1(tmp_path):
    storage, study = _open(tmp_path)
    hb = st.Heartbeat(storage, 60)
    with pytest.raises(SearchError, match="level 1 is incomplete"):
        run_worker(study, SPACE, FakeEvaluator(), _opts(levels=(2,)), hb)
    run_worker(study, SPACE, FakeEvaluator(), _opts(levels=(1,)), hb)
    evaluator = FakeEvaluator()
    run_worker(study, SPACE, evaluator, _opts(levels=(2,)), hb)
    assert len(evaluator.calls) == 8 and all(n.startswith("checkpoint_e2_") for n in evaluator.calls)
    hb.close()


def test_nan_metric_and_errors_fail_the_trials(tmp_path):
    storage, study = _open(tmp_path)
    hb = st.Heartbeat(storage, 60)
    space = SearchSpace([1], [0.1, 0.2], [0.5], [0.4])
    # every configuration failed: an error saying why, not an empty table (it used to return normally)
    with pytest.raises(SearchError, match=r"no configuration of the search completed; 2 trials failed, e\.g\. "
                                          r"checkpoint_e1_pk-0.200_wi-0.500_lr-0.400: eao is nan"):
        run_worker(study, space, FakeEvaluator(lambda p: math.nan), _opts(levels=(1,)), hb)
    assert all(t.state == TrialState.FAIL for t in study.trials)
    assert "eao is nan" in study.trials[0].user_attrs["error"]
    # one configuration with a score is a result: the run ends normally
    run_worker(study, space, FakeEvaluator(lambda p: math.nan if p.penalty_k == 0.1 else 0.3), _opts(levels=(1,)), hb)
    assert collections.Counter(t.state for t in study.trials) == {TrialState.FAIL: 3, TrialState.COMPLETE: 1}

    def broken(points):
        raise OSError("frame not found: x.jpg")

    with pytest.raises(OSError):
        run_worker(study, space, broken, _opts(levels=(1,)), hb)  # a rerun re-enqueues the failed points
    assert "OSError: frame not found" in study.trials[-1].user_attrs["error"]
    assert collections.Counter(t.state for t in study.trials) == {TrialState.FAIL: 4, TrialState.COMPLETE: 1}
    hb.close()


def test_study_attrs_must_match(tmp_path):
    _open(tmp_path, metric="eao")
    with pytest.raises(ValueError, match="metric: recorded 'eao', now 'accuracy'; for these inputs use a new "):
        _open(tmp_path, metric="accuracy")
    with pytest.raises(ValueError, match="database URL"):
        st.open_storage("results/hp.db")


def test_summary_files_and_plots(tmp_path):
    storage, study = _open(tmp_path)
    hb = st.Heartbeat(storage, 60)
    run_worker(study, SPACE, FakeEvaluator(), _opts(levels=(1,)), hb)
    rows = summary.collect(study)
    paths = summary.write_summary(rows, "eao", str(tmp_path), top=3, dataset="VOT2018")
    with open(paths["csv"]) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 18 and table[0]["tracker"] == Point(2, 0.2, 0.5, 0.4).name
    values = [float(r["eao"]) for r in table]
    assert values == sorted(values, reverse=True) and values[0] == pytest.approx(score(Point(2, 0.2, 0.5, 0.4)))
    assert table[0]["accuracy"] == "0.5" and table[0]["search_region"] == ""
    data = json.loads(Path(paths["json"]).read_text())
    assert data["best"]["tracker"] == table[0]["tracker"] and len(data["top"]) == 3
    assert [r["epoch"] for r in data["best_per_epoch"]] == [1, 2] and data["dataset"] == "VOT2018"
    text = summary.format_table(summary.best_per_epoch(rows), "eao", "best per epoch")
    assert "checkpoint_e1_pk-0.200_wi-0.500_lr-0.400" in text
    plots = summary.plot_pairs(rows, "eao", str(tmp_path))
    names = sorted(Path(p).name for p in plots)
    assert names == ["hp_search_epoch_penalty_k.png", "hp_search_epoch_window_influence.png",
                     "hp_search_penalty_k_window_influence.png"]
    assert all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in plots)
    # written like any other file (umask permissions; mkstemp's 0600 used to stay), no temporary files left
    mask = os.umask(0)
    os.umask(mask)
    assert {os.stat(p).st_mode & 0o777 for p in [*paths.values(), *plots]} == {0o666 & ~mask}
    assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith(".")) == []
    hb.close()


PLOT_ALONE = """
import sys
import matplotlib
from siamkpn.hpsearch import summary
rows = [summary.Row(f"t{i}", 1, 0.1 * i, 0.5, 0.2 * (i % 2), None, 1, 0.1 * i, i) for i in range(4)]
summary.plot_pairs(rows, "eao", sys.argv[1])
print("pyplot" if "matplotlib.pyplot" in sys.modules else "no pyplot", dict.__getitem__(matplotlib.rcParams, "backend"))
"""


def test_plots_leave_the_callers_matplotlib_alone(tmp_path):
    run = subprocess.run([sys.executable, "-c", PLOT_ALONE, str(tmp_path)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MPLBACKEND": "svg"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["no", "pyplot", "svg"]  # no global backend switch, no pyplot state
    assert (tmp_path / "hp_search_penalty_k_lr.png").read_bytes()[:4] == b"\x89PNG"


NO_HOOK = """
import sys
import siamkpn.hpsearch.study as st
from siamkpn.hpsearch.grid import SearchSpace
from siamkpn.hpsearch.worker import WorkerOptions, run_worker
storage = st.open_storage(sys.argv[1], 60)
study = st.open_study(storage, "s", {"metric": "eao"})
hb = st.Heartbeat(storage, 60)
stats = run_worker(study, SearchSpace([1], [0.1, 0.2], [0.5], [0.4]), lambda pts: {p.name: {"eao": 0.5} for p in pts},
                   WorkerOptions("eao", batch=1, levels=(1,), poll=0.05, progress=False), hb)
print(len(stats.evaluated))
"""


def test_the_worker_reads_no_crash_hook_from_the_environment(tmp_path):
    # the crash of a killed worker is injected by the tests themselves (test_hp_search_e2e, test_postgres);
    # HPSEARCH_CRASH_AFTER used to make production code exit with 17 after a claim
    run = subprocess.run([sys.executable, "-c", NO_HOOK, f"sqlite:///{tmp_path / 'hp.db'}"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "HPSEARCH_CRASH_AFTER": "0"})
    assert run.returncode == 0 and run.stdout.split() == ["2"], run.stderr


def test_summary_json_writes_null_for_a_metric_that_could_not_be_computed(tmp_path):
    storage, study = _open(tmp_path)
    run_worker(study, SPACE, FakeEvaluator(), _opts(levels=(1,)), st.Heartbeat(storage, 60))
    rows = summary.collect(study)
    rows[0].metrics["accuracy"] = math.nan  # e.g. no frame to average
    paths = summary.write_summary(rows, "eao", str(tmp_path), top=len(rows), dataset="VOT2018")
    text = Path(paths["json"]).read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the summary json"))
    assert None in [r["metrics"]["accuracy"] for r in data["top"]]
