"""Many runs on one result folder: a claim per video, and a lock around the folder's record.

Any number of processes (workers, other terminals, other machines on a shared filesystem, SLURM array tasks,
torchrun ranks) may track into one ``<results>/<dataset>/<tracker>/`` folder. Before tracking a video, a process
claims it: :class:`VideoClaims` creates ``<tracker>/.claims/<video>.claim`` with one
:class:`~siamkpn.utils.lock.FileLock` (an ``O_EXCL`` create, so exactly one process gets it), naming host, pid and
a heartbeat that a thread refreshes every ``heartbeat_every`` seconds (default 10 s) while the claim is held. A
claim is taken over when its holder on this host is gone (a SIGKILLed or crashed run: its rerun takes the video
at once) or when its heartbeat is older than ``stale_after`` seconds (default 120 s; the only test for a holder on
another machine). Limits, stated: hosts whose clocks differ by more than ``stale_after`` would judge each other's
live claims stale (keep clocks in sync, e.g. NTP), and a holder stalled for longer than that (a suspended machine)
loses its claim to another process and finds out through :meth:`VideoClaims.check`. A claim is no record of a
finished video: whoever claims a video must then look whether its result files are complete, since the process
that tracked it may have released it a moment ago.

:func:`record_lock` holds ``<tracker>/.provenance.lock`` just around the check-then-write of the folder's record
(``siamkpn.utils.result_record.ResultRecord.claim``), so two runs with different inputs can never both write
into one folder, whatever the timing. Standard library only (plus the toolkit's name rule).
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Dict, Iterator, List, Optional

from siamkpn.utils.lock import FileLock, Holder, LockHeld, LockLost, read_holder
from toolkit.atomic import write_error
from toolkit.names import join_inside

__all__ = ["CLAIMS_FOLDER", "RECORD_LOCK_NAME", "Holder", "VideoClaims", "record_lock"]

CLAIMS_FOLDER = ".claims"
CLAIM_SUFFIX = ".claim"
RECORD_LOCK_NAME = ".provenance.lock"
# the record lock is held for milliseconds; a holder silent this long (on another host) is gone
_RECORD_STALE_AFTER = 30.0
_RECORD_HEARTBEAT = 3.0
# tries at a claim whose folder other processes removed between our mkdir and our create (each time one of them
# released its last claim: progress elsewhere, so a bound is safe)
_FOLDER_TRIES = 50


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass  # not empty (another claim, possibly added just now by another process) or already gone


def _acquire(lock: FileLock) -> bool:
    """``lock.try_acquire()``; a lock file created but not written (disk full) is removed, the error names it."""
    try:
        return lock.try_acquire()
    except OSError as err:
        lock.release()
        raise write_error(lock.path, err, "lock file") from err


class VideoClaims:
    """The videos this process claims in one tracker folder; see the module docstring for the rules.

    Use it as a context manager (or call :meth:`release_all` in a ``finally``): every claim it holds is released
    on exit, an exception or Ctrl-C. A claim of a process killed without that (SIGKILL, power loss) is taken over
    by the next claimant.

    Args:
        tracker_folder: the result folder (``<results>/<dataset>/<tracker>``), created if missing.
        purpose: what the holder does, shown to whoever finds a video held.
        stale_after: seconds without a heartbeat after which another process may take a claim over.
        heartbeat_every: seconds between heartbeats of a held claim; well below ``stale_after``.
    """

    def __init__(self, tracker_folder: str, purpose: str = "siamkpn-test", stale_after: float = 120.0,
                 heartbeat_every: float = 10.0) -> None:
        if not 0 < heartbeat_every < stale_after:
            raise ValueError(f"heartbeat_every must be in (0, stale_after={stale_after:g}), got {heartbeat_every}")
        self.tracker_folder = os.path.abspath(tracker_folder)
        self.folder = os.path.join(self.tracker_folder, CLAIMS_FOLDER)
        self.purpose, self.stale_after, self.heartbeat_every = purpose, stale_after, heartbeat_every
        self.took_over: Dict[str, Holder] = {}  # video -> the stale holder its claim replaced (for a log line)
        self._locks: Dict[str, FileLock] = {}
        self._mutex = threading.Lock()

    def path(self, video: str) -> str:
        """The claim file of ``video`` (an unsafe video name is refused: names from data are not paths)."""
        return str(join_inside(self.folder, video, "video name", self.tracker_folder, suffix=CLAIM_SUFFIX))

    @property
    def held(self) -> List[str]:
        """The videos this object holds claims on, in the order claimed."""
        with self._mutex:
            return list(self._locks)

    def claim(self, video: str) -> bool:
        """True when this process now holds ``video``'s claim (heartbeat running; also when it held it already);
        False when a live process holds it (see :meth:`holder`)."""
        path = self.path(video)
        with self._mutex:
            if video in self._locks:
                held = self._locks.pop(video)
                try:
                    held.check()
                    self._locks[video] = held
                    return True
                except LockLost:
                    held.release()  # taken over while this process was silent: compete again
            for _ in range(_FOLDER_TRIES):
                try:
                    os.makedirs(self.folder, exist_ok=True)
                except FileExistsError:  # made by another process, then removed by a third before makedirs looked
                    continue
                lock = FileLock(path, self.purpose, stale_after=self.stale_after,
                                heartbeat_every=self.heartbeat_every)
                try:
                    got = _acquire(lock)
                except FileNotFoundError:
                    continue  # another process removed the empty .claims folder just now: make it again
                if got:
                    self._locks[video] = lock
                    if lock.took_over is not None:
                        self.took_over[video] = lock.took_over
                return got
        raise OSError(f"cannot claim {video!r}: {self.folder} keeps disappearing (removed by another process)")

    def holder(self, video: str) -> Optional[Holder]:
        """Who holds ``video``'s claim (``host``, ``pid``, ``heartbeat`` ...); None when nobody does or the file
        cannot be read (its holder is between creating and writing it)."""
        return read_holder(self.path(video))

    def check(self, video: str) -> None:
        """LockLost unless this process still holds ``video``'s claim (call before writing its results)."""
        with self._mutex:
            lock = self._locks.get(video)
        if lock is None:
            raise LockLost(f"{self.path(video)}: this process holds no claim on video {video!r}")
        lock.check()

    def release(self, video: str) -> None:
        """Give ``video``'s claim up (after its result files are written, or on failure); a no-op if not held.
        The ``.claims`` folder goes when it is empty."""
        with self._mutex:
            lock = self._locks.pop(video, None)
        if lock is not None:
            lock.release()
        _remove_if_empty(self.folder)

    def release_all(self) -> None:
        """Give up every claim this object holds (on exit, an exception, Ctrl-C)."""
        for video in self.held:
            self.release(video)
        _remove_if_empty(self.folder)

    def __enter__(self) -> "VideoClaims":
        return self

    def __exit__(self, *exc) -> None:
        self.release_all()


