"""Lock and claim files: one process at a time holds a folder (a training run) or an item of work (a video).

A lock is a small JSON file ``{host, pid, purpose, started, heartbeat, token}`` created with
``O_CREAT | O_EXCL``, so of any number of processes, on any number of machines sharing the folder, exactly one
creates it. Its holder refreshes ``heartbeat`` (seconds since the epoch, the holder's clock) while it works and
deletes the file when done, also on an exception or Ctrl-C (use it as a context manager).

A lock is stale, and taken over, when its holder is on this host and its pid is gone, or when its heartbeat is
older than ``stale_after`` seconds (the only test for a holder on another machine; it also covers a pid reused
after a crash). A file that does not parse (a holder killed between creating and writing it) is stale once its
modification time is that old. Takeover is race-safe: a taker first renames the stale file to a name of its own
(a rename moves a file for exactly one of several takers), checks that what it moved is the instance it judged
stale (same inode and token, still stale), deletes it and then competes for a fresh ``O_EXCL`` create like any
newcomer. A taker that moved a lock which had just been taken or refreshed puts it back.

The holder keeps the file open: ``refresh`` and ``release`` act only while the path still names its own file
(``LockLost`` otherwise), so a holder declared dead never clobbers its successor. Standard library only.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Optional

from toolkit.errors import BadInput

__all__ = ["FileLock", "Holder", "LockHeld", "LockLost", "is_stale", "read_holder"]

# attempts at create / judge / take over before giving up (each lost race means someone else made progress)
_ATTEMPTS = 5


class LockHeld(BadInput, RuntimeError):
    """A live process holds the lock (bad input for a command line: another run uses the same folder)."""

    def __init__(self, message: str, path: str, holder: Optional["Holder"]) -> None:
        super().__init__(message)
        self.path, self.holder = path, holder


class LockLost(RuntimeError):
    """The lock file this process held was taken over (its heartbeat was too old) or removed."""


@dataclass(frozen=True)
class Holder:
    """What a lock file says about its holder; `heartbeat` and `started` are seconds since the epoch."""

    host: str
    pid: int
    purpose: str
    started: float
    heartbeat: float
    token: str

    def describe(self, now: Optional[float] = None) -> str:
        """`host:pid (purpose), since <local time>, last heartbeat N s ago`."""
        ago = max(0.0, (time.time() if now is None else now) - self.heartbeat)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"{self.host}:{self.pid} ({self.purpose}), since {since}, last heartbeat {ago:.0f} s ago"


def _parse(text: str) -> Optional[Holder]:
    try:
        data = json.loads(text)
        return Holder(host=str(data["host"]), pid=int(data["pid"]), purpose=str(data["purpose"]),
                      started=float(data["started"]), heartbeat=float(data["heartbeat"]), token=str(data["token"]))
    except (ValueError, TypeError, KeyError):
        return None  # empty or half-written: its holder is between create and write, or died there


def _read_fd(fd: int) -> str:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode("utf-8", errors="replace")
        chunks.append(chunk)


def _inspect(path: str):
    """(holder or None, inode key, mtime) of the file at `path` read through one descriptor; None when absent."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        return _parse(_read_fd(fd)), (st.st_dev, st.st_ino), st.st_mtime
    finally:
        os.close(fd)


def read_holder(path: str) -> Optional[Holder]:
    """The holder named in lock file `path`, or None when there is none or it does not parse."""
    found = _inspect(path)
    return found[0] if found else None


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would end the process on Windows: rely on the heartbeat there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return True
    return True


def is_stale(holder: Optional[Holder], mtime: float, stale_after: float, now: Optional[float] = None) -> bool:
    """True when the lock can be taken over: its holder on this host is gone, or its heartbeat (for an unreadable
    file, its modification time) is older than `stale_after` seconds."""
    now = time.time() if now is None else now
    if holder is None:
        return now - mtime > stale_after
    if holder.host == socket.gethostname() and not _pid_alive(holder.pid):
        return True
    return now - holder.heartbeat > stale_after


