"""Lock files: a live holder is refused by name, a dead or silent one is taken over, racing takers get one winner,
and the file goes away on every exit."""
from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import pytest

from siamkpn.utils.lock import FileLock, LockHeld, LockLost, _inspect, read_holder
from toolkit.errors import BadInput


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(path, host=None, pid=None, heartbeat=None, token="old"):
    now = time.time()
    path.write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid or os.getpid(), "purpose": "test",
                                "started": now - 3600, "heartbeat": now if heartbeat is None else heartbeat,
                                "token": token}))


def test_a_live_holder_is_refused_naming_file_host_pid_and_since(tmp_path):
    path = tmp_path / "train.lock"
    with FileLock(str(path), "siamkpn-train") as first:
        assert read_holder(str(path)).pid == os.getpid() and first.held
        with pytest.raises(LockHeld) as err:
            FileLock(str(path), "siamkpn-train").acquire()
        message = str(err.value)
        assert str(path) in message and f"{socket.gethostname()}:{os.getpid()} (siamkpn-train), since " in message
        assert isinstance(err.value, BadInput) and "\n" not in message
        assert not FileLock(str(path), "other").try_acquire()
    assert not path.exists()


def test_a_dead_holder_on_this_host_is_taken_over(tmp_path):
    path = tmp_path / "train.lock"
    dead = _dead_pid()
    _write_lock(path, pid=dead)  # fresh heartbeat: only the missing pid makes it stale
    lock = FileLock(str(path), "siamkpn-train").acquire()
    try:
        assert lock.took_over.pid == dead
        assert read_holder(str(path)).pid == os.getpid() and read_holder(str(path)).token != "old"
        assert [p.name for p in tmp_path.iterdir()] == ["train.lock"]  # the stale file moved aside was deleted
    finally:
        lock.release()


def test_another_host_is_stale_only_through_its_heartbeat(tmp_path):
    path = tmp_path / "train.lock"
    _write_lock(path, host="elsewhere.invalid", pid=_dead_pid())  # that pid means nothing on this host
    with pytest.raises(LockHeld, match="elsewhere.invalid"):
        FileLock(str(path), "t", stale_after=600).acquire()
    _write_lock(path, host="elsewhere.invalid", heartbeat=time.time() - 601)
    with FileLock(str(path), "t", stale_after=600) as lock:
        assert lock.took_over.host == "elsewhere.invalid"


def test_an_unreadable_lock_is_live_while_fresh_and_stale_once_old(tmp_path):
    path = tmp_path / "train.lock"
    path.write_bytes(b"")  # a holder between create and write (or killed there)
    with pytest.raises(LockHeld, match="being written or cannot be read"):
        FileLock(str(path), "t", stale_after=60).acquire()
    old = time.time() - 61
    os.utime(path, (old, old))
    with FileLock(str(path), "t", stale_after=60):
        assert read_holder(str(path)).purpose == "t"


def test_released_on_exception_and_on_ctrl_c(tmp_path):
    path = tmp_path / "train.lock"
    for error in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with FileLock(str(path), "t"):
                assert path.exists()
                raise error
        assert not path.exists()


def test_a_taker_that_lost_the_race_puts_the_winners_lock_back(tmp_path):
    """A judges the lock stale, B takes it over meanwhile; A's takeover must not remove B's fresh lock."""
    path = tmp_path / "train.lock"
    _write_lock(path, pid=_dead_pid())
    judged = _inspect(str(path))
    a, b = FileLock(str(path), "a"), FileLock(str(path), "b")
    b.acquire()
    a._remove_stale(judged[0], judged[1])
    assert read_holder(str(path)).purpose == "b" and b._still_ours()
    assert not a.try_acquire()
    assert [p.name for p in tmp_path.iterdir()] == ["train.lock"]
    b.release()


def _race(path, barrier, results):
    lock = FileLock(path, f"taker {os.getpid()}")
    barrier.wait()
    won = lock.try_acquire()
    results.put(won)
    barrier.wait()  # winners hold until every taker has tried
    lock.release()


def test_racing_takers_of_a_stale_lock_have_exactly_one_winner(tmp_path):
    ctx = multiprocessing.get_context("fork")
    path = str(tmp_path / "train.lock")
    dead = _dead_pid()
    for _ in range(3):
        _write_lock(tmp_path / "train.lock", pid=dead)
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(path, barrier, results)) for _ in range(6)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert sorted(outcomes) == [False] * 5 + [True]
        assert not os.path.exists(path) and os.listdir(tmp_path) == []


def test_a_holder_declared_dead_never_clobbers_its_successor(tmp_path):
    path = tmp_path / "train.lock"
    first = FileLock(str(path), "first", stale_after=600).acquire()
    first.refresh()
    assert read_holder(str(path)).heartbeat >= read_holder(str(path)).started
    successor = FileLock(str(path), "successor", stale_after=1e-9)  # judges any heartbeat stale
    time.sleep(0.01)
    successor.acquire()
    with pytest.raises(LockLost):
        first.check()
    with pytest.raises(LockLost):
        first.refresh()
    first.release()
    assert read_holder(str(path)).purpose == "successor"
    successor.release()
    assert not path.exists()


def test_the_heartbeat_thread_refreshes_until_release(tmp_path):
    path = tmp_path / "train.lock"
    with FileLock(str(path), "t", stale_after=10, heartbeat_every=0.05):
        start = read_holder(str(path)).heartbeat
        deadline = time.time() + 10
        while read_holder(str(path)) is None or read_holder(str(path)).heartbeat == start:
            assert time.time() < deadline, "no heartbeat written"
            time.sleep(0.02)
    assert not path.exists()
