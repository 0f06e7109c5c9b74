"""tools/hp_search_epoch.py end to end on a tiny model and tiny synthetic benchmarks: two workers share one
grid, a killed worker's configurations are redone by the next run (and only those), K batched lanes equal
K separate runs, and the reported best equals what tools/eval.py --json finds in the saved results."""
from __future__ import annotations

import collections
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from helpers import torch_threads
from hp_bench import REPO, TOOL, bench, tool_cmd  # noqa: F401 - the shared session fixture (no conftest here: it would shadow tests/conftest.py)
from siamkpn.config import load_cfg
from siamkpn.hpsearch.evaluate import BatchEvaluator, check_search_regions, lane_cfg, resolve_metric
from siamkpn.hpsearch.grid import Point, SearchSpace
from toolkit.datasets import DatasetFactory
from toolkit.results import read_vot


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the tool runs with --threads 1."""
    with torch_threads(1):
        yield


def _cmd(bench: Path, out: Path, dataset: str, *extra: str) -> list:
    return tool_cmd(bench, out, dataset, *extra)


# A worker that dies right after its second claim, holding that batch RUNNING with a heartbeat that stops, as
# a killed process would: the test injects the crash, the tool has no hook for it.
CRASHING_WORKER = """
import os, sys
import siamkpn.hpsearch.worker as worker
from siamkpn.cli.hp_search import main
claims = []
real = worker.drop_duplicates  # called right after each claim
def crash_on_second_claim(study, batch, heartbeat):
    claims.append(batch)
    if len(claims) == 2:
        os._exit(17)
    return real(study, batch, heartbeat)
