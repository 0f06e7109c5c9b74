"""tools/eval.py end to end: the published numbers in --json, pysot's tables, plots, and clear errors."""
from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import tool_error

REPO = Path(__file__).resolve().parents[2]
EVAL = REPO / "tools" / "eval.py"
TOL = 1e-6
PNG = b"\x89PNG"

# run the tool as a script and fail if it pulled in torch on the way
_NO_TORCH = """
import runpy, sys
sys.argv = [{tool!r}] + sys.argv[1:]
try:
    runpy.run_path({tool!r}, run_name="__main__")
except SystemExit as e:
    code = e.code
else:
    code = 0
assert "torch" not in sys.modules, "tools/eval.py imported torch"
sys.exit(code)
""".format(tool=str(EVAL))


def _run(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", _NO_TORCH, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def ref(eval_fixture_dir):
    return json.loads((eval_fixture_dir / "eval_ref.json").read_text())


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("siamkpn_eval_tool", EVAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vot_end_to_end(eval_fixture_dir, ref, tmp_path):
    out = tmp_path / "vot.json"
    proc = _run(["--tracker_path", eval_fixture_dir / "results", "--dataset", "VOT2018", "--dataset-root",
                 eval_fixture_dir / "vot", "--json", out, "--plot", tmp_path / "plots", "--num", "2",
                 "--show_video_level", "--no-progress"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(out.read_text())
    assert set(got) == set(ref["vot"]["trackers"])
    for tracker, want in ref["vot"]["trackers"].items():
        assert set(got[tracker]) == {"eao", "accuracy", "robustness", "lost_number"}
        for key in got[tracker]:
            assert got[tracker][key] == pytest.approx(want[key], abs=TOL), (tracker, key)
    # pysot's table: sorted by EAO, values to 3 decimals (lost number to 1)
    rows = [line for line in proc.stdout.splitlines() if line.startswith("|") and "Trk" in line]
    assert [r.split("|")[1].strip() for r in rows[:3]] == ["TrkGood", "TrkMid", "TrkPoly"]
    assert "|  TrkPoly   |  0.462   |   1.497    |    14.0     | 0.152 |" in proc.stdout
    assert "vseq3" in proc.stdout  # per-video table
    assert (tmp_path / "plots" / "eao_rank.png").read_bytes()[:4] == PNG


def _otb_results(eval_fixture_dir, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    # the fixture's benchmark is an OTB-style set; score it under a real benchmark name
    (results / "OTB100").symlink_to(eval_fixture_dir / "results" / "OTBSynth", target_is_directory=True)
    return results


def _check_ope_json(path, ref):
    got = json.loads(path.read_text())
    names = {"success_auc": "success_auc", "precision": "precision@20px", "norm_precision": "norm_precision@0.20"}
    for tracker, want in ref["otb"]["trackers"].items():
        assert set(got[tracker]) == set(names)
        for key, ref_key in names.items():
            assert got[tracker][key] == pytest.approx(want[ref_key], abs=TOL), (tracker, key)


def test_ope_end_to_end_json_layout(eval_fixture_dir, ref, tmp_path):
    out = tmp_path / "otb.json"
    proc = _run(["--tracker_path", _otb_results(eval_fixture_dir, tmp_path), "--dataset", "OTB100",
                 "--dataset-root", eval_fixture_dir / "otb", "--json", out, "--no-progress"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_ope_json(out, ref)
    assert "|  TrkGood   |  0.906  |     0.997      |   0.997   |" in proc.stdout


def test_ope_native_layout_with_plots(eval_fixture_dir, ref, tmp_path, tool, capsys):
    out, plots = tmp_path / "otb.json", tmp_path / "plots"
    code = tool.main(["--tracker_path", str(_otb_results(eval_fixture_dir, tmp_path)), "--dataset", "OTB100",
                      "--dataset-root", str(eval_fixture_dir / "otb"), "--layout", "native", "--json", str(out),
                      "--plot", str(plots), "--no-progress"])
    assert code == 0
    _check_ope_json(out, ref)
    for kind in ("success", "precision", "norm_precision"):
        assert (plots / f"{kind}_plot_ALL.png").read_bytes()[:4] == PNG
    assert "Seq1" not in capsys.readouterr().out  # per-video tables only when asked


def test_attribute_plots(tmp_path):
    from toolkit.visualization import plot_ope

    curves = {"success": np.linspace(1, 0, 21), "precision": np.linspace(0, 1, 51),
              "norm_precision": np.linspace(0, 1, 51)}
    summaries = {"A": {"per_video": {"v1": curves, "v2": curves}}}
    paths = plot_ope(summaries, tmp_path, "OTB100", {"ALL": ["v1", "v2"], "OCC": ["v2"], "LR": ["gone"]})
    assert sorted(p.name for p in paths) == sorted(
        ["success_plot_ALL.png", "precision_plot_ALL.png", "norm_precision_plot_ALL.png",
         "success_plot_OCC.png", "precision_plot_OCC.png"])
    assert all(p.read_bytes()[:4] == PNG for p in paths)


def _vot_copy(eval_fixture_dir, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(eval_fixture_dir / "results" / "VOT2018", results / "VOT2018")
    return results


def _vot_missing_one(eval_fixture_dir, tmp_path):
    results = _vot_copy(eval_fixture_dir, tmp_path)
    missing = results / "VOT2018" / "TrkPoly" / "baseline" / "vseq4" / "vseq4_001.txt"
    missing.unlink()
    args = ["--tracker_path", str(results), "--dataset", "VOT2018", "--dataset-root", str(eval_fixture_dir / "vot"),
            "--no-progress"]
    return args, missing


def test_missing_result_is_a_partial_table_and_exit_2(eval_fixture_dir, tmp_path, tool, capsys):
    args, missing = _vot_missing_one(eval_fixture_dir, tmp_path)
    out = tmp_path / "out.json"
    code = tool.main(args + ["--json", str(out), "--plot", str(tmp_path / "plots")])
    assert code == 2
    captured = capsys.readouterr()
    # the table is still shown (nothing computed is lost), marked partial, with who misses what
    assert "|  TrkPoly   |" in captured.out and "PARTIAL" in captured.out
    assert "TrkPoly: 1 of 6 videos missing (vseq4)" in captured.out
    assert "TrkGood:" not in captured.out.split("PARTIAL")[1]
    errors = [line for line in captured.err.splitlines() if ": error: " in line]
    assert errors == [line for line in captured.err.splitlines() if line.startswith("siamkpn-eval:")]
    assert len(errors) == 1 and "TrkPoly 1 of 6" in errors[0] and "--allow-missing" in errors[0]
    assert "warning:" in captured.err and str(missing.parent) in captured.err
    assert not out.exists() and not (tmp_path / "plots").exists()


def test_allow_missing_accepts_partial_scores_with_the_mark(eval_fixture_dir, tmp_path, tool, capsys):
    args, missing = _vot_missing_one(eval_fixture_dir, tmp_path)
    out = tmp_path / "out.json"
    code = tool.main(args + ["--tracker_prefix", "TrkP", "--json", str(out), "--allow-missing"])
    assert code == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and str(missing.parent) in captured.err and "vseq4" in captured.err
    assert "PARTIAL" in captured.out and "TrkPoly: 1 of 6 videos missing (vseq4)" in captured.out
    assert list(json.loads(out.read_text())) == ["TrkPoly"]  # the prefix selects trackers


def test_missing_results_with_workers_are_reported_too(eval_fixture_dir, tmp_path):
    args, _ = _vot_missing_one(eval_fixture_dir, tmp_path)
    proc = _run(args + ["--num", "3"], cwd=tmp_path)
    assert proc.returncode == 2 and "TrkPoly: 1 of 6 videos missing (vseq4)" in proc.stdout


def test_nothing_to_score_is_null_in_json(eval_fixture_dir, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(eval_fixture_dir / "results" / "OTBSynth", results / "OTB100")
    for f in (results / "OTB100" / "TrkBad").iterdir():
        f.unlink()  # a tracker folder without any result
    out = tmp_path / "otb.json"
    proc = _run(["--tracker_path", results, "--dataset", "OTB100", "--dataset-root", eval_fixture_dir / "otb",
                 "--json", out, "--allow-missing", "--no-progress"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "NaN" not in text
    got = json.loads(text)
    assert got["TrkBad"] == {"success_auc": None, "precision": None, "norm_precision": None}
    assert isinstance(got["TrkGood"]["success_auc"], float)


@pytest.mark.parametrize("flag, make, fragment", [
    ("--json", lambda tmp: tmp / "a_file" / "out.json", "is a file, not a folder"),
    ("--json", lambda tmp: tmp / "a_dir", "is a folder"),
    ("--plot", lambda tmp: tmp / "a_file", "not a folder"),
    ("--plot", lambda tmp: tmp / "a_file" / "plots", "is a file, not a folder"),
])
def test_unwritable_destinations_fail_before_scoring(eval_fixture_dir, tmp_path, tool, capsys, flag, make, fragment):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    dest = make(tmp_path)
    line = tool_error(capsys, tool.main, ["--tracker_path", str(eval_fixture_dir / "results"), "--dataset", "VOT2018",
                                          "--dataset-root", str(eval_fixture_dir / "vot"), "--no-progress",
                                          flag, str(dest)])
    assert f"{flag} {dest}" in line and fragment in line
    assert capsys.readouterr().out == ""  # checked before any table was computed or printed


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_json_folder_fails_before_scoring(eval_fixture_dir, tmp_path, tool, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        line = tool_error(capsys, tool.main, ["--tracker_path", str(eval_fixture_dir / "results"), "--dataset",
                                              "VOT2018", "--dataset-root", str(eval_fixture_dir / "vot"),
                                              "--no-progress", "--json", str(folder / "out.json")])
    finally:
        folder.chmod(0o700)
    assert "cannot write in" in line


@pytest.mark.parametrize("flag, name", [("--json", "out.json"), ("--plot", "plots")])
def test_disk_full_after_the_table_names_the_file_and_exits_1(eval_fixture_dir, tmp_path, tool, capsys,
                                                             monkeypatch, flag, name):
    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    dest = tmp_path / "out" / name
    code = tool.main(["--tracker_path", str(eval_fixture_dir / "results"), "--dataset", "VOT2018",
                      "--dataset-root", str(eval_fixture_dir / "vot"), "--no-progress", flag, str(dest)])
    out, err = capsys.readouterr()
    assert code == 1 and "TrkPoly" in out  # the table was printed before the write failed
    last = err.strip().splitlines()[-1]
    target = str(dest) if flag == "--json" else f"{dest}{os.sep}eao_rank.png"
    assert last.startswith("siamkpn-eval: error: ") and f"cannot write {target}: No space left on device" in last
    assert "Traceback" not in err
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert leftovers == []  # no half-written file, no temporary file


def test_garbled_result_is_an_error_naming_file_and_line(eval_fixture_dir, tmp_path, tool, capsys):
    results = _vot_copy(eval_fixture_dir, tmp_path)
    bad = results / "VOT2018" / "TrkMid" / "baseline" / "vseq5" / "vseq5_001.txt"
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join(lines[:40]) + "\n")  # truncated
    code = tool.main(["--tracker_path", str(results), "--dataset", "VOT2018", "--dataset-root",
                      str(eval_fixture_dir / "vot"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 40" in err and "expected 180" in err


def test_no_trackers(eval_fixture_dir, tmp_path, tool, capsys, monkeypatch):
    code = tool.main(["--tracker_path", str(eval_fixture_dir / "results"), "--dataset", "VOT2018",
                      "--dataset-root", str(eval_fixture_dir / "vot"), "--tracker_prefix", "Nobody", "--no-progress"])
    assert code == 2 and "no tracker folders starting with 'Nobody'" in capsys.readouterr().err
