"""Tracking a stream of videos and writing their results: the loop of the sequential run and of each worker.

A worker process (``worker_main``, started by ``siamkpn.testing.pool``) loads the tracker once on its device, asks
the parent for videos one at a time (the parent claims each right before handing it out), writes each video's
result files itself (atomically: a worker killed mid-video leaves nothing of it) and reports frames, finished
videos, warnings and its own failure through a queue. It prints nothing: the parent owns the terminal.
"""
from __future__ import annotations

import itertools
import multiprocessing
import queue
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

from toolkit import protocols, results

__all__ = ["RunSpec", "track_videos", "worker_main"]


@dataclass(frozen=True)
class RunSpec:
    """What a worker needs to rebuild the run (picklable: workers are spawned, not forked)."""

    config: str
    opts: Tuple[str, ...]
    snapshot: str
    dataset: str
    dataset_root: str
    results_dir: str
    name: str  # the tracker folder's name
    kind: str  # ope / vot / longterm / got10k
    batch: int
    threads: Optional[int]


def _results(tracker: Any, videos: Iterable[Any], kind: str, batch: Any, k: int,
             on_frames: Callable[[Any, int], None]) -> Iterator[Tuple[Any, protocols.ProtocolResult]]:
    if k == 1:  # the sequential run's own loop: byte-identical files
        for video in videos:
            yield video, protocols.run_protocol(tracker, video, kind, progress=lambda n, v=video: on_frames(v, n))
        return
    from toolkit.lanes import run_videos

    yield from run_videos(batch, videos, kind, k, on_frames=on_frames)


def track_videos(tracker: Any, cfg: Any, spec: RunSpec, next_video: Callable[[bool], Optional[Any]],
                 on_frames: Callable[[Any, int], None],
                 on_done: Callable[[Any, protocols.ProtocolResult], None],
                 may_write: Callable[[Any], bool] = lambda video: True) -> None:
    """Track what ``next_video(wait)`` hands out until it returns None with ``wait`` set, ``spec.batch`` videos
    at a time, writing each video's result files before ``on_done(video, result)``; a video for which
    ``may_write(video)`` (asked once it is tracked) is False is neither written nor reported done.

    Lanes pull lazily (``next_video(False)``: None when nothing is claimable right now); when the stream runs dry,
    the lanes finish and ``next_video(True)`` waits for videos held elsewhere.
    """
    batch = None
    if spec.batch > 1:
        from siamkpn.tracker import build_video_batch_tracker

        batch = build_video_batch_tracker(tracker.model, cfg, spec.batch)
    while True:
        first = next_video(True)
        if first is None:
            return
        stream = itertools.chain([first], iter(lambda: next_video(False), None))
        for video, res in _results(tracker, stream, spec.kind, batch, spec.batch, on_frames):
            if not may_write(video):
                continue
            results.write_video_result(spec.results_dir, spec.dataset, spec.name, video.name, res.boxes,
                                       scores=res.scores, times=res.times, kind=spec.kind)
            on_done(video, res)


class _Frames:
    """Frames done, sent to the parent at most every `every` seconds (and when a video ends)."""

    def __init__(self, send: Callable[[tuple], None], wid: int, every: float = 0.2) -> None:
        self.send, self.wid, self.every, self.count, self.last = send, wid, every, 0, time.monotonic()

    def add(self, video: Any, n: int) -> None:
        self.count += n
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        _check_parent()
        if self.count:
            self.send(("frames", self.wid, self.count))
        self.count, self.last = 0, time.monotonic()


def _check_parent() -> None:
    """End a worker whose parent is gone (SIGKILLed): no orphan tracks on, none waits forever for a video."""
    parent = multiprocessing.parent_process()
    if parent is not None and not parent.is_alive():
        raise SystemExit(1)


def _receive(tasks: Any) -> Any:
    """The parent's answer (a video name or None; True / False to write?), looking every second whether the
    parent still lives."""
    while True:
        try:
            return tasks.get(timeout=1.0)
        except queue.Empty:
            _check_parent()


def worker_main(wid: int, spec: RunSpec, device: str, tasks: Any, messages: Any) -> None:
    """A worker process: see the module docstring. Messages: ready, want, frames, write?, done, warn, error, bye."""
    from siamkpn.cli.common import exit_code_for, one_line

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        messages.put(("warn", wid, str(message)))

    warnings.showwarning = show
    warnings.simplefilter("always", protocols.TrackingInputWarning)
    try:
        import torch

        from siamkpn.api import load_tracker
        from siamkpn.config import load_cfg
        from siamkpn.models.backends import backend_for
        from toolkit.datasets import DatasetFactory

        if spec.threads:
            torch.set_num_threads(spec.threads)
        cfg = load_cfg(spec.config, list(spec.opts), freeze=True)
        tracker = load_tracker(cfg, spec.snapshot, device)
        videos = {v.name: v for v in DatasetFactory.create_dataset(spec.dataset, spec.dataset_root, load_img=False)}
        messages.put(("ready", wid, backend_for(cfg).precision(tracker.model),
                      str(getattr(tracker.model, "device", device))))
        frames = _Frames(messages.put, wid)

        def next_video(wait: bool) -> Optional[Any]:
            frames.flush()
            messages.put(("want", wid, wait))
            name = _receive(tasks)
            return None if name is None else videos[name]

        def may_write(video: Any) -> bool:  # the parent holds the claims
            frames.flush()
            messages.put(("write?", wid, video.name))
            return bool(_receive(tasks))

        def done(video: Any, res: protocols.ProtocolResult) -> None:
            frames.flush()
            messages.put(("done", wid, video.name, sum(res.times), len(res.boxes), res.lost))

        track_videos(tracker, cfg, spec, next_video, frames.add, done, may_write)
        messages.put(("bye", wid))
    except KeyboardInterrupt:
        pass  # Ctrl-C reaches the whole process group: the parent reports it
    except Exception as err:  # noqa: BLE001 - a worker's failure goes to the parent, which ends the run
        messages.put(("error", wid, f"{type(err).__name__}: {one_line(err)}", exit_code_for(err)))