worker.drop_duplicates = crash_on_second_claim
sys.exit(main(sys.argv[1:]))
"""


def _study(out: Path, dataset: str) -> optuna.Study:
    return optuna.load_study(study_name=f"hp_search_{dataset}", storage=f"sqlite:///{out / dataset / 'hp_search.db'}")


def _completed(study: optuna.Study) -> collections.Counter:
    return collections.Counter(t.user_attrs["key"] for t in study.get_trials(states=(TrialState.COMPLETE,)))


def _evaluated(log: str) -> int:
    return int(re.search(r"this worker: (\d+) configurations evaluated", log).group(1))


def _eval_json(out: Path, bench: Path, dataset: str) -> dict:
    path = out / "eval.json"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "eval.py"), "--tracker_path", str(out), "--dataset",
                          dataset, "--dataset-root", str(bench / dataset), "--json", str(path), "--no-progress"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(path.read_text())


def test_two_workers_share_the_grid_and_the_best_matches_eval(bench, tmp_path):
    out = tmp_path / "res"
    cmd = _cmd(bench, out, "OTB100", "--batch", "2", "--refine-top", "1", "--heartbeat", "2")
    workers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), logs
    study = _study(out, "OTB100")
    done = _completed(study)
    assert set(done.values()) == {1}  # every configuration completed exactly once ...
    assert sum(_evaluated(log) for log in logs) == len(done)  # ... and tracked by only one worker

    scores = {name: m["success_auc"] for name, m in _eval_json(out, bench, "OTB100").items()}
    assert set(scores) == set(done)
    for t in study.get_trials(states=(TrialState.COMPLETE,)):  # the study's values are eval.py's numbers
        assert t.value == scores[t.user_attrs["key"]]
    space = SearchSpace([1, 2], [0.0, 0.3], [0.1, 0.6], [0.5])
    level1 = {p.name: p for p in space.level1()}
    assert len(set(level1.values())) == 8 and set(level1) <= set(done)
    best1 = max(level1.values(), key=lambda p: (scores[p.name], -p.epoch))
    ties = [p for p in level1.values() if scores[p.name] == scores[best1.name]]
    level2 = {p.name for p in space.refine([min(ties, key=lambda p: (p.epoch, p.name))])}
    assert set(done) == set(level1) | level2  # level 2 refined around eval.py's best level-1 point

    summary = json.loads((out / "OTB100" / "hp_search_summary.json").read_text())
    assert summary["best"]["value"] == max(scores.values())
    assert scores[summary["best"]["tracker"]] == max(scores.values())
    assert [r["epoch"] for r in summary["best_per_epoch"]] == [1, 2]
    csv_lines = (out / "OTB100" / "hp_search_summary.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(done)
    assert (out / "OTB100" / "hp_search_penalty_k_window_influence.png").read_bytes()[:4] == b"\x89PNG"
    assert "best per epoch" in logs[0] and summary["best"]["tracker"] in logs[0]


def test_a_killed_worker_is_resumed_without_redoing_finished_work(bench, tmp_path):
    out = tmp_path / "res"
    cmd = _cmd(bench, out, "OTB100", "--batch", "2", "--level", "1", "--heartbeat", "1", "--grace-period", "2",
               "--search-region", "95")
    first = subprocess.run([sys.executable, "-c", CRASHING_WORKER, *cmd[2:]], capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 17, first.stderr  # died holding its second batch
    study = _study(out, "OTB100")
    states = collections.Counter(t.state for t in study.trials)
    assert states == {TrialState.COMPLETE: 2, TrialState.RUNNING: 2, TrialState.WAITING: 4}
    finished = {name: (out / "OTB100" / name / "Synth001.txt").stat().st_mtime_ns for name in _completed(study)}
    assert all(name.endswith("_sr-95") for name in finished)

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert _evaluated(second.stdout) == 6  # the 4 never started and the 2 the dead worker held
    study = _study(out, "OTB100")
    assert set(_completed(study).values()) == {1} and len(_completed(study)) == 8
    assert len(study.get_trials(states=(TrialState.FAIL,))) == 2  # the stale ones, retried as new trials
    for name, mtime in finished.items():
        assert (out / "OTB100" / name / "Synth001.txt").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("dataset", ["VOT2019", "OTB100"])
def test_batched_lanes_equal_separate_runs(bench, tmp_path, dataset):
    cfg = load_cfg(str(bench / "config.yaml"))
    points = [Point(1, 0.0, 0.1, 0.5), Point(1, 0.3, 0.6, 0.5), Point(1, 0.3, 0.1, 0.2)]
    data = DatasetFactory.create_dataset(dataset, bench / dataset)
    batched = BatchEvaluator(cfg, data, str(tmp_path / "k3"), str(bench), progress=False)
    model = batched.model(1)
    sizes = []
    forward = model.track
    model.track = lambda zf, x, **kw: sizes.append(x.shape[0]) or forward(zf, x, **kw)
    together = batched(points)
    tracked = sum(len(v) - 1 for v in data)  # frames after the first
    assert max(sizes) == 3 and len(sizes) <= tracked  # one forward pass per frame for all lanes
    assert dataset == "VOT2019" or len(sizes) == tracked
    single = BatchEvaluator(cfg, data, str(tmp_path / "k1"), str(bench), progress=False)
    apart = {}
    for p in points:
        apart.update(single([p]))
    assert len({json.dumps(m) for m in together.values()}) > 1, "configurations should score differently"
    for p in points:
        assert together[p.name] == pytest.approx(apart[p.name], abs=1e-9, nan_ok=True)
        for v in data:
            if dataset == "VOT2019":
                a, b = (read_vot(d / dataset / p.name / "baseline" / v.name / f"{v.name}_001.txt")
                        for d in (tmp_path / "k3", tmp_path / "k1"))
            else:
                a, b = (np.loadtxt(d / dataset / p.name / f"{v.name}.txt", delimiter=",")
                        for d in (tmp_path / "k3", tmp_path / "k1"))
            assert [len(x) for x in a] == [len(x) for x in b]  # same failures / re-initialisations
            np.testing.assert_allclose(np.concatenate([np.ravel(x) for x in a]),
                                       np.concatenate([np.ravel(x) for x in b]), rtol=0, atol=1e-3)
    metric = resolve_metric(None, dataset)
    scored = _eval_json(tmp_path / "k3", bench, dataset)
    assert {n: m[metric] for n, m in scored.items()} == {n: m[metric] for n, m in together.items()}


def _tool():
    spec = importlib.util.spec_from_file_location("hp_search_epoch", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("extra, message", [
    (["--end-epoch", "3"], "checkpoint_e3.pth"),
    (["--metric", "eao"], "--metric 'eao' is not available for OTB100"),
    (["--search-region", "100"], "TRAIN.STRIDE"),
    (["--lr", "0.5,0.1,0.1"], None),
])
def test_bad_input_is_a_clear_error(bench, tmp_path, capsys, extra, message):
    argv = _cmd(bench, tmp_path / "res", "OTB100", *extra)[2:]
    if message is None:
        with pytest.raises(SystemExit) as exit_info:
            _tool().main(argv)
        assert exit_info.value.code == 2
        assert "--lr: the range '0.5,0.1,0.1' is empty" in capsys.readouterr().err
        return
    assert _tool().main(argv) == 2
    assert message in capsys.readouterr().err


def test_lane_config_and_metric_defaults(bench):
    cfg = load_cfg(str(bench / "config.yaml"), freeze=True)
    lane = lane_cfg(cfg, Point(3, 0.12, 0.34, 0.56, 127))
    assert (lane.TRACK.PENALTY_K, lane.TRACK.WINDOW_INFLUENCE, lane.TRACK.LR, lane.TRACK.INSTANCE_SIZE) == (
        0.12, 0.34, 0.56, 127)
    assert cfg.TRACK.INSTANCE_SIZE == 95 and lane.is_frozen()
    check_search_regions(cfg, [95, 127, None])
    assert [resolve_metric(None, d) for d in ("VOT2018", "OTB100", "VOT2018-LT", "GOT-10k")] == [
        "eao", "success_auc", "f1", "ao"]
    assert resolve_metric("auc", "UAV123") == "success_auc"
