"""Which video next: claimed right before it is tracked, skipped when finished, waited for when held elsewhere.

Every invocation on one result folder runs a :class:`Dispatcher` over the same video list. A video is handed out
only once this process holds its claim (``siamkpn.utils.claims.VideoClaims``) and its result files are not
complete (the process that tracked it may have released it a moment ago). A video held by another live process
gets one line; once nothing else is claimable, the videos still held are polled until they are finished (by their
holder) or claimable (a claim gone stale: its holder died), which are then tracked here. Right before a tracked
video's files are written, :meth:`Dispatcher.may_write` checks that the claim is still this process's: a process
stalled past the claims' ``stale_after`` (a suspended machine) has lost the video to another, which writes it.
"""
from __future__ import annotations

import collections
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["Dispatcher"]

Entry = Tuple[int, Any]  # (the video's number in this run's lines, the video)


def _who(holder: Any) -> str:
    return f"{holder.host}:{holder.pid}" if holder is not None else "another process (claim being written)"


class Dispatcher:
    """Hands out the videos of one run (longest first), claimed; see the module docstring.

    Args:
        claims: a ``VideoClaims`` on the tracker folder (claim, holder, release).
        entries: (number, video) of every video not finished when the run started, in the order to hand out.
        is_done: True when a video's result files are complete.
        skipped: called with (number, video) of a video found finished by someone else.
        say: prints a line (above the progress bar).
        poll: seconds between looks at videos held elsewhere.
        announce_every: at most this many seconds between lines naming the videos still held while waiting.
    """

    def __init__(self, claims: Any, entries: Sequence[Entry], is_done: Callable[[Any], bool],
                 skipped: Callable[[int, Any], None], say: Callable[[str], None], poll: float = 0.5,
                 announce_every: float = 30.0) -> None:
        self.claims, self.is_done, self.skipped, self.say = claims, is_done, skipped, say
        self.poll, self.announce_every = poll, announce_every
        self.pending = collections.deque(entries)
        self.held: Dict[str, Entry] = {}  # video name -> entry, held by another process
        self.number = {video.name: i for i, video in entries}
        self._last_scan = self._last_announce = float("-inf")

    @property
    def waiting(self) -> bool:
        """True while videos held elsewhere are neither finished nor claimed here."""
        return bool(self.held)

    def take(self, wait: bool = False) -> Optional[Any]:
        """The next video, claimed by this process; None when none is claimable now (``wait``: when none is left
        at all, after waiting for the videos held elsewhere)."""
        while True:
            video = self._take_now()
            if video is not None or not wait or not self.held:
                return video
            self.announce()
            time.sleep(self.poll)

    def _take_now(self) -> Optional[Any]:
        while self.pending:
            entry = self.pending.popleft()
            if self._try(entry):
                return entry[1]
        now = time.monotonic()
        if self.held and now - self._last_scan >= self.poll:
            self._last_scan = now
            for entry in list(self.held.values()):
                if self._try(entry):
                    return entry[1]
        return None

    def _try(self, entry: Entry) -> bool:
        """Claim `entry`'s video if it is neither finished nor held by a live process."""
        number, video = entry
        if video.name in self.held and self.is_done(video):  # its holder finished it
            self._finished_elsewhere(entry)
            return False
        if not self.claims.claim(video.name):
            if video.name not in self.held:
                self.held[video.name] = entry
                self.say(f"({number:3d}) Video: {video.name:12s} held by {_who(self.claims.holder(video.name))}")
            return False
        if self.is_done(video):  # tracked and released by another process since this run listed it
            self.claims.release(video.name)
            self._finished_elsewhere(entry)
            return False
        self.held.pop(video.name, None)
        return True

    def _finished_elsewhere(self, entry: Entry) -> None:
        self.held.pop(entry[1].name, None)
        self.skipped(*entry)

    def announce(self, force: bool = False) -> None:
        """Name the videos still held elsewhere, and by whom (at most every ``announce_every`` seconds)."""
        now = time.monotonic()
        if not self.held or (not force and now - self._last_announce < self.announce_every):
            return
        self._last_announce = now
        names: List[str] = [f"{name} ({_who(self.claims.holder(name))})" for name in self.held]
        self.say(f"waiting for {len(names)} video(s) held elsewhere: {', '.join(names)}")

    def may_write(self, video: Any) -> bool:
        """True while this process still holds `video`'s claim (its result files may be written now); False, with a
        line, when another process took the claim over: the video is then waited for like any held elsewhere."""
        from siamkpn.utils.lock import LockLost

        try:
            self.claims.check(video.name)
            return True
        except LockLost:
            self.claims.release(video.name)  # never removes the successor's claim
            number = self.number[video.name]
            self.held[video.name] = (number, video)
            self.say(f"({number:3d}) Video: {video.name:12s} taken over by "
                     f"{_who(self.claims.holder(video.name))} while tracked here (this run was silent for longer "
                     "than the claims allow): not written here, left to that process")
            return False

    def done(self, video: Any) -> None:
        """`video`'s result files are written: give its claim up."""
        self.claims.release(video.name)
