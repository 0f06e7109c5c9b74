"""tools/test.py never passes off results of other inputs as its own, and resumes when nothing changed."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from helpers import tiny_cfg, tool_error, torch_threads
from siamkpn.cli.test import main, tracker_name
from siamkpn.utils.provenance import file_identity
from tiny_bench import write_otb_video, write_tiny_snapshot, write_vot

# The box jumps out of the search region at frames 4 and 11: the VOT protocol must record failures.
JUMPING = [(10, 10)] * 3 + [(130, 70)] * 7 + [(10, 10)] * 2


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("provenance")
    (tmp / "config.yaml").write_text(tiny_cfg(stack=1).dump())
    write_tiny_snapshot(tmp / "a" / "tiny_e7.pth", seed=0)
    write_tiny_snapshot(tmp / "b" / "tiny_e7.pth", seed=1)  # same stem, other weights: another training run
    write_tiny_snapshot(tmp / "stack2.pth", seed=0, stack=2)
    for seed, name in enumerate(("SeqA", "SeqB")):
        write_otb_video(tmp / "OTB100", name, seed)
    write_vot(tmp / "VOT2018", "jumper", 3, JUMPING, size=(96, 160))
    return tmp


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _argv(bench: Path, results: Path, *extra: str, snapshot: str = "a/tiny_e7.pth", dataset: str = "OTB100"):
    return ["--config", str(bench / "config.yaml"), "--snapshot", str(bench / snapshot), "--device", "cpu",
            "--dataset", dataset, "--dataset-root", str(bench / dataset), "--results-dir", str(results), *extra]


def _track(capsys, argv) -> str:
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return captured.out + captured.err


def _files(folder: Path) -> dict:
    """Every file under `folder` with its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_unchanged_rerun_skips_finished_videos_and_rewrites_nothing(bench, tmp_path, capsys):
    _track(capsys, _argv(bench, tmp_path))
    folder = tmp_path / "OTB100" / "tiny_e7"
    before = _files(folder)
    assert sorted(before) == ["SeqA.txt", "SeqB.txt", "provenance.json"]
    # a device recorded by another machine is information, not an input that changes boxes
    record = json.loads((folder / "provenance.json").read_text())
    record["written_by"]["device"] = "cuda:0"
    (folder / "provenance.json").write_text(json.dumps(record))
    before["provenance.json"] = ((folder / "provenance.json").read_bytes(),
                                 (folder / "provenance.json").stat().st_mtime_ns)
    log = _track(capsys, _argv(bench, tmp_path, "--video", "SeqB"))
    assert "SeqB" in log and "already done" in log and "SeqA" not in log
    log = _track(capsys, _argv(bench, tmp_path))
    assert log.count("already done") == 2
    assert _files(folder) == before  # bit-identical, not even rewritten


def test_same_stem_other_weights_is_refused(bench, tmp_path, capsys):
    _track(capsys, _argv(bench, tmp_path))
    folder = tmp_path / "OTB100" / "tiny_e7"
    before = _files(folder)
    err = tool_error(capsys, main, _argv(bench, tmp_path, snapshot="b/tiny_e7.pth"))
    assert "siamkpn-test: error:" in err and "snapshot.sha256" in err
    assert str(bench / "b" / "tiny_e7.pth") in err and str(bench / "a" / "tiny_e7.pth") in err
    assert "--tracker-name NAME" in err and "--overwrite" in err
    assert _files(folder) == before


def test_other_track_option_is_refused_naming_the_key(bench, tmp_path, capsys):
    _track(capsys, _argv(bench, tmp_path))
    err = tool_error(capsys, main, _argv(bench, tmp_path, "--opts", "TRACK.PENALTY_K", "0.2"))
    assert "config.TRACK.PENALTY_K: recorded 0.04, now 0.2" in err
    err = tool_error(capsys, main, _argv(bench, tmp_path, "--opts", "TRAIN.STRIDE", "4",
                                                # the training output size that stride gives (checked at load)
                                                "TRAIN.OUTPUT_SIZE", "47"))
    assert "config.TRAIN.STRIDE: recorded 8, now 4" in err


def test_fast_after_exact_is_refused(bench, tmp_path, capsys):
    _track(capsys, _argv(bench, tmp_path))
    err = tool_error(capsys, main, _argv(bench, tmp_path, "--fast"))
    assert "mode: recorded 'exact', now 'fast'" in err


