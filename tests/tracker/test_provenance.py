"""The record of what produced a result folder: what it compares, what it ignores, and how it guards a folder."""
from __future__ import annotations

import json
import os

import pytest

from helpers import race, tiny_cfg
from siamkpn.tracker.provenance import (
    RECORD_NAME,
    ResultFolderError,
    prepare_result_folder,
    read_record,
    tracking_provenance,
)
from siamkpn.utils.provenance import provenance_differences
from toolkit.errors import BadInput


@pytest.fixture()
def snapshot(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"weights")
    return str(path)


def _changed(key: str, value):
    cfg = tiny_cfg(stack=1)
    node = cfg
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return cfg


@pytest.mark.parametrize("key,value,named", [
    ("TRACK.WINDOW_INFLUENCE", 0.3, "config.TRACK.WINDOW_INFLUENCE"),
    ("TRACK.INSTANCE_SIZE", 271, "config.TRACK.INSTANCE_SIZE"),
    ("TRAIN.STACK", 2, "config.TRAIN.STACK"),
    ("TRAIN.NORMWH", True, "config.TRAIN.NORMWH"),
    ("BACKBONE.KWARGS.used_layers", [2, 3, 4], "config.BACKBONE.KWARGS.used_layers"),
    ("KPN.KWARGS.weighted", False, "config.KPN.KWARGS.weighted"),
    ("TRACK.FAST", True, "mode"),
])
def test_inputs_that_change_boxes_are_named(snapshot, key, value, named):
    base = tracking_provenance(tiny_cfg(stack=1), snapshot, "float32")
    diffs = provenance_differences(base, tracking_provenance(_changed(key, value), snapshot, "float32"))
    assert [d.split(":")[0] for d in diffs] == [named]


@pytest.mark.parametrize("key,value", [("TRAIN.BATCH_SIZE", 8), ("TRAIN.BASE_LR", 0.1), ("CUDA", False),
                                       ("DATASET.GRAY", 0.5), ("TRAIN.SNAPSHOT_DIR", "elsewhere")])
def test_training_only_settings_do_not_block_a_resume(snapshot, key, value):
    base = tracking_provenance(tiny_cfg(stack=1), snapshot, "float32")
    assert provenance_differences(base, tracking_provenance(_changed(key, value), snapshot, "float32")) == []


def test_snapshot_content_and_precision_count_not_the_name(tmp_path, snapshot):
    cfg = tiny_cfg(stack=1)
    base = tracking_provenance(cfg, snapshot, "float32")
    (tmp_path / "renamed.pth").write_bytes(b"weights")
    assert provenance_differences(base, tracking_provenance(cfg, str(tmp_path / "renamed.pth"), "float32")) == []
    (tmp_path / "w.pth").write_bytes(b"weightz")
    diffs = provenance_differences(base, tracking_provenance(cfg, snapshot, "bfloat16"))
    assert [d.split(":")[0] for d in diffs] == ["precision", "snapshot.sha256"]


def test_record_round_trip_resumes_and_mismatch_keeps_everything(tmp_path, snapshot):
    folder = tmp_path / "res" / "OTB100" / "w"
    results = [str(folder / "SeqA.txt"), str(folder / "SeqB.txt")]
    current = tracking_provenance(tiny_cfg(stack=1), snapshot, "float32")
    prepare_result_folder(str(folder), current, results, False, {"snapshot": snapshot, "device": "cpu"})
    assert read_record(str(folder))["provenance"] == current
    (folder / "SeqA.txt").write_text("1,2,3,4\n")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    prepare_result_folder(str(folder), current, results, False, {"snapshot": snapshot, "device": "cuda:0"})
    other = tracking_provenance(_changed("TRACK.LR", 0.9), snapshot, "float32")
    with pytest.raises(ResultFolderError, match=r"config\.TRACK\.LR: recorded 0\.4, now 0\.9; use --tracker-name"):
        prepare_result_folder(str(folder), other, results, False, {"snapshot": snapshot})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_overwrite_removes_old_results_and_record(tmp_path, snapshot):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "SeqA.txt").write_text("1,2,3,4\n")
    (folder / "notes.md").write_text("mine")  # not a result file: left alone
    (folder / RECORD_NAME).write_text(json.dumps({"provenance": {"old": 1}}))
    current = tracking_provenance(tiny_cfg(stack=1), snapshot, "float32")
    prepare_result_folder(str(folder), current, [str(folder / "SeqA.txt")], True, {"snapshot": snapshot})
    assert sorted(p.name for p in folder.iterdir()) == ["notes.md", RECORD_NAME]
    assert read_record(str(folder))["provenance"] == current


@pytest.mark.parametrize("text", ["{broken", "[1, 2]", '{"provenance": 3}'])
def test_unreadable_record_is_an_error_naming_it(tmp_path, text):
    (tmp_path / RECORD_NAME).write_text(text)
    with pytest.raises(ResultFolderError, match=RECORD_NAME) as err:
        read_record(str(tmp_path))
    assert isinstance(err.value, BadInput)


def _prepare(folder, lr, barrier, queue):
    barrier.wait()
    try:
        prepare_result_folder(folder, {"config": {"TRACK.LR": lr}}, [], False, {"tool": f"lr {lr}"})
        queue.put((lr, "ok"))
    except ResultFolderError as err:
        queue.put((lr, f"ResultFolderError: {err}"))
    except BaseException as err:  # reported to the test rather than lost in the child
        queue.put((lr, f"{type(err).__name__}: {err}"))


def _race(folder, lrs):
    return race(_prepare, lrs, str(folder))


def test_runs_with_different_inputs_started_together_never_both_write_one_folder(tmp_path):
    """The record's check and write happen under the folder's lock: one run records, the other is refused."""
    for attempt in range(20):
        folder = tmp_path / f"try{attempt}"
        folder.mkdir()
        outcomes = _race(folder, [0.4, 0.9])
        winners = [lr for lr, outcome in outcomes if outcome == "ok"]
        assert len(winners) == 1, outcomes
        (loser,) = [outcome for lr, outcome in outcomes if lr not in winners]
        assert loser.startswith("ResultFolderError: ") and "holds results of other inputs" in loser
        assert json.loads((folder / RECORD_NAME).read_text())["provenance"] == {"config": {"TRACK.LR": winners[0]}}
        assert os.listdir(folder) == [RECORD_NAME]  # no lock file or temporary file left


def test_runs_with_the_same_inputs_started_together_both_go_on(tmp_path):
    for attempt in range(3):
        folder = tmp_path / f"try{attempt}"
        assert _race(folder, [0.4, 0.4]) == [(0.4, "ok"), (0.4, "ok")]
        assert os.listdir(folder) == [RECORD_NAME]
