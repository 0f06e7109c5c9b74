"""siamkpn-hp-search's command line: values outside their range are refused naming the flag, --help shows every
flag's default and the output folder, and a metric the benchmark cannot give is an error, not empty tables."""
from __future__ import annotations

import argparse
import re
import tracemalloc

import pytest

import siamkpn.hpsearch.study as st
from helpers import tool_error, torch_threads
from hp_bench import bench, tool_argv  # noqa: F401 - the shared session fixture (no conftest here: it would shadow tests/conftest.py)
from siamkpn.cli.hp_search import build_parser, main, parse_args


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


BIG = ["--penalty-k", "0,1,0.000001", "--window-influence", "0,1,0.0001", "--lr", "0.3,0.6,0.1"]  # 1e6 x 1e4 x 3


def test_a_huge_grid_is_refused_at_once_naming_the_count_and_the_flag(capsys):
    tracemalloc.start()
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["--config", "missing.yaml", "--dataset", "OTB100", "--start-epoch", "1", "--end-epoch", "1", *BIG])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert exit_.value.code == 2
    # it used to build the 1e6 values, then enumerate 3e10 configurations: 6 GB after 90 s, nothing printed
    assert capsys.readouterr().err.splitlines()[-1] == (
        "siamkpn-hp-search: error: the search has 30,000,000,078 configurations (1 epoch x 1,000,000 --penalty-k x "
        "10,000 --window-influence x 3 --lr + up to 78 in level 2), more than --max-configs 100,000: use larger "
        "steps or fewer epochs, or raise --max-configs")
    assert peak < 4 * 2 ** 20  # counted from the ranges: no value list was made (nor the config read)


def test_the_limit_counts_every_epoch_region_and_level_and_a_grid_within_it_is_made(capsys):
    base = ["--config", "c.yaml", "--dataset", "OTB100", "--start-epoch", "1", "--end-epoch", "2",
            "--penalty-k", "0,1,0.01", "--window-influence", "0.1,0.3,0.1", "--lr", "0.5"]  # 2 x 100 x 2 x 1 = 400
    args = parse_args(base + ["--max-configs", "424"])  # + level 2: 3 centres x (3 x 3 - 1) neighbours
    assert len(args.penalty_k) == 100 and args.window_influence == [0.1, 0.2] and args.lr == [0.5]
    assert parse_args(base + ["--max-configs", "400", "--level", "1"]).lr == [0.5]
    regions = parse_args(base + ["--search-region", "255,288,8", "--level", "1", "--max-configs", "2000"])
    assert regions.search_region == [255, 263, 271, 279, 287]
    for extra, message in [(["--max-configs", "423"], "the search has 424 configurations (2 epochs x 100 --penalty-k "
                            "x 2 --window-influence x 1 --lr + up to 24 in level 2), more than --max-configs 423"),
                           (["--search-region", "255,288,8", "--no-refine", "--max-configs", "1999"],
                            "the search has 2,000 configurations (2 epochs x 5 --search-region x 100 --penalty-k x "
                            "2 --window-influence x 1 --lr), more than --max-configs 1,999")]:
        with pytest.raises(SystemExit):
            parse_args(base + extra)
        assert message in capsys.readouterr().err


def _fill_the_disk(open_study):
    """open_study, then a database that cannot grow: SQLite answers "database or disk is full" (SQLITE_FULL), as on a
    full disk."""
    from sqlalchemy import event

    def opened(storage, *args, **kwargs):
        study = open_study(storage, *args, **kwargs)

        @event.listens_for(storage.engine, "connect")
        def _full(connection, _record):
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            connection.execute(f"PRAGMA max_page_count = {pages}")

        storage.engine.dispose()
        return study
    return opened


def test_a_full_disk_names_the_study_database(bench, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(st, "open_study", _fill_the_disk(st.open_study))
    argv = tool_argv(bench, tmp_path / "res", "OTB100", "--level", "1", "--penalty-k", "0,1,0.05")  # 80 to enqueue
    line = tool_error(capsys, main, argv, code=1)
    db = tmp_path / "res" / "OTB100" / "hp_search.db"
    # it used to be optuna's "invalid data in the commit, e.g. exceeding max length", after retrying for ~40 s
    assert line.startswith(f"siamkpn-hp-search: error: StorageFullError: cannot write the study database {db}: "
                           "No space left on device (database or disk is full)"), line
