"""`make quickstart`: the report helpers, the output-folder rules and the quick version end to end."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import quickstart  # noqa: E402
import quickstart_report as qr  # noqa: E402

OTB = {"untrained": {"success_auc": 0.05, "precision": 0.10, "norm_precision": 0.08},
       "trained": {"success_auc": 0.42, "precision": 0.55, "norm_precision": 0.50}}
VOT = {"untrained": {"eao": 0.01, "accuracy": 0.20, "robustness": 3.5, "lost_number": 70.0},
       "trained": {"eao": 0.15, "accuracy": 0.55, "robustness": 1.0, "lost_number": 20.0}}


def test_table_rows_and_direction():
    rows = qr.comparison_rows(VOT, ["untrained", "trained"])
    assert [r[0] for r in rows] == ["eao", "accuracy", "robustness", "lost_number"]
    assert rows[2][1] == [3.5, 1.0] and rows[2][2] == pytest.approx(-2.5)
    text = qr.format_table("VOT", VOT, ["untrained", "trained"])
    robustness = next(line for line in text.splitlines() if line.startswith("| Robustness"))
    assert "3.500" in robustness and "1.000" in robustness and "-2.500 (better)" in robustness
    lost = next(line for line in text.splitlines() if line.startswith("| Lost"))
    assert "| 70 " in lost and "-50 (better)" in lost
    md = qr.format_table("OTB", OTB, ["untrained", "trained"], markdown=True)
    assert "| Success (AUC) | 0.050 | 0.420 | +0.370 (better) |" in md
    with pytest.raises(KeyError, match="missing"):
        qr.comparison_rows({"a": {}}, ["a", "missing"])


def test_nan_metric_is_shown_as_na():
    values = {"u": {"eao": math.nan}, "t": {"eao": 0.2}}
    line = qr.format_table("x", values, ["u", "t"]).splitlines()[4]
    assert line.split("|")[2].strip() == "n/a" and line.split("|")[4].strip() == "n/a"


def test_learning_verdict_threshold():
    passed, text = qr.learning_verdict(OTB, VOT, "untrained", "trained", 0.10)
    assert passed and "+0.370" in text
    passed, text = qr.learning_verdict(OTB, VOT, "untrained", "trained", 0.40)
    assert not passed and "did NOT learn" in text
    worse_vot = {"untrained": VOT["trained"], "trained": VOT["untrained"]}
    assert not qr.learning_verdict(OTB, worse_vot, "untrained", "trained", 0.10)[0]


def test_format_seconds():
    assert qr.format_seconds(5.4) == "5 s"
    assert qr.format_seconds(65) == "1 min 05 s"


def test_prepare_output_resume_and_refresh(tmp_path):
    out = tmp_path / "out"
    settings = {"preset": "tiny", "epochs": 1}
    assert quickstart.prepare_output(str(out), settings) is False
    (out / "results").mkdir()
    (out / "mine.txt").write_text("user file")
    assert quickstart.prepare_output(str(out), settings) is True
    assert (out / "results").is_dir()
    assert quickstart.prepare_output(str(out), {**settings, "epochs": 2}) is False
    assert not (out / "results").exists() and (out / "mine.txt").exists()  # only its own folders go
    assert json.loads((out / quickstart.SETTINGS_FILE).read_text())["epochs"] == 2
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("")
    with pytest.raises(SystemExit, match="not a quick-start output folder"):
        quickstart.prepare_output(str(other), settings)


def test_presets_fit_their_data():
    for name, preset in quickstart.PRESETS.items():
        assert preset.videos_per_epoch >= preset.batch_size, name
    assert quickstart.PRESETS["full"].min_auc_gain >= 0.1 and quickstart.PRESETS["quick"].min_auc_gain >= 0.1


@pytest.mark.slow
def test_quick_quickstart_end_to_end_and_learns(tmp_path):
    """`make quickstart QUICK=1` as a user runs it: every stage, and the trained model clearly beats the
    untrained one on the held-out benchmarks (the script itself exits non-zero below its margin)."""
    out = tmp_path / "qs"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "quickstart.py"), "--quick", "--out", str(out),
                           "--no-progress"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert str(out) in proc.stdout and "[5/5]" in proc.stdout

    # held-out test data, snapshots of both models
    for bench in quickstart.BENCHMARKS:
        assert (out / "data" / "test" / bench / f"{bench}.json").is_file()
    assert (out / "data" / "train" / "train.json").is_file()
    import torch

    untrained = torch.load(out / "snapshots" / "untrained.pth", weights_only=True)
    trained = torch.load(out / "snapshots" / "checkpoint_e1.pth", weights_only=True)
    assert untrained["epoch"] == 0 and trained["epoch"] == 1
    changed = [k for k, v in untrained["state_dict"].items()
               if v.is_floating_point() and not torch.equal(v, trained["state_dict"][k])]
    assert changed, "training did not change any weight"

    # one result file per video and model, metrics in range
    otb = json.loads((out / "eval" / "OTB100.json").read_text())
    vot = json.loads((out / "eval" / "VOT2018.json").read_text())
    for metrics in (otb, vot):
        assert set(metrics) == set(quickstart.TRACKERS)
    for name in quickstart.TRACKERS:
        assert set(otb[name]) == {"success_auc", "precision", "norm_precision"}
        assert all(0.0 <= v <= 1.0 for v in otb[name].values())
        assert set(vot[name]) == {"eao", "accuracy", "robustness", "lost_number"}
        # undefined (NaN, written as JSON null) when the tracker fails within every re-init's burn-in (pysot too)
        accuracy = vot[name]["accuracy"]
        assert 0.0 <= vot[name]["eao"] <= 1.0 and (accuracy is None or 0.0 <= accuracy <= 1.0)
        assert vot[name]["robustness"] >= 0 and float(vot[name]["lost_number"]).is_integer()
        assert list((out / "results" / "OTB100" / name).glob("*.txt"))

    # plots are real PNGs, and the report points at them and holds both tables
    plots = sorted((out / "plots").rglob("*.png"))
    assert {p.relative_to(out / "plots").parts[0] for p in plots} == set(quickstart.BENCHMARKS)
    for plot in plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert otb["trained"]["success_auc"] - otb["untrained"]["success_auc"] >= quickstart.PRESETS["quick"].min_auc_gain
    assert vot["trained"]["eao"] > vot["untrained"]["eao"]
    assert vot["trained"]["lost_number"] < vot["untrained"]["lost_number"]
    for needle in ("## Timings", "**total**", "Success (AUC)", "EAO", "Robustness", "The model learned",
                   "tools/train.py", "tools/test.py", "tools/eval.py", "scripts/make_synthetic.py"):
        assert needle in report, needle
    for plot in plots:
        assert str(plot.relative_to(out)) in report
    auc = f"{otb['trained']['success_auc']:.3f}"
    assert auc in report
