"""The benchmark scripts run and print their figures (what they measure is not asserted: that is timing)."""
from __future__ import annotations

import importlib.util
import re
import sys

import pytest
import torch

from conftest import REPO
from helpers import tiny_cfg


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_train_speed_prints_step_rows_per_variant(capsys):
    bench = _load("train_speed")
    config = REPO / "experiments" / "siamkpn_quickstart" / "config.yaml"
    assert bench.main(["--skip-pipeline", "--config", str(config), "--step-batch-sizes", "2", "--steps", "1",
                       "--variants", "fp32,channels_last"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if re.match(r"\s+2 (fp32|channels_last)", line)]
    assert [r[1] for r in rows] == ["fp32", "channels_last"]
    assert all(float(r[2]) > 0 and float(r[4]) > 0 for r in rows)  # samples/s, peak MiB
    assert rows[0][3] == "1.00x"


def test_train_speed_refuses_unknown_variants(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _load("train_speed").main(["--skip-pipeline", "--variants", "fp64"])
    assert exit_info.value.code == 2 and "unknown variant(s) ['fp64']" in capsys.readouterr().err


@pytest.mark.slow
def test_fast_mode_accuracy_prints_both_modes(tmp_path, capsys):
    from siamkpn.models.model_builder import ModelBuilder

    cfg = tiny_cfg(stack=1)
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(cfg.dump())
    torch.manual_seed(0)
    torch.save({"state_dict": ModelBuilder(cfg).state_dict()}, tmp_path / "model.pth")
    bench = _load("fast_mode_accuracy")
    assert bench.main(["--config", str(cfg_path), "--snapshot", str(tmp_path / "model.pth"), "--videos", "1",
                       "--vot-videos", "1", "--paths", "fast"]) == 0
    out = capsys.readouterr().out
    values = {}  # {benchmark: {path: (value, |diff|)}} from the table's rows
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[2] in ("exact", "fast") and parts[3] in ("success_auc", "eao"):
            values.setdefault(parts[0], {})[parts[2]] = (float(parts[4]), float(parts[5]))
    assert set(values) == {"OTB100", "VOT2018"}, out
    for by_path in values.values():
        (exact, _), (fast, diff) = by_path["exact"], by_path["fast"]
        assert 0 <= exact <= 1 and 0 <= fast <= 1 and diff == pytest.approx(abs(fast - exact), abs=1e-4)
    assert "frames/s" in out and "largest headline difference" in out


def test_fast_mode_accuracy_paired_error_is_the_standard_error_of_per_video_differences():
    paired_error = _load("fast_mode_accuracy").paired_error
    exact = {"a": 0.5, "b": 0.2, "c": 0.9}
    shifted = {"a": 0.5 + 0.01, "b": 0.2 - 0.03, "c": 0.9 + 0.05, "unscored": 0.0}  # only videos exact has count
    diffs = [0.01, -0.03, 0.05]
    expected = (sum((d - sum(diffs) / 3) ** 2 for d in diffs) / 2) ** 0.5 / 3 ** 0.5
    assert paired_error(shifted, exact) == pytest.approx(expected)
    assert paired_error({v: x + 0.02 for v, x in exact.items()}, exact) == pytest.approx(0.0, abs=1e-12)
    assert paired_error({"a": 0.1}, {"a": 0.2}) != paired_error({"a": 0.1}, {"a": 0.2})  # NaN: one video


def test_fast_mode_accuracy_jackknife_matches_the_standard_error_for_a_mean():
    bench = _load("fast_mode_accuracy")
    per_video = {"a": 0.03, "b": -0.01, "c": 0.02, "d": 0.0}
    videos = list(per_video)
    jack = bench.jackknife_error(lambda subset: sum(per_video[v] for v in subset) / len(subset), videos)
    assert jack == pytest.approx(bench.paired_error(per_video, dict.fromkeys(per_video, 0.0)))
    assert bench.jackknife_error(lambda subset: 1.0, videos) == 0.0
    assert bench.jackknife_error(lambda subset: 1.0, ["a"]) != bench.jackknife_error(lambda subset: 1.0, ["a"])


def test_test_throughput_prints_the_ceiling_and_checks_each_row(tmp_path, capsys):
    """benchmarks/test_throughput.py on a 2-video set: the ceiling line and a row per run, each row's results
    checked against the sequential row's (identical markers; --batch within rounding)."""
    bench = _load("test_throughput")
    assert bench.main(["--configs", "quickstart", "--runs", "2x2", "--videos", "2", "--frames", "6", "--size",
                       "96x72", "--work", str(tmp_path), "--result-lines"]) == 0
    out = capsys.readouterr().out
    ceiling = re.search(r"RESULT quickstart ceiling: ([\d.]+) -> ([\d.]+) frames/s in memory, at most ([\d.]+)x", out)
    assert ceiling and all(float(v) > 0 for v in ceiling.groups()), out
    rows = dict(re.findall(r"RESULT quickstart (\dx\d): (.*)", out))
    assert rows.keys() == {"1x1", "2x2"} and rows["1x1"].endswith("reference"), out
    assert re.search(r"(identical|same markers, max [\d.e+-]+ px)$", rows["2x2"]), out
