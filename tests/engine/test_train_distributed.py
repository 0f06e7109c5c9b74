"""tools/train.py for real: two processes under torchrun (gloo, CPU) on synthetic data, then a resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from helpers import tiny_cfg
from siamkpn.models.checkpoint import read_checkpoint
from siamkpn.utils.lock import FileLock

pytestmark = pytest.mark.slow


def _run(cmd, cwd, timeout=600, code=0):
    """Run `cmd` in its own process group, so a hang cannot leave worker processes behind; expect exit `code`
    (None: any failure)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout}s: {' '.join(map(str, cmd))}\n{out[-2000:]}{err[-2000:]}")
    ok = proc.returncode != 0 if code is None else proc.returncode == code
    assert ok, (proc.returncode, out[-3000:] + err[-3000:])
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    _run([sys.executable, str(REPO / "scripts" / "make_synthetic.py"), "--out", str(out), "--seed", "3",
          "--train-videos", "4", "--train-frames", "6", "--parts", "train"], cwd=out)
    return out / "train"


def _config(tmp_path, epochs):
    cfg = tiny_cfg(stack=2)
    cfg.DATASET.NAMES = ["SYNTH"]
    cfg.DATASET.VIDEOS_PER_EPOCH = 8
    cfg.TRAIN.EPOCH = epochs
    cfg.TRAIN.BATCH_SIZE = 2
    cfg.TRAIN.NUM_WORKERS = 0
    cfg.TRAIN.LR_WARMUP.WARMUP = False
    cfg.TRAIN.LR.KWARGS.start_lr = 1e-3
    cfg.TRAIN.LR.KWARGS.end_lr = 1e-4
    cfg.TRAIN.BASE_LR = 1e-3
    cfg.BACKBONE.TRAIN_EPOCH = 1
    cfg.BACKBONE.TRAIN_LAYERS = ["layer3"]
    cfg.TRAIN.SNAPSHOT_DIR = str(tmp_path / "snapshot")
    cfg.TRAIN.LOG_DIR = str(tmp_path / "logs")
    path = tmp_path / "config.yaml"
    path.write_text(cfg.dump())
    return path


def _torchrun(config, data_root, cwd, *extra, code=0):
    return _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                 str(REPO / "tools" / "train.py"), "--cfg", str(config), "--data-root", str(data_root),
                 "--device", "cpu", "--no-progress", *extra], cwd=cwd, code=code)


def test_two_process_run_then_exact_resume(tmp_path, synthetic):
    straight = tmp_path / "straight"
    straight.mkdir()
    _torchrun(_config(straight, epochs=2), synthetic, straight)
    snaps = straight / "snapshot"
    assert (snaps / "checkpoint_e1.pth").exists() and (snaps / "checkpoint_e2.pth").exists()
    assert "train.log" in os.listdir(straight / "logs")
    e1 = read_checkpoint(str(snaps / "checkpoint_e1.pth"))
    assert set(e1["rng"]) == {"0", "1"} and e1["epoch"] == 1  # both ranks' RNG states are kept

    # interrupted after epoch 1: a fresh run resumed from that snapshot ends identical to the straight run
    resumed = tmp_path / "resumed"
    (resumed / "snapshot").mkdir(parents=True)
    (resumed / "snapshot" / "checkpoint_e1.pth").write_bytes((snaps / "checkpoint_e1.pth").read_bytes())
    proc = _torchrun(_config(resumed, epochs=2), synthetic, resumed, "--resume", "auto")
    assert "resumed from" in proc.stderr + proc.stdout
    a = read_checkpoint(str(snaps / "checkpoint_e2.pth"))["state_dict"]
    b = read_checkpoint(str(resumed / "snapshot" / "checkpoint_e2.pth"))["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_rank_stops_with_one_line_when_the_snapshot_folder_is_held(tmp_path, synthetic):
    """Rank 0 alone holds TRAIN.SNAPSHOT_DIR; when another run has it, rank 1 must not wait for rank 0 forever."""
    (tmp_path / "snapshot").mkdir()
    with FileLock(str(tmp_path / "snapshot" / "train.lock"), "siamkpn-train"):
        proc = _torchrun(_config(tmp_path, epochs=1), synthetic, tmp_path, code=None)
    # both ranks write to one pipe, so their lines may interleave with the launcher's output: count, don't split
    err = proc.stderr
    assert err.count("siamkpn-train: error: ") == 2, err[-3000:]
    assert err.count("is in use by another training run") == 2 and err.count("process 0 stopped: ") == 1, err[-3000:]
    assert os.listdir(tmp_path / "snapshot") == [] and not (tmp_path / "logs").exists()
