"""tools/test.py as a user runs it: result layout, resume, and no partial result after a crash."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

from helpers import tiny_cfg, tool_error
from siamkpn.cli.test import main
from tiny_bench import FRAMES, drifting, frames, write_otb_video, write_tiny_snapshot, write_vot

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "config.yaml").write_text(tiny_cfg(stack=1).dump())
    write_tiny_snapshot(tmp / "tiny_e7.pth", seed=0)
    for seed, name in enumerate(("SeqA", "SeqB", "SeqC")):
        write_otb_video(tmp / "OTB100", name, seed)
    write_vot(tmp / "VOT2018", "vseq", 5, drifting())
    return tmp


def _run(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "tools" / "test.py"), "--config", str(tmp / "config.yaml"),
           "--snapshot", str(tmp / "tiny_e7.pth"), "--device", "cpu", "--results-dir", str(tmp / "results"), *args]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300)


def _lines(path: Path):
    return [[float(v) for v in s.split(",")] for s in path.read_text().split()]


def test_ope_results_resume_and_no_partial_files(setup):
    tmp = setup
    out_dir = tmp / "results" / "OTB100" / "tiny_e7"
    frame = tmp / "OTB100" / "SeqC" / "img" / "0003.jpg"
    good = frame.read_bytes()
    frame.write_bytes(b"not a jpeg")  # SeqC (the last video) crashes mid-way
    first = _run(tmp, "--dataset", "OTB100", "--dataset-root", str(tmp / "OTB100"))
    assert first.returncode != 0 and "0003.jpg" in first.stderr
    # nothing of SeqC, no temp file; the record of what produced the results
    assert sorted(p.name for p in out_dir.iterdir()) == ["SeqA.txt", "SeqB.txt", "provenance.json"]
    seq_a = _lines(out_dir / "SeqA.txt")
    assert len(seq_a) == FRAMES and seq_a[0] == [20.5, 12.5, 18.0, 14.0]  # init box: gt + 0.5
    assert all(len(box) == 4 and box[2] >= 10 for box in seq_a)
    assert "Video: SeqA" in first.stderr + first.stdout and "fps" in first.stderr + first.stdout

    frame.write_bytes(good)
    seq_b = (out_dir / "SeqB.txt").read_text()
    (out_dir / "SeqA.txt").write_text("20.5,12.5,18.0,14.0\n")  # an incomplete result is redone
    second = _run(tmp, "--dataset", "OTB100", "--dataset-root", str(tmp / "OTB100"))
    assert second.returncode == 0, second.stderr
    log = second.stdout + second.stderr
    assert "SeqB" in log and "already done" in log and "Video: SeqA" in log and "Video: SeqC" in log
    assert _lines(out_dir / "SeqA.txt") == seq_a  # deterministic rerun
    assert (out_dir / "SeqB.txt").read_text() == seq_b
    assert len(_lines(out_dir / "SeqC.txt")) == FRAMES
    assert sorted(p.name for p in out_dir.iterdir()) == ["SeqA.txt", "SeqB.txt", "SeqC.txt", "provenance.json"]


def test_vot_layout_tracker_name_and_lost_count(setup):
    tmp = setup
    run = _run(tmp, "--dataset", "VOT2018", "--dataset-root", str(tmp / "VOT2018"), "--tracker-name", "mine")
    assert run.returncode == 0, run.stderr
    result = tmp / "results" / "VOT2018" / "mine" / "baseline" / "vseq" / "vseq_001.txt"
    lines = result.read_text().split()
    assert len(lines) == FRAMES and lines[0] == "1"
    assert all(s in ("0", "2") or len(s.split(",")) == 4 for s in lines[1:])
    assert "Lost:" in run.stdout + run.stderr and "mine total lost:" in run.stdout


def test_unknown_video_is_an_error(setup):
    run = _run(setup, "--dataset", "OTB100", "--dataset-root", str(setup / "OTB100"), "--video", "Nope",
               "--results-dir", str(setup / "other"))
    assert run.returncode != 0 and "'Nope'" in run.stderr


@pytest.fixture
def in_process():
    """Runs the tool in this process with one torch thread (fast on a busy machine), then restores the count."""
    threads = torch.get_num_threads()
    yield main
    torch.set_num_threads(threads)


def _argv(tmp: Path, results: Path, root: Path) -> list:
    return ["--config", str(tmp / "config.yaml"), "--snapshot", str(tmp / "tiny_e7.pth"), "--device", "cpu",
            "--threads", "1", "--results-dir", str(results), "--dataset", "OTB100", "--dataset-root", str(root)]


@pytest.mark.parametrize("fails", ["SeqB.txt", "provenance.json"])
def test_disk_full_names_the_file_exits_1_and_keeps_finished_videos(setup, tmp_path, capsys, monkeypatch, fails,
                                                                   in_process):
    replace = os.replace

    def disk_full_at(src, dst):  # the disk fills up when this file is written
        if os.path.basename(dst) == fails:
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", disk_full_at)
    line = tool_error(capsys, in_process, _argv(setup, tmp_path, setup / "OTB100"), code=1)
    folder = tmp_path / "OTB100" / "tiny_e7"
    assert line.startswith("siamkpn-test: error: ")
    assert f"cannot write {folder / fails}: No space left on device" in line
    done = ["SeqA.txt", "provenance.json"] if fails == "SeqB.txt" else []
    assert sorted(p.name for p in folder.iterdir()) == done  # no temporary or half-written file
    if done:
        assert len(_lines(folder / "SeqA.txt")) == FRAMES


def test_suspicious_inputs_are_warned_once_per_video_above_the_progress_bar(setup, tmp_path, capsys, in_process):
    root = tmp_path / "OTB100"
    (root / "Odd" / "img").mkdir(parents=True)
    for i, (img, _) in enumerate(frames(3, drifting()), 1):  # 64x48 frames, the last two wider
        cv2.imwrite(str(root / "Odd" / "img" / f"{i:04d}.jpg"), img if i < 4 else cv2.resize(img, (80, 48)))
    gt = ["100,60,18,14"] + [f"{x},{y},18,14" for x, y in drifting()[1:]]  # the first box right of the image
    (root / "Odd" / "groundtruth_rect.txt").write_text("\n".join(gt) + "\n")
    assert in_process(_argv(setup, tmp_path / "results", root)) == 0
    err = capsys.readouterr().err
    warned = [line.split("\r")[-1] for line in err.splitlines() if "warning: " in line]
    frame = root / "Odd" / "img"
    assert warned == [
        f"warning: video 'Odd' frame 0 ({frame / '0001.jpg'}): the init box [100.5, 60.5, 18, 14] lies entirely "
        "outside the 64x48 image; tracked as given",
        f"warning: video 'Odd' frame 3 ({frame / '0004.jpg'}): a 80x48 image in a video whose first frame is "
        "64x48; tracked as given"]
    assert len(_lines(tmp_path / "results" / "OTB100" / "tiny_e7" / "Odd.txt")) == FRAMES
