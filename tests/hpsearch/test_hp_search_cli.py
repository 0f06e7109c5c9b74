"""siamkpn-hp-search's command line: values outside their range are refused naming the flag, --help shows every
flag's default and the output folder, and a metric the benchmark cannot give is an error, not empty tables."""
from __future__ import annotations

import argparse
import re

import pytest

from helpers import tool_error, torch_threads
from hp_bench import bench, tool_argv  # noqa: F401 - the shared session fixture (no conftest here: it would shadow tests/conftest.py)
from siamkpn.cli.hp_search import build_parser, main


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.mark.parametrize("arg, message", [
    ("--penalty-k=-0.1,0.5,0.1", "argument --penalty-k: values must be at least 0; '-0.1,0.5,0.1' gives -0.1"),
    ("--window-influence=0.5,1.5,0.25", "argument --window-influence: values must be in [0, 1]; '0.5,1.5,0.25' gives "
                                        "1.25"),
    ("--window-influence=-0.2", "argument --window-influence: values must be in [0, 1]; '-0.2' gives -0.2"),
    ("--lr=1.2", "argument --lr: values must be in [0, 1]; '1.2' gives 1.2"),
    ("--lr=0.5,0.1,0.1", "argument --lr: the range '0.5,0.1,0.1' is empty (start must be below stop)"),
    ("--refine-factor=1.5", "--refine-factor must be in (0, 1)"),
    ("--heartbeat=0", "--heartbeat must be at least 1 second"),
])
def test_out_of_range_values_are_refused_naming_the_flag(capsys, arg, message):
    with pytest.raises(SystemExit) as exit_:
        main(["--config", "c.yaml", "--dataset", "OTB100", "--start-epoch", "1", "--end-epoch", "2", arg])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"siamkpn-hp-search: error: {message}"


def test_help_shows_every_flags_default_and_the_output_folder():
    parser = build_parser()
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        text = formatter._expand_help(action) if action.help else ""
        assert text, f"{action.option_strings} has no help"
        if action.nargs != 0:  # on/off switches are off unless given
            assert action.required or "default" in text, f"{action.option_strings}: no default in {text!r}"
    text = parser.format_help()
    assert "(default: 0.05,0.5,0.05)" in text
    for entry in ("output, in <results-dir>/<dataset>/:", "hp_search_summary.csv", "hp_search_summary.json",
                  "hp_search_<a>_<b>.png", "hp_search.db", "hp_search_inputs.json"):
        assert entry in text


def test_sequences_shorter_than_the_eao_interval_are_an_error_with_the_way_out(bench, tmp_path, capsys):
    argv = tool_argv(bench, tmp_path / "res", "VOT2018", "--penalty-k", "0.1", "--window-influence", "0.5",
                     "--level", "1", "--end-epoch", "1")
    line = tool_error(capsys, main, argv)  # it used to track everything, fail every trial and exit 0
    assert line == ("siamkpn-hp-search: error: VOT2018: the sequences are shorter than the EAO interval (100-356 "
                    "frames; the longest has 12), so EAO is undefined for every configuration; search --metric "
                    "accuracy instead, or use longer videos")
    assert not (tmp_path / "res" / "VOT2018" / "checkpoint_e1_pk-0.100_wi-0.500_lr-0.500").exists()
    assert main(argv + ["--metric", "accuracy"]) == 0  # the way out works
    out = capsys.readouterr().out
    assert re.search(r"this worker: 1 configurations evaluated, 0 duplicates skipped, 0 failed", out)
    assert "checkpoint_e1_pk-0.100_wi-0.500_lr-0.500" in out
