"""siamkpn-test at scale: workers, invocations sharing one folder, kill -9 and resume, stale claims, --batch.

Every run is a subprocess (workers are spawned; invocations are separate programs) on tiny benchmarks with a tiny
model, with timeouts so that nothing can hang the suite.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import tiny_cfg
from tiny_bench import drifting, write_got10k, write_otb_video, write_tiny_snapshot, write_vot, write_vot_lt

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 240
OTB = ("SeqA", "SeqB", "SeqC")
VOT = ("vseq", "wseq", "xseq")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    (tmp / "config.yaml").write_text(tiny_cfg(stack=1).dump())
    write_tiny_snapshot(tmp / "tiny.pth", seed=0)
    for seed, name in enumerate(OTB):
        write_otb_video(tmp / "OTB100", name, seed)
    for seed, name in enumerate(VOT):
        # fast drift: the tiny model loses the box, so the VOT markers (2, 0, re-init 1) are exercised
        write_vot(tmp / "VOT2018", name, seed, [(4 + 9 * i, 4 + 5 * i) for i in range(5)] if seed else drifting())
    (tmp / "VOT2018" / "list.txt").write_text("".join(f"{n}\n" for n in VOT))
    for seed, name in enumerate(VOT):  # long-term: the target leaves for a frame in one video
        write_vot_lt(tmp / "VOT2018-LT", name, seed, drifting(), absent=(3,) if seed == 1 else ())
        write_got10k(tmp / "GOT-10k", name, seed, drifting() if seed else [(4 + 9 * i, 4 + 5 * i) for i in range(5)])
    return tmp


def _cmd(bench: Path, results: Path, dataset: str, *args: str, tool: str = "tools/test.py") -> list:
    script = REPO / tool if tool.startswith("tools/") else Path(__file__).parent / tool
    return [sys.executable, str(script), "--config", str(bench / "config.yaml"), "--snapshot",
            str(bench / "tiny.pth"), "--device", "cpu", "--results-dir", str(results), "--dataset", dataset,
            "--dataset-root", str(bench / dataset), "--no-progress", *args]


def _run(bench: Path, results: Path, dataset: str, *args: str, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(bench, results, dataset, *args, **kw), capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, cwd=bench)


def _files(folder: Path) -> dict:
    """Every file under `folder` (relative path -> bytes), provenance.json's writer apart."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "provenance.json"}


def _tracked(text: str) -> list:
    return re.findall(r"Video: (\S+)\s+Time:", text)


@pytest.fixture(scope="module")
def sequential(bench):
    """The sequential --threads 1 run's files, per dataset (one of each protocol: OPE, VOT reset, long-term,
    GOT-10k)."""
    out = {}
    for dataset in ("OTB100", "VOT2018", "VOT2018-LT", "GOT-10k"):
        run = _run(bench, bench / "seq", dataset, "--threads", "1")
        assert run.returncode == 0, run.stderr
        out[dataset] = (_files(bench / "seq" / dataset / "tiny"), run.stdout)
    return out


@pytest.mark.parametrize("dataset", ["OTB100", "VOT2018"])
def test_workers_write_the_sequential_files_and_each_line_once(bench, sequential, tmp_path, dataset):
    run = _run(bench, tmp_path, dataset, "--workers", "2", "--threads", "1")
    assert run.returncode == 0, run.stderr
    files, seq_out = sequential[dataset]
    assert _files(tmp_path / dataset / "tiny") == files
    names = OTB if dataset == "OTB100" else VOT
    assert sorted(_tracked(run.stdout)) == sorted(names)
    if dataset == "VOT2018":
        total = re.search(r"tiny total lost: (\d+)", seq_out).group(1)
        assert f"tiny total lost: {total}\n" in run.stdout and int(total) > 0
        again = _run(bench, tmp_path, dataset, "--workers", "2", "--threads", "1")  # all done: total from files
        assert again.stdout.count("already done, skipped Lost:") == 3 and f"tiny total lost: {total}" in again.stdout
    assert not (tmp_path / dataset / "tiny" / ".claims").exists()


