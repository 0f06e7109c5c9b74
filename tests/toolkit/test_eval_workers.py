"""Evaluation in worker processes (`--num N`): any worker failure ends the run with the worker's message, never a hang.

Each case runs in a subprocess under a timeout: a hang fails the test instead of stalling the suite. The
failure is injected by the test script itself (it replaces `evaluate_tracker` before the workers fork).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.errors import BadInput

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60

_SCRIPT = r"""
import json, os, signal, sys, threading
from toolkit.errors import BadInput
from toolkit.evaluation import runner

class Unpicklable(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()  # pickling the exception fails in the worker

class Unloadable(BadInput):
    def __init__(self, path, reason):  # pickles as (path-and-reason,): rebuilding it in the parent fails
        super().__init__(f"{path}: {reason}")

def failing(dataset, tracker):
    if tracker == "B":
        case = sys.argv[1]
        if case == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        if case == "unpicklable":
            raise Unpicklable("B failed: cannot unpickle me")
        if case == "unloadable":
            raise Unloadable("/results/B/v.txt", "garbled line 3")
        if case == "value":
            raise ValueError("B: a value it cannot use")
        if case == "exit":
            sys.exit(3)
    return {"kind": "ope", "details": {}, "metrics": {"x": 1.0}}

class Dataset:
    name = "VOT2018"
    def __iter__(self):
        return iter(())

runner.evaluate_tracker = failing
try:
    runner.evaluate(Dataset(), ["A", "B", "C", "D"], num_workers=2, progress=False)
except BaseException as err:
    print(json.dumps({"types": [c.__name__ for c in type(err).__mro__], "message": str(err),
                      "bad_input": isinstance(err, BadInput)}))
else:
    print(json.dumps({"types": None}))
"""


def _run(case: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        proc = subprocess.run([sys.executable, "-c", _SCRIPT, case], env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"evaluate(num_workers=2) hung for {TIMEOUT}s when a worker failed ({case})")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case, kind, fragments, bad_input", [
    ("value", "ValueError", ["B: a value it cannot use"], False),  # a picklable exception comes back as itself
    ("unpicklable", "WorkerError", ["'B'", "Unpicklable", "B failed: cannot unpickle me"], False),
    ("unloadable", "WorkerError", ["'B'", "/results/B/v.txt: garbled line 3"], True),  # still bad input
    ("killed", "WorkerError", ["died", "SIGKILL"], False),
    ("exit", "WorkerError", ["'B'", "SystemExit"], False),
])
def test_any_worker_failure_ends_the_run_with_its_message(case, kind, fragments, bad_input):
    got = _run(case)
    assert got["types"][0] == kind or (bad_input and kind in got["types"]), got
    assert all(f in got["message"] for f in fragments), got
    assert got["bad_input"] == bad_input


def test_cli_garbled_result_with_workers_is_one_line_exit_2(eval_fixture_dir, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(eval_fixture_dir / "results" / "VOT2018", results / "VOT2018")
    bad = results / "VOT2018" / "TrkMid" / "baseline" / "vseq5" / "vseq5_001.txt"
    bad.write_text("\n".join(bad.read_text().splitlines()[:40]) + "\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        proc = subprocess.run([sys.executable, str(REPO / "tools" / "eval.py"), "--tracker_path", str(results),
                               "--dataset", "VOT2018", "--dataset-root", str(eval_fixture_dir / "vot"), "--num", "3",
                               "--no-progress"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("tools/eval.py --num 3 hung on a garbled result file")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"siamkpn-eval: error: {bad}, line 40: 40 lines, expected 180 "
                                                "(one per frame)"]


def test_result_file_error_survives_pickling():
    import pickle

    from toolkit.results import ResultFileError

    err = pickle.loads(pickle.dumps(ResultFileError("/r/v.txt", 7, "not numbers")))
    assert type(err) is ResultFileError and str(err) == "/r/v.txt, line 7: not numbers"
    assert (err.path, err.line_no, err.reason) == ("/r/v.txt", 7, "not numbers") and isinstance(err, BadInput)
