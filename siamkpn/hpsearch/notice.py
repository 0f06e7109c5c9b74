"""Rate-limited progress notes for waits a worker cannot shorten (a database lock, trials held elsewhere)."""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional

from tqdm import tqdm

__all__ = ["Notices"]


class Notices:
    """Prints a note per topic at most once every `every` seconds (tqdm.write: progress bars stay intact)."""

    def __init__(self, every: float = 30.0, write: Optional[Callable[[str], None]] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.every = float(every)
        self._write = write or tqdm.write
        self._clock = clock
        self._last: Dict[str, float] = {}
        self._lock = threading.Lock()  # the heartbeat thread may wait on the lock too

    def say(self, topic: str, text: str) -> bool:
        """Print `text` unless a note on `topic` was printed less than `every` seconds ago; True when printed."""
        now = self._clock()
        with self._lock:
            last = self._last.get(topic)
            if last is not None and now - last < self.every:
                return False
            self._last[topic] = now
        self._write(text)
        return True

    def reset(self, topic: str) -> None:
        """The wait on `topic` is over: its next wait is announced at once."""
        with self._lock:
            self._last.pop(topic, None)
