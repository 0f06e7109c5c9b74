"""Claims on videos of one result folder: held by exactly one process, taken over from a dead or silent one, gone
once released; and the record lock that a folder's check-then-write happens under."""
from __future__ import annotations

import errno
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from siamkpn.tracker.provenance import prepare_result_folder
from siamkpn.utils.claims import RECORD_LOCK_NAME, VideoClaims, record_lock
from siamkpn.utils.lock import FileLock, LockHeld, LockLost
from toolkit.names import UnsafeNameError

CTX = multiprocessing.get_context("fork")
TIMEOUT = 60  # seconds any wait on a child may take before the test fails instead of hanging


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_claim(folder, video, host=None, pid=None, heartbeat=None):
    path = folder / ".claims" / f"{video}.claim"
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    path.write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid or os.getpid(),
                                "purpose": "siamkpn-test", "started": now - 3600,
                                "heartbeat": now if heartbeat is None else heartbeat, "token": "old"}))
    return path


def _join(procs):
    for p in procs:
        p.join(timeout=TIMEOUT)
        if p.is_alive():
            p.kill()
            pytest.fail(f"child {p.pid} did not finish within {TIMEOUT} s")


def test_claim_holder_release_and_the_claims_folder(tmp_path):
    claims = VideoClaims(str(tmp_path), purpose="siamkpn-test")
    assert claims.holder("Basketball") is None
    assert claims.claim("Basketball") and claims.claim("Basketball")  # held already: still True
    assert claims.claim("Car4")
    assert sorted(os.listdir(tmp_path / ".claims")) == ["Basketball.claim", "Car4.claim"]
    holder = claims.holder("Basketball")
    assert (holder.host, holder.pid, holder.purpose) == (socket.gethostname(), os.getpid(), "siamkpn-test")
    claims.check("Basketball")
    claims.release("Basketball")
    assert claims.holder("Basketball") is None and claims.held == ["Car4"]
    with pytest.raises(LockLost, match="holds no claim on video 'Basketball'"):
        claims.check("Basketball")
    claims.release("Car4")
    assert os.listdir(tmp_path) == []  # the empty .claims folder went with the last claim


@pytest.mark.parametrize("name", ["../escape", "a/b", ".."])
def test_a_video_name_is_never_a_path(tmp_path, name):
    with pytest.raises(UnsafeNameError, match="video name"):
        VideoClaims(str(tmp_path)).claim(name)
    assert not (tmp_path.parent / "escape.claim").exists()


def _try_claim(folder, video, queue):
    claims = VideoClaims(folder)
    got = claims.claim(video)
    queue.put((got, claims.holder(video).pid))
    claims.release_all()


def test_another_process_cannot_claim_a_held_video(tmp_path):
    queue = CTX.Queue()
    with VideoClaims(str(tmp_path)) as claims:
        assert claims.claim("Basketball")
        child = CTX.Process(target=_try_claim, args=(str(tmp_path), "Basketball", queue))
        child.start()
        assert queue.get(timeout=TIMEOUT) == (False, os.getpid())
        _join([child])
        assert claims.holder("Basketball").pid == os.getpid()  # the refused child left our claim alone
    assert os.listdir(tmp_path) == []


def test_a_claim_of_a_dead_pid_on_this_host_is_taken_over(tmp_path):
    dead = _dead_pid()
    _write_claim(tmp_path, "Basketball", pid=dead)  # fresh heartbeat: only the missing pid makes it stale
    with VideoClaims(str(tmp_path)) as claims:
        assert claims.claim("Basketball")
        assert claims.took_over["Basketball"].pid == dead and claims.holder("Basketball").pid == os.getpid()
    assert os.listdir(tmp_path) == []


def _claim_and_wait(folder, video, ready):
    claims = VideoClaims(folder)
    claims.claim(video)
    ready.set()
    time.sleep(TIMEOUT)  # killed long before


def test_the_claim_of_a_sigkilled_run_is_taken_over_by_the_rerun(tmp_path):
    ready = CTX.Event()
    child = CTX.Process(target=_claim_and_wait, args=(str(tmp_path), "Basketball", ready))
    child.start()
    try:
        assert ready.wait(TIMEOUT)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        _join([child])
    assert VideoClaims(str(tmp_path)).holder("Basketball").pid == child.pid  # left behind by the killed run
    with VideoClaims(str(tmp_path)) as rerun:
        assert rerun.claim("Basketball") and rerun.took_over["Basketball"].pid == child.pid
    assert os.listdir(tmp_path) == []


def test_a_claim_from_another_host_is_stale_only_after_stale_after(tmp_path):
    claims = VideoClaims(str(tmp_path), stale_after=120, heartbeat_every=10)
    _write_claim(tmp_path, "Basketball", host="elsewhere.invalid", pid=_dead_pid(), heartbeat=time.time() - 100)
    assert not claims.claim("Basketball")  # that pid means nothing here; its heartbeat is 100 s old, under 120
    assert claims.holder("Basketball").host == "elsewhere.invalid"
    _write_claim(tmp_path, "Basketball", host="elsewhere.invalid", heartbeat=time.time() - 121)
    assert claims.claim("Basketball") and claims.took_over["Basketball"].host == "elsewhere.invalid"
    claims.release_all()
    assert os.listdir(tmp_path) == []


def test_the_heartbeat_keeps_a_claim_fresh_until_release(tmp_path):
    with VideoClaims(str(tmp_path), stale_after=10, heartbeat_every=0.05) as claims:
        claims.claim("Basketball")
        start = claims.holder("Basketball").heartbeat
        deadline = time.time() + TIMEOUT
        while claims.holder("Basketball") is None or claims.holder("Basketball").heartbeat == start:
            assert time.time() < deadline, "no heartbeat written"
            time.sleep(0.02)
    assert os.listdir(tmp_path) == []