def test_two_invocations_on_one_folder_track_each_video_once(bench, sequential, tmp_path):
    procs = [subprocess.Popen(_cmd(bench, tmp_path, "OTB100", "--threads", "1"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=bench) for _ in range(2)]
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    tracked = [name for out, _ in outs for name in _tracked(out)]
    assert sorted(tracked) == sorted(OTB)  # each video once, by one of them
    assert _files(tmp_path / "OTB100" / "tiny") == sequential["OTB100"][0]


@pytest.mark.parametrize("flags", [("--workers", "2"), ("--workers", "2", "--batch", "2")])
def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_files(bench, sequential, tmp_path, flags):
    proc = subprocess.Popen(_cmd(bench, tmp_path, "OTB100", *flags, "--threads", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=bench)
    try:
        for line in proc.stdout:  # killed as soon as the first video is written
            if "Time:" in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    folder = tmp_path / "OTB100" / "tiny"
    batched = "--batch" in flags
    rerun = _run(bench, tmp_path, "OTB100", *(flags if batched else ()), "--threads", "1")
    assert rerun.returncode == 0, rerun.stderr
    assert "already done, skipped" in rerun.stdout
    time.sleep(2)  # the killed run's workers notice their parent is gone within a second
    files, single = _files(folder), sequential["OTB100"][0]
    assert files.keys() == single.keys()  # no partial, temporary or claim file either
    for path, data in single.items():
        if batched:  # lanes: the sequential boxes up to the rounding of batched convolutions
            _same_up_to_batching(path, data, files[path])
        else:
            assert files[path] == data, path


def test_a_stale_claim_of_a_dead_process_is_taken_over(bench, sequential, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    claims = tmp_path / "OTB100" / "tiny" / ".claims"
    claims.mkdir(parents=True)
    now = time.time()
    (claims / "SeqB.claim").write_text(
        f'{{"host": "{os.uname().nodename}", "pid": {dead.pid}, "purpose": "siamkpn-test", "started": {now}, '
        f'"heartbeat": {now}, "token": "x"}}')
    run = _run(bench, tmp_path, "OTB100", "--threads", "1")
    assert run.returncode == 0, run.stderr
    assert sorted(_tracked(run.stdout)) == sorted(OTB) and "held by" not in run.stdout
    assert _files(tmp_path / "OTB100" / "tiny") == sequential["OTB100"][0]


def test_different_inputs_started_together_one_refuses_every_time(bench, tmp_path):
    for attempt in range(3):
        results = tmp_path / str(attempt)
        procs = [subprocess.Popen(_cmd(bench, results, "OTB100", "--threads", "1", "--video", "SeqA", "--opts",
                                       "TRACK.LR", lr), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=bench) for lr in ("0.3", "0.5")]
        outs = [p.communicate(timeout=TIMEOUT) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, 2], outs
        refused = next(err for p, (_, err) in zip(procs, outs) if p.returncode == 2)
        assert "holds results of other inputs" in refused and "TRACK.LR" in refused


@pytest.mark.parametrize("how,said", [("raise", "RuntimeError: injected failure on SeqB"),
                                      ("kill", "killed by SIGKILL")])
def test_a_dying_worker_ends_the_run_with_one_line(bench, tmp_path, how, said):
    env = {**os.environ, "SIAMKPN_TEST_CRASH": f"{how}:SeqB"}
    run = _run(bench, tmp_path, "OTB100", "--workers", "2", "--threads", "1", env=env,
               tool="crashing_test_tool.py")
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("siamkpn-test: error: ") and said in errors[0], run.stderr
    assert "tracking SeqB" in errors[0]
    folder = tmp_path / "OTB100" / "tiny"
    assert not (folder / "SeqB.txt").exists() and not (folder / ".claims").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".") or "tmp" in p.name]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_claim_taken_over_while_tracking_is_not_written_then_tracked_again(bench, sequential, tmp_path, workers):
    """A run silent past the claims' limit (here: its claim on SeqB replaced by another process, which then died)
    does not write SeqB; it waits for SeqB like any video held elsewhere, takes the dead holder's claim over and
    tracks it again."""
    folder = tmp_path / "OTB100" / "tiny"
    env = {**os.environ, "SIAMKPN_TEST_CRASH": "steal:SeqB", "SIAMKPN_TEST_FOLDER": str(folder)}
    run = _run(bench, tmp_path, "OTB100", "--workers", workers, "--threads", "1", env=env,
               tool="crashing_test_tool.py")
    assert run.returncode == 0, run.stderr
    assert re.search(r"Video: SeqB\s+taken over by \S+:\d+ while tracked here .* not written here", run.stdout)
    assert sorted(_tracked(run.stdout)) == sorted(OTB)  # SeqB's Time: line once: when it was written
    assert _files(folder) == sequential["OTB100"][0]  # no claim left either


def test_torchrun_ranks_share_the_videos(bench, sequential, tmp_path):
    """`torchrun --nproc_per_node=2 tools/test.py ...`: each rank one more invocation (cuda:LOCAL_RANK on GPUs)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           *_cmd(bench, tmp_path, "VOT2018", "--threads", "1")[1:]]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=bench)
    assert run.returncode == 0, run.stderr
    assert sorted(_tracked(run.stdout)) == sorted(VOT)  # each video once, over both ranks
    total = re.search(r"tiny total lost: (\d+)", sequential["VOT2018"][1]).group(1)
    assert run.stdout.count(f"tiny total lost: {total}\n") == 2  # each rank's total counts every video
    assert _files(tmp_path / "VOT2018" / "tiny") == sequential["VOT2018"][0]


def test_worker_devices():
    from siamkpn.cli.common import UsageError
    from siamkpn.testing import devices

    assert devices.worker_devices("cpu", 3) == ["cpu"] * 3
    assert devices.worker_devices("cuda:0,cuda:1", 3) == ["cuda:0", "cuda:1", "cuda:0"]
    assert devices.worker_count(None, "cuda:0,cuda:1") == 2 and devices.worker_count(None, "cuda") == 1
    with pytest.raises(UsageError, match="cuda:2 would stay unused"):
        devices.worker_devices("cuda:0,cuda:1,cuda:2", 2)
    assert devices._expand(["cuda"], None, 2) == ["cuda:0", "cuda:1"]
    assert devices._expand(["auto"], 1, 2) == ["cuda:1"] and devices._expand(["auto"], 1, 0) == ["auto"]
    assert devices.default_threads(None, 1) is None and devices.default_threads(None, 10 ** 6) == 1


def _same_up_to_batching(path: str, single: bytes, batched: bytes) -> None:
    """--batch K files against K = 1: markers and line counts identical, boxes within 1e-2 px, confidences within
    1e-3; times (GOT-10k, long-term) one per frame (their values are clocks)."""
    a_lines, b_lines = single.decode().splitlines(), batched.decode().splitlines()
    assert len(a_lines) == len(b_lines), path
    if path.endswith("_time.txt"):
        assert all(float(t) >= 0 for t in b_lines), path
        return
    for a, b in zip(a_lines, b_lines, strict=True):
        if "," in a:
            assert max(abs(float(x) - float(y)) for x, y in zip(a.split(","), b.split(","), strict=True)) <= 1e-2, path
        elif path.endswith(".value") and a:
            assert abs(float(a) - float(b)) <= 1e-3, path
        else:
            assert a == b, path  # VOT markers (1 / 2 / 0) identical


@pytest.mark.parametrize("dataset", ["OTB100", "VOT2018", "VOT2018-LT", "GOT-10k"])
def test_batch_2_matches_batch_1(bench, sequential, tmp_path, dataset):
    run = _run(bench, tmp_path, dataset, "--batch", "2", "--threads", "1")
    assert run.returncode == 0, run.stderr
    batched, single = _files(tmp_path / dataset / "tiny"), sequential[dataset][0]
    assert batched.keys() == single.keys() and len(single) >= len(VOT)
    for path, data in single.items():
        _same_up_to_batching(path, data, batched[path])
    assert sorted(_tracked(run.stdout)) == sorted(_tracked(sequential[dataset][1]))  # each video once
    if dataset == "GOT-10k":  # times stay per frame
        assert all(len(batched[p].decode().splitlines()) == 5 for p in batched if p.endswith("_time.txt"))