@contextlib.contextmanager
def record_lock(tracker_folder: str, purpose: str = "result record", wait: float = 60.0,
                poll: float = 0.1) -> Iterator[FileLock]:
    """Hold ``<tracker_folder>/.provenance.lock`` for the block: the check-then-write of the folder's record.

    A live holder is waited for (polled every ``poll`` s for at most ``wait`` s; it holds the lock for milliseconds)
    and then named in a LockHeld (bad input); a holder gone from this host, or silent for 30 s on another, is
    taken over. The folder is created if missing; the lock file is removed on leaving the block.
    """
    os.makedirs(tracker_folder, exist_ok=True)
    lock = FileLock(os.path.join(tracker_folder, RECORD_LOCK_NAME), purpose, stale_after=_RECORD_STALE_AFTER,
                    heartbeat_every=_RECORD_HEARTBEAT)
    deadline = time.monotonic() + wait
    while not _acquire(lock):
        if time.monotonic() >= deadline:
            holder = read_holder(lock.path)
            who = holder.describe() if holder else "a process whose lock file is being written or cannot be read"
            raise LockHeld(f"{lock.path} is held by {who} for more than {wait:g} s (a run holds it only while it "
                           "checks or writes the record of what produced this folder); if that process is gone "
                           "for good, delete the file", lock.path, holder)
        time.sleep(poll)
    try:
        yield lock
    finally:
        lock.release()