def test_a_claim_taken_over_is_reported_lost_to_its_old_holder(tmp_path):
    first = VideoClaims(str(tmp_path), stale_after=600, heartbeat_every=60)
    assert first.claim("Basketball")
    time.sleep(0.01)
    successor = VideoClaims(str(tmp_path), stale_after=1e-6, heartbeat_every=1e-7)  # judges any heartbeat stale
    assert successor.claim("Basketball")
    with pytest.raises(LockLost):
        first.check("Basketball")
    first.release_all()  # never removes the successor's claim
    successor.check("Basketball")
    successor.release_all()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_claims_are_released_on_an_exception_and_on_ctrl_c(tmp_path, error):
    with pytest.raises(type(error)):
        with VideoClaims(str(tmp_path)) as claims:
            assert claims.claim("Basketball") and claims.claim("Car4")
            raise error
    assert os.listdir(tmp_path) == []


def _claim_all(folder, videos, seed, barrier, queue):
    claims = VideoClaims(folder)
    order = list(videos)
    random.Random(seed).shuffle(order)
    barrier.wait()
    queue.put([v for v in order if claims.claim(v)])
    barrier.wait()  # every process has tried every video before any claim is released
    claims.release_all()


def test_racing_processes_claim_each_video_exactly_once(tmp_path):
    videos = [f"video{i}" for i in range(6)]
    for attempt in range(2):
        barrier, queue = CTX.Barrier(4), CTX.Queue()
        procs = [CTX.Process(target=_claim_all, args=(str(tmp_path), videos, 10 * attempt + i, barrier, queue))
                 for i in range(4)]
        for p in procs:
            p.start()
        claimed = [v for _ in procs for v in queue.get(timeout=TIMEOUT)]
        _join(procs)
        assert sorted(claimed) == videos
        assert all(p.exitcode == 0 for p in procs) and os.listdir(tmp_path) == []


def _churn(folder, worker, rounds, queue):
    claims = VideoClaims(folder)
    try:
        for k in range(rounds):
            video = f"w{worker}_{k % 3}"
            assert claims.claim(video), f"{video} refused"
            claims.release(video)  # the last claim out removes .claims while others are making it again
        queue.put("ok")
    except BaseException as err:
        queue.put(repr(err))


def test_claims_folder_removed_and_remade_under_churn_never_fails_a_claim(tmp_path):
    queue = CTX.Queue()
    procs = [CTX.Process(target=_churn, args=(str(tmp_path), w, 100, queue)) for w in range(4)]
    for p in procs:
        p.start()
    assert [queue.get(timeout=TIMEOUT) for _ in procs] == ["ok"] * 4
    _join(procs)
    assert os.listdir(tmp_path) == []


def test_a_claims_folder_made_and_removed_between_mkdir_and_its_check_is_made_again(tmp_path, monkeypatch):
    """os.makedirs(exist_ok=True) raises FileExistsError when the folder another process made (EEXIST) is gone by
    the time it checks isdir (its last claim released): the churn test's rare failure under load, made certain."""
    real, calls = os.makedirs, []

    def racing_makedirs(name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 1:
            raise FileExistsError(17, "File exists", name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", racing_makedirs)
    claims = VideoClaims(str(tmp_path))
    assert claims.claim("Basketball") and len(calls) == 2
    claims.release_all()


def test_record_lock_waits_for_a_live_holder(tmp_path):
    path = tmp_path / RECORD_LOCK_NAME
    holder = FileLock(str(path), "other run").acquire()
    with pytest.raises(LockHeld) as err:
        with record_lock(str(tmp_path), wait=0.3, poll=0.05):
            pass
    assert str(path) in str(err.value) and f"{socket.gethostname()}:{os.getpid()} (other run)" in str(err.value)
    assert "\n" not in str(err.value)
    holder.release()
    with record_lock(str(tmp_path)) as lock:
        assert lock.held
    assert os.listdir(tmp_path) == []


def _hold_briefly(path, ready, hold):
    with FileLock(path, "brief"):
        ready.set()
        time.sleep(hold)


def test_record_lock_is_taken_once_a_brief_holder_is_done(tmp_path):
    ready = CTX.Event()
    child = CTX.Process(target=_hold_briefly, args=(str(tmp_path / RECORD_LOCK_NAME), ready, 0.3))
    child.start()
    assert ready.wait(TIMEOUT)
    with record_lock(str(tmp_path), wait=TIMEOUT) as lock:
        assert lock.held and lock.took_over is None  # waited for it, not taken from it
    _join([child])
    assert os.listdir(tmp_path) == []


def test_record_lock_takes_over_a_dead_holder_and_makes_the_folder(tmp_path):
    dead = _dead_pid()
    folder = tmp_path / "res" / "OTB100" / "w"
    folder.mkdir(parents=True)
    (folder / RECORD_LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": dead, "purpose": "x",
                                                       "started": 0, "heartbeat": time.time(), "token": "t"}))
    with record_lock(str(folder), wait=0) as lock:
        assert lock.took_over.pid == dead
    with record_lock(str(tmp_path / "new")):
        assert (tmp_path / "new" / RECORD_LOCK_NAME).exists()
    assert os.listdir(tmp_path / "new") == [] and os.listdir(folder) == []


def test_a_full_disk_while_writing_the_record_lock_names_it_and_leaves_nothing(tmp_path, monkeypatch):
    def fail(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match=rf"cannot write lock file {tmp_path / RECORD_LOCK_NAME}: No space left"):
        prepare_result_folder(str(tmp_path), {"snapshot": "x"}, [], False, {"tool": "test"})
    assert os.listdir(tmp_path) == []
