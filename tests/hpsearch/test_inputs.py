"""A search study and each configuration's result folder record what produced their scores (snapshot content,
settings, benchmark); a rerun with other inputs is refused naming the difference, never scored with old results."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import tiny_cfg, tool_error, torch_threads
from hp_bench import bench, tool_argv, write_snapshots  # noqa: F401 - the shared session fixture (no conftest here: it would shadow tests/conftest.py)
from siamkpn.cli.hp_search import main
from siamkpn.config import load_cfg
from siamkpn.hpsearch import study as st
from siamkpn.hpsearch.inputs import RECORD_NAME, InputsError, SearchInputs, check_result_folder, search_settings
from toolkit.datasets import DatasetFactory

ONE = ["--penalty-k", "0.1", "--window-influence", "0.5", "--lr", "0.5", "--level", "1", "--end-epoch", "1"]


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _inputs(bench: Path, snapshots: Path, epochs=(1,), **track) -> SearchInputs:
    cfg = load_cfg(str(bench / "config.yaml"))
    cfg.TRACK.update(track)
    data = DatasetFactory.create_dataset("OTB100", bench / "OTB100")
    return SearchInputs.build(search_settings(cfg, data, region_searched=False),
                              {e: snapshots / f"checkpoint_e{e}.pth" for e in epochs})


def _attrs(inputs: SearchInputs) -> dict:
    return {"dataset": "OTB100", "metric": "success_auc", **inputs.study_attrs()}


def test_a_study_refuses_other_snapshots_and_settings_and_records_new_epochs(bench, tmp_path):
    other = tmp_path / "other"
    write_snapshots(tiny_cfg(stack=1), other, (1,), seed=100)
    storage = st.open_storage(f"sqlite:///{tmp_path / 'hp.db'}")
    mine = _inputs(bench, bench)
    study = st.open_study(storage, "s", _attrs(mine))
    assert study.user_attrs["snapshot_e1"]["size"] == (bench / "checkpoint_e1.pth").stat().st_size
    assert study.user_attrs["settings"]["dataset"]["frames"] == 20
    st.open_study(storage, "s", _attrs(mine))  # the same inputs: fine

    with pytest.raises(InputsError, match=r"study 's' in sqlite:///.*hp\.db holds results of other inputs: "
                                          r"snapshot_e1\.sha256: recorded '.*', now '.*'; for these inputs "
                                          r"use a new --results-dir \(with --storage, also another --study-name\)"):
        st.open_study(storage, "s", _attrs(_inputs(bench, other)))
    with pytest.raises(InputsError, match=r"settings\.config\.TRACK\.TH: recorded 0\.15, now 0\.3"):
        st.open_study(storage, "s", _attrs(_inputs(bench, bench, TH=0.3)))
    with pytest.raises(InputsError, match=r"settings\.mode: recorded 'exact', now 'fast'"):
        st.open_study(storage, "s", _attrs(_inputs(bench, bench, FAST=True)))
    # the searched values are per configuration, not settings of the study
    st.open_study(storage, "s", _attrs(_inputs(bench, bench, PENALTY_K=0.3, LR=0.9)))

    st.open_study(storage, "s", _attrs(_inputs(bench, bench, epochs=(1, 2))))  # another epoch: recorded
    assert "snapshot_e2" in st.open_study(storage, "s", _attrs(mine)).user_attrs
    with pytest.raises(InputsError, match=r"snapshot_e2\.sha256"):
        st.open_study(storage, "s", _attrs(SearchInputs(mine.settings, {2: mine.snapshots[1]})))


def test_a_result_folder_records_its_inputs_and_refuses_others(tmp_path):
    folder = tmp_path / "checkpoint_e1_pk-0.100_wi-0.500_lr-0.500"
    record = {"settings": {"mode": "exact"}, "snapshot": {"sha256": "a" * 64, "size": 3}}
    results = [str(folder / "Synth001.txt")]
    check_result_folder(str(folder), record, results)
    assert json.loads((folder / RECORD_NAME).read_text()) == record
    (folder / "Synth001.txt").write_text("1,2,3,4\n")
    check_result_folder(str(folder), record, results)  # a resumed configuration: fine
    other = {**record, "snapshot": {"sha256": "b" * 64, "size": 3}}
    with pytest.raises(InputsError, match=rf"{re.escape(str(folder))} holds results of other inputs: "
                                          r"snapshot\.sha256: .*; use a new --results-dir"):
        check_result_folder(str(folder), other, results)
    (folder / RECORD_NAME).unlink()
    with pytest.raises(InputsError, match=r"holds result files \(e\.g\. .*Synth001\.txt\) but no record"):
        check_result_folder(str(folder), record, results)


def _evaluated(out: str) -> int:
    return int(re.search(r"this worker: (\d+) configurations evaluated", out).group(1))


def test_the_tool_never_reports_old_models_scores_for_new_snapshots(bench, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(tool_argv(bench, out, "OTB100", *ONE)) == 0
    assert _evaluated(capsys.readouterr().out) == 1
    other = tmp_path / "other"
    write_snapshots(tiny_cfg(stack=1), other, (1,), seed=100)

    # same study, other models: refused before anything is evaluated (it used to evaluate nothing and print
    # the old models' scores)
    line = tool_error(capsys, main, tool_argv(bench, out, "OTB100", *ONE, snapshots=other))
    assert "study 'hp_search_OTB100'" in line and "snapshot_e1.sha256: recorded" in line
    assert line.endswith("for these inputs use a new --results-dir (with --storage, also another --study-name)")
    # a new study in the same results folder: the configuration's folder holds the old models' results
    line = tool_error(capsys, main, tool_argv(bench, out, "OTB100", *ONE, "--study-name", "new", snapshots=other))
    assert "checkpoint_e1_pk-0.100_wi-0.500_lr-0.500 holds results of other inputs: snapshot.sha256" in line
    assert "use a new --results-dir" in line
    # a new results folder: evaluated afresh
    assert main(tool_argv(bench, tmp_path / "res2", "OTB100", *ONE, snapshots=other)) == 0
    assert _evaluated(capsys.readouterr().out) == 1
    # the first study with one more epoch of the same snapshots: only the new epoch is evaluated
    assert main(tool_argv(bench, out, "OTB100", *ONE[:-1], "2")) == 0
    assert _evaluated(capsys.readouterr().out) == 1
