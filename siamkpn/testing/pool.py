"""Worker processes of one siamkpn-test run and their messages; a worker that dies ends the run, never a hang."""
from __future__ import annotations

import multiprocessing
import queue
import signal
from typing import Dict, List, Optional, Set

from siamkpn.testing.worker import RunSpec, worker_main
from toolkit.errors import BadInput

__all__ = ["WorkerFailed", "WorkerBadInput", "WorkerPool"]


class WorkerFailed(RuntimeError):
    """A worker raised, or died (a signal: SIGKILL, the out-of-memory killer)."""


class WorkerBadInput(BadInput, RuntimeError):
    """A worker stopped on bad input (an unreadable frame, a snapshot it cannot load): exit 2 as in one process."""


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class WorkerPool:
    """`len(devices)` spawned workers, worker i on devices[i]; the parent answers their requests for videos."""

    def __init__(self, spec: RunSpec, devices: List[str]) -> None:
        ctx = multiprocessing.get_context("spawn")  # CUDA and threads do not survive a fork
        self.devices = devices
        self.messages = ctx.Queue()
        self.tasks = [ctx.Queue() for _ in devices]
        self.procs = [ctx.Process(target=worker_main, args=(wid, spec, dev, self.tasks[wid], self.messages),
                                  name=f"siamkpn-test worker {wid}", daemon=True)
                      for wid, dev in enumerate(devices)]
        self.current: Dict[int, Set[str]] = {wid: set() for wid in range(len(devices))}  # videos being tracked
        self.finished: Set[int] = set()

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    @property
    def running(self) -> bool:
        return len(self.finished) < len(self.procs)

    def get(self, timeout: float) -> Optional[tuple]:
        """The next message, or None after `timeout` seconds; raises WorkerFailed for a worker that died."""
        self._check_alive()  # also while others keep sending: a steady stream never times out
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def give(self, wid: int, video: Optional[str]) -> None:
        """Answer worker `wid`'s request: a video's name, or None (nothing more)."""
        if video is not None:
            self.current[wid].add(video)
        self.tasks[wid].put(video)

    def answer(self, wid: int, allowed: bool) -> None:
        """Answer worker `wid`'s write? (may it write the video it tracked)."""
        self.tasks[wid].put(allowed)

    def failed(self, wid: int, text: str, code: int) -> Exception:
        """The error to end the run with for worker `wid`'s error message."""
        cls = WorkerBadInput if code == 2 else WorkerFailed
        return cls(f"worker {wid} ({self.devices[wid]}){self._on(wid)}: {text}")

    def _on(self, wid: int) -> str:
        names = sorted(self.current[wid])
        return f" tracking {', '.join(names)}" if names else ""

    def _check_alive(self) -> None:
        for wid, proc in enumerate(self.procs):
            code = proc.exitcode
            if code is None or wid in self.finished or code == 0:
                continue  # running, done, or exited after a message still in the queue
            try:  # its last words (an error message) may still be in the queue
                while True:
                    msg = self.messages.get(timeout=0.5)
                    if msg[0] == "error":
                        raise self.failed(msg[1], msg[2], msg[3])
            except queue.Empty:
                pass
            how = f"killed by {_signal_name(code)}" if code < 0 else f"exit status {code}"
            hint = " (out of memory?)" if code == -signal.SIGKILL else ""
            raise WorkerFailed(f"worker {wid} ({self.devices[wid]}) died{self._on(wid)}: {how}{hint}; "
                               "its video is not written")

    def close(self) -> None:
        """Stop every worker still running (after a failure or Ctrl-C) and let the queues go."""
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for q in [*self.tasks, self.messages]:
            q.cancel_join_thread()
            q.close()
