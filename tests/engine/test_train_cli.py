"""siamkpn-train's command line: one `siamkpn-train: error:` line and the right exit status for each bad input
or failure, and `--resume auto` past a truncated snapshot. In-process, on two tiny synthetic videos."""
from __future__ import annotations

import errno
import json
import logging
import os
import re
import socket
import subprocess
import sys

import pytest
import torch

from helpers import tiny_cfg, tool_error, torch_threads
from siamkpn.cli.train import main
from siamkpn.datasets.synthetic_sets import write_train_set
from siamkpn.models.checkpoint import read_checkpoint
from siamkpn.utils.lock import FileLock
from toolkit.atomic import temp_files


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    write_train_set(str(out), seed=3, num_videos=2, num_frames=4, progress=False)
    return out


@pytest.fixture
def config(tmp_path):
    """One step per epoch: 2 pairs, batch 2; snapshots and logs in tmp_path."""
    cfg = tiny_cfg(stack=2)
    cfg.DATASET.NAMES = ["SYNTH"]
    cfg.DATASET.VIDEOS_PER_EPOCH = 2
    cfg.TRAIN.EPOCH = 1
    cfg.TRAIN.BATCH_SIZE = 2
    cfg.TRAIN.NUM_WORKERS = 0
    cfg.TRAIN.LR_WARMUP.WARMUP = False
    cfg.TRAIN.LR.KWARGS.start_lr = 1e-3
    cfg.TRAIN.LR.KWARGS.end_lr = 1e-4
    cfg.TRAIN.BASE_LR = 1e-3
    cfg.TRAIN.SNAPSHOT_DIR = str(tmp_path / "snapshot")
    cfg.TRAIN.LOG_DIR = str(tmp_path / "logs")
    path = tmp_path / "config.yaml"
    path.write_text(cfg.dump())
    return path


def _argv(config, data, *extra):
    return ["--cfg", str(config), "--data-root", str(data), "--device", "cpu", "--no-progress", *extra]


def _snapshot_dir(config):
    return config.parent / "snapshot"