class FileLock:
    """Hold lock file `path` for `purpose`; see the module docstring for the rules.

    Args:
        path: the lock file; its folder must exist.
        purpose: what the holder does, shown to whoever finds the lock held (e.g. ``siamkpn-train``).
        stale_after: seconds without a heartbeat after which any process may take the lock over.
        heartbeat_every: refresh the heartbeat from a daemon thread this often (None: the caller calls
            `refresh`). Keep it well below `stale_after` (a tenth, say), which must exceed clock skew between hosts.
    """

    def __init__(self, path: str, purpose: str, stale_after: float = 600.0,
                 heartbeat_every: Optional[float] = None) -> None:
        if heartbeat_every is not None and not 0 < heartbeat_every < stale_after:
            raise ValueError(f"heartbeat_every must be in (0, stale_after={stale_after:g}), got {heartbeat_every}")
        self.path, self.purpose = os.path.abspath(path), purpose
        self.stale_after, self.heartbeat_every = stale_after, heartbeat_every
        self.took_over: Optional[Holder] = None  # the stale holder this lock replaced, if any (for a log line)
        self._fd: Optional[int] = None
        self._record: Optional[Holder] = None
        self._owner_pid = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._mutex = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fd is not None and self._owner_pid == os.getpid()

    # ------------------------------------------------------------------ acquire
    def acquire(self) -> "FileLock":
        """Hold the lock (taking over a stale one); LockHeld naming the holder when a live process has it."""
        if not self.try_acquire():
            found = _inspect(self.path)
            holder = found[0] if found else None
            who = holder.describe() if holder else "a process whose lock file is being written or cannot be read"
            raise LockHeld(f"{self.path} is held by {who}; if that process is gone for good, delete the file",
                           self.path, holder)
        return self

    def try_acquire(self) -> bool:
        """Hold the lock and return True, or return False when a live process holds it."""
        if self.held:
            raise RuntimeError(f"{self.path}: this FileLock is already held")
        for _ in range(_ATTEMPTS):
            if self._create():
                self._start_heartbeat()
                return True
            found = _inspect(self.path)
            if found is None:
                continue  # released (or moved aside by a taker) just now: compete again
            holder, key, mtime = found
            if not is_stale(holder, mtime, self.stale_after):
                return False
            self._remove_stale(holder, key)
        return False  # every attempt lost a race: others are making progress on it

    def _create(self) -> bool:
        now = time.time()
        record = Holder(host=socket.gethostname(), pid=os.getpid(), purpose=self.purpose, started=now,
                        heartbeat=now, token=uuid.uuid4().hex)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            return False
        self._fd, self._record, self._owner_pid = fd, record, os.getpid()
        try:
            self._write(record)
        except BaseException:  # e.g. a full disk: leave no empty lock file that others would wait on
            os.close(fd)
            self._fd, self._record = None, None
            os.unlink(self.path)
            raise
        return True

    def _remove_stale(self, judged: Optional[Holder], key) -> None:
        """Move the stale instance aside and delete it; put back anything that turns out not to be it."""
        aside = f"{self.path}.stale-{uuid.uuid4().hex}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another taker moved it first
        moved = _inspect(aside)
        if moved is None:
            return
        holder, moved_key, mtime = moved
        same = moved_key == key and (holder.token if holder else None) == (judged.token if judged else None)
        if same and is_stale(holder, mtime, self.stale_after):
            os.unlink(aside)
            self.took_over = judged
            return
        try:  # a lock taken or refreshed since we judged: give it back unless a newcomer already holds the path
            os.link(aside, self.path)
        except OSError:
            pass  # its holder finds out at its next refresh (LockLost)
        os.unlink(aside)

    # ------------------------------------------------------------------ hold
    def _write(self, record: Holder) -> None:
        data = (json.dumps(asdict(record), indent=1) + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)  # a reader that catches it empty or half-written treats it as live (fresh mtime)
        os.fsync(self._fd)

    def _still_ours(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(self._fd)
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def check(self) -> None:
        """LockLost unless this process still holds the lock file (call before writing what it protects)."""
        if not self.held or not self._still_ours():
            raise LockLost(f"{self.path} is no longer held by this process (taken over after its heartbeat stopped "
                           f"for more than {self.stale_after:g} s, or deleted)")

    def refresh(self) -> None:
        """Write a new heartbeat; LockLost when the file is no longer this process's."""
        with self._mutex:
            self.check()
            self._record = Holder(**{**asdict(self._record), "heartbeat": time.time()})
            self._write(self._record)

    def _start_heartbeat(self) -> None:
        if self.heartbeat_every is None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {os.path.basename(self.path)}",
                                        daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_every):
            try:
                self.refresh()
            except (LockLost, OSError):
                return  # `check` (and `release`) report it to the main thread

    # ------------------------------------------------------------------ release
    def release(self) -> None:
        """Delete the lock file if it is still this process's; a no-op when not held (or in a forked child)."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        with self._mutex:
            try:
                if self._still_ours():
                    os.unlink(self.path)
            finally:
                os.close(self._fd)
                self._fd, self._record = None, None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
