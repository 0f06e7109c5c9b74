"""tools/eval.py end to end: the published numbers in --json, pysot's tables, plots, and clear errors."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


def test_missing_result_warns_naming_the_file(eval_fixture_dir, tmp_path, tool, capsys):
    results = _vot_copy(eval_fixture_dir, tmp_path)
    missing = results / "VOT2018" / "TrkPoly" / "baseline" / "vseq4" / "vseq4_001.txt"
    missing.unlink()
    out = tmp_path / "out.json"
    code = tool.main(["--tracker_path", str(results), "--dataset", "VOT2018", "--dataset-root",
                      str(eval_fixture_dir / "vot"), "--tracker_prefix", "TrkP", "--json", str(out), "--no-progress"])
    assert code == 0
    err = capsys.readouterr().err
    assert "warning:" in err and str(missing.parent) in err and "vseq4" in err
    assert list(json.loads(out.read_text())) == ["TrkPoly"]  # the prefix selects trackers


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