def test_overwrite_retracks_every_video_with_the_new_inputs(bench, tmp_path, capsys):
    _track(capsys, _argv(bench, tmp_path / "old"))
    shutil.copytree(tmp_path / "old", tmp_path / "mixed")
    log = _track(capsys, _argv(bench, tmp_path / "mixed", "--overwrite", snapshot="b/tiny_e7.pth"))
    assert "already done" not in log and "Video: SeqA" in log and "Video: SeqB" in log
    _track(capsys, _argv(bench, tmp_path / "fresh", snapshot="b/tiny_e7.pth"))
    mixed, fresh = tmp_path / "mixed" / "OTB100" / "tiny_e7", tmp_path / "fresh" / "OTB100" / "tiny_e7"
    old = tmp_path / "old" / "OTB100" / "tiny_e7"
    for name in ("SeqA.txt", "SeqB.txt"):
        assert (mixed / name).read_text() == (fresh / name).read_text() != (old / name).read_text()
    record = json.loads((mixed / "provenance.json").read_text())
    assert record["provenance"]["snapshot"] == file_identity(str(bench / "b" / "tiny_e7.pth"))
    assert _track(capsys, _argv(bench, tmp_path / "mixed", snapshot="b/tiny_e7.pth")).count("already done") == 2


def test_results_without_a_readable_record_are_refused_unless_overwrite(bench, tmp_path, capsys):
    _track(capsys, _argv(bench, tmp_path))
    record = tmp_path / "OTB100" / "tiny_e7" / "provenance.json"
    record.unlink()  # results of an older version or another tool
    err = tool_error(capsys, main, _argv(bench, tmp_path))
    assert "2 result file(s)" in err and "no record" in err and "--overwrite" in err
    record.write_text("{not json")
    err = tool_error(capsys, main, _argv(bench, tmp_path))
    assert str(record) in err and "unreadable record" in err
    log = _track(capsys, _argv(bench, tmp_path, "--overwrite"))
    assert "already done" not in log and json.loads(record.read_text())["provenance"]["mode"] == "exact"


def test_partial_checkpoint_is_refused_listing_the_keys(bench, tmp_path, capsys):
    import torch

    state = torch.load(bench / "a" / "tiny_e7.pth", weights_only=True)
    torch.save({k: v for k, v in state.items() if k.startswith("backbone.")}, tmp_path / "backbone_only.pth")
    err = tool_error(capsys, main, _argv(bench, tmp_path, snapshot=str(tmp_path / "backbone_only.pth")))
    assert "backbone_only.pth" in err and "neck." in err and "TRAIN.STACK" in err
    err = tool_error(capsys, main, _argv(bench, tmp_path, snapshot="stack2.pth"))  # config says TRAIN.STACK 1
    assert "stack2.pth" in err and "kpn_head.kpn0.heatmap.z_conv2." in err and "another architecture" in err
    assert not (tmp_path / "OTB100").exists()


def test_total_lost_counts_skipped_videos(bench, tmp_path, capsys):
    first = _track(capsys, _argv(bench, tmp_path, dataset="VOT2018"))
    lost = int(re.search(r"tiny_e7 total lost: (\d+)", first).group(1))
    assert lost >= 1  # the jumps make the tracker fail, so a total that ignores skipped videos shows
    second = _track(capsys, _argv(bench, tmp_path, dataset="VOT2018"))
    assert "already done" in second and f"Lost: {lost}" in second
    assert f"tiny_e7 total lost: {lost}" in second


@pytest.mark.parametrize("name", ["../x", "../../x", "a/b", "..", "."])
def test_tracker_name_must_be_one_folder_name(bench, tmp_path, capsys, name):
    results = tmp_path / "r" / "results"
    err = tool_error(capsys, main, _argv(bench, results, "--tracker-name", name))
    assert "one plain folder name" in err and repr(name) in err
    assert not (tmp_path / "r").exists()


def test_default_tracker_name_is_the_file_stem(bench, tmp_path, capsys):
    assert tracker_name(None, "/w/model.v1.pth") == "model.v1" and tracker_name("mine", "/w/x.pth") == "mine"
    shutil.copy(bench / "a" / "tiny_e7.pth", tmp_path / "tiny.v1.pth")
    _track(capsys, _argv(bench, tmp_path, "--video", "SeqA", snapshot=str(tmp_path / "tiny.v1.pth")))
    assert (tmp_path / "OTB100" / "tiny.v1" / "SeqA.txt").is_file()


@pytest.mark.parametrize("dataset", ["OTB100", "VOT2018"])
def test_eval_reads_a_folder_with_its_record(bench, tmp_path, capsys, dataset):
    from siamkpn.cli.eval import main as eval_main

    _track(capsys, _argv(bench, tmp_path, dataset=dataset))
    assert (tmp_path / dataset / "tiny_e7" / "provenance.json").is_file()
    status = eval_main(["--tracker_path", str(tmp_path), "--dataset", dataset, "--dataset-root", str(bench / dataset),
                        "--no-progress"])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "tiny_e7" in out.out