@pytest.mark.parametrize("case,pattern", [
    ("unknown_key", r"unknown config key 'TRAIN\.NOPE' in --opts"),
    ("odd_opts", r"--opts needs KEY VALUE pairs .*'TRAIN\.EPOCH' has no value"),
    ("missing_config", r"config file not found: .*missing\.yaml"),
    ("yaml_syntax", r"cannot parse config .*bad\.yaml: .*line 1"),
    ("python_config", r"config file .*config\.py: expected a \.yaml or \.yml file"),
    ("missing_data_root", r"data root not found: .*nowhere"),
    ("resume_missing", r"checkpoint not found: .*gone\.pth"),
    ("resume_truncated", r"cannot read checkpoint .*cut\.pth: .*truncated"),
    ("resume_directory", r"checkpoint .*snap\.pth is a directory: a \.pth file is expected$"),
    ("epoch_zero", r"config .*config\.yaml: TRAIN\.EPOCH = 0 \(from --opts\) must be at least 1$"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, data, config, case, pattern):
    bad_yaml, python_cfg, cut = tmp_path / "bad.yaml", tmp_path / "config.py", tmp_path / "cut.pth"
    bad_yaml.write_text("TRAIN: [unclosed\n")
    python_cfg.write_text(config.read_text())
    cut.write_bytes(b"PK\x03\x04 not a whole zip")
    (tmp_path / "snap.pth").mkdir()
    argv = {
        "unknown_key": _argv(config, data, "--opts", "TRAIN.NOPE", "1"),
        "odd_opts": _argv(config, data, "--opts", "TRAIN.EPOCH"),
        "missing_config": _argv(tmp_path / "missing.yaml", data),
        "yaml_syntax": _argv(bad_yaml, data),
        "python_config": _argv(python_cfg, data),
        "missing_data_root": _argv(config, tmp_path / "nowhere"),
        "resume_missing": _argv(config, data, "--resume", str(tmp_path / "gone.pth")),
        "resume_truncated": _argv(config, data, "--resume", str(cut)),
        "resume_directory": _argv(config, data, "--resume", str(tmp_path / "snap.pth")),
        "epoch_zero": _argv(config, data, "--opts", "TRAIN.EPOCH", "0"),
    }[case]
    line = tool_error(capsys, main, argv, code=2)
    assert line.startswith("siamkpn-train: error: ")
    assert re.search(pattern, line), line


def test_divergence_exits_1_with_one_line_and_no_snapshot(capsys, data, config):
    """A learning rate of 1e6 blows the weights up in one step: exit 1, no snapshot, no claimed good one."""
    line = tool_error(capsys, main, _argv(config, data, "--opts", "TRAIN.BASE_LR", "1e6", "TRAIN.LR.KWARGS.start_lr",
                                          "1e6"), code=1)
    assert "TrainingDiverged: training diverged" in line and "checkpoint_e1.pth not written" in line
    assert "no good snapshot of this run exists" in line
    assert not (_snapshot_dir(config) / "checkpoint_e1.pth").exists()


def test_disk_full_exits_1_naming_the_snapshot_and_keeps_the_old_file(capsys, monkeypatch, data, config):
    folder = _snapshot_dir(config)
    folder.mkdir()
    (folder / "checkpoint_e1.pth").write_bytes(b"the previous run's snapshot")

    def disk_full(obj, f):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    line = tool_error(capsys, main, _argv(config, data), code=1)
    assert f"cannot write checkpoint {folder / 'checkpoint_e1.pth'}: No space left on device" in line
    assert (folder / "checkpoint_e1.pth").read_bytes() == b"the previous run's snapshot"
    assert temp_files(str(folder)) == []


def test_resume_auto_skips_a_truncated_latest_snapshot(capsys, caplog, data, config):
    assert main(_argv(config, data)) == 0
    folder = _snapshot_dir(config)
    first = folder / "checkpoint_e1.pth"
    good = first.read_bytes()
    (folder / "checkpoint_e2.pth").write_bytes(good[: len(good) // 3])  # a copy cut short
    with caplog.at_level(logging.INFO, logger="siamkpn.train"):
        assert main(_argv(config, data, "--resume", "auto", "--opts", "TRAIN.EPOCH", "2")) == 0
    assert first.read_bytes() == good
    assert read_checkpoint(str(folder / "checkpoint_e2.pth"))["epoch"] == 2  # epoch 2 trained again, whole
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("skipping unreadable snapshot" in w and "checkpoint_e2.pth" in w for w in warnings), warnings
    assert any(f"resumed from {first}" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_e1.pth", "checkpoint_e2.pth"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_run_into_a_held_snapshot_folder_stops_with_one_line(capsys, data, config):
    """Issue 18: a second run (another BASE_LR) into a folder in use wrote over the first run's snapshots."""
    assert main(_argv(config, data)) == 0
    folder, logs = _snapshot_dir(config), config.parent / "logs"
    assert not (folder / "train.lock").exists() and not (logs / "train.lock").exists()  # released at the end
    snapshot, log_files = (folder / "checkpoint_e1.pth").read_bytes(), sorted(os.listdir(logs))
    with FileLock(str(folder / "train.lock"), "siamkpn-train"):  # the first run, still training
        line = tool_error(capsys, main, _argv(config, data, "--opts", "TRAIN.BASE_LR", "0.01"), code=2)
    assert f"TRAIN.SNAPSHOT_DIR {folder} is in use by another training run" in line
    assert f"{folder / 'train.lock'} is held by {socket.gethostname()}:{os.getpid()} (siamkpn-train), since" in line
    assert (folder / "checkpoint_e1.pth").read_bytes() == snapshot and sorted(os.listdir(logs)) == log_files


def test_a_shared_log_folder_is_held_too(capsys, data, config):
    logs = config.parent / "logs"
    logs.mkdir()
    with FileLock(str(logs / "train.lock"), "siamkpn-train"):
        line = tool_error(capsys, main, _argv(config, data, "--opts", "TRAIN.SNAPSHOT_DIR",
                                              str(config.parent / "other")), code=2)
    assert f"TRAIN.LOG_DIR {logs} is in use by another training run" in line
    assert os.listdir(config.parent / "other") == []  # its own lock released again, nothing written


def test_resume_auto_takes_over_the_lock_of_a_crashed_run(caplog, data, config):
    assert main(_argv(config, data)) == 0
    folder = _snapshot_dir(config)
    (folder / "train.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "token": "x",
                                                   "purpose": "siamkpn-train", "started": 0.0, "heartbeat": 0.0}))
    with caplog.at_level(logging.INFO, logger="siamkpn.train"):
        assert main(_argv(config, data, "--resume", "auto", "--opts", "TRAIN.EPOCH", "2")) == 0
    assert any("took over" in r.getMessage() and "train.lock" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_e1.pth", "checkpoint_e2.pth"]
