"""siamkpn-test's run: in this process (one worker) or in worker processes, on a folder others may share.

The flow: the folder's record of what produces its results is checked (or written) under its lock; videos
already finished are skipped (pysot's "already done, skipped" line, with Lost for VOT); the others are handed out
(longest first when several are tracked at once), each claimed right before it is tracked; videos held by other
invocations are waited for; the total (VOT: lost over every video, read from the result files) comes last.
Lines and the one progress bar come from this process only.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, List, Optional, Sequence

from tqdm import tqdm

from siamkpn.cli.args import config_opts
from siamkpn.cli.common import UsageError
from siamkpn.models.backends import backend_for
from siamkpn.testing.devices import default_threads, local_rank, worker_count, worker_devices
from siamkpn.testing.dispatch import Dispatcher
from siamkpn.testing.pool import WorkerBadInput, WorkerPool
from siamkpn.testing.worker import RunSpec, track_videos
from toolkit import results

__all__ = ["claim_folder", "run"]


def claim_folder(args: argparse.Namespace, cfg: Any, dataset: Sequence[Any], kind: str, name: str, precision: str,
                 device: str) -> None:
    """Check (or write) the record of what produces the results in the tracker's folder; --overwrite resets it."""
    from siamkpn.tracker.provenance import prepare_result_folder, tracking_provenance

    folder = os.path.join(args.results_dir, args.dataset, name)
    current = tracking_provenance(cfg, args.snapshot, precision)
    files = [p for v in dataset for p in results.result_files(folder, v.name, kind).values()]
    written_by = {"tool": "siamkpn-test", "snapshot": os.path.abspath(args.snapshot),
                  "config": os.path.abspath(args.config), "device": device}
    prepare_result_folder(folder, current, files, args.overwrite, written_by)


class _Output:
    """The run's lines and its one progress bar (frames of the videos left, with ETA)."""

    def __init__(self, args: argparse.Namespace, name: str, kind: str, videos: List[Any], longest_first: bool):
        self.args, self.name, self.kind, self.videos, self.longest_first = args, name, kind, videos, longest_first
        self.bar: Optional[tqdm] = None

    def _path(self, video: Any):
        return results.result_path(self.args.results_dir, self.args.dataset, self.name, video.name, self.kind)

    def is_done(self, video: Any) -> bool:
        return results.is_finished(self.args.results_dir, self.args.dataset, self.name, video.name, self.kind,
                                   num_frames=len(video))

    def _lost(self, video: Any) -> int:
        return sum(1 for line in results.read_vot(self._path(video)) if line == [2.0])

    def say(self, line: str) -> None:
        tqdm.write(line)

    def skipped(self, number: int, video: Any) -> None:
        line = f"({number:3d}) Video: {video.name:12s} already done, skipped"
        if self.kind == "vot":  # its failures still count in the total
            line += f" Lost: {self._lost(video):d}"
        self.say(line)
        if self.bar is not None:
            self.bar.total -= len(video)
            self.bar.refresh()

    def start(self, claims: Any) -> Dispatcher:
        """Skip the finished videos; the dispatcher of the others; the progress bar."""
        entries = []
        for number, video in enumerate(self.videos, 1):
            if self.is_done(video):
                self.skipped(number, video)
                if os.path.exists(claims.path(video.name)) and claims.claim(video.name):
                    claims.release(video.name)  # the stale claim of a run killed after writing the video
            else:
                entries.append((number, video))
        if self.longest_first:
            entries.sort(key=lambda e: -len(e[1]))  # stable: equal lengths keep the benchmark's order
        self.bar = tqdm(total=sum(len(v) for _, v in entries), unit="frame", desc=self.name, leave=False,
                        disable=self.args.no_progress)
        return Dispatcher(claims, entries, self.is_done, self.skipped, self.say)

    def frames(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def tracked(self, number: int, video: Any, seconds: float, lost: int) -> None:
        toc = max(seconds, 1e-9)
        line = f"({number:3d}) Video: {video.name:12s} Time: {toc:5.1f}s Speed: {len(video) / toc:3.1f}fps"
        if self.kind == "vot":
            line += f" Lost: {lost:d}"
        self.say(line)

    def warn(self, text: str) -> None:
        tqdm.write(f"warning: {text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def total(self) -> None:
        """VOT: the failures of every video, tracked here, earlier or by other invocations."""
        if self.kind == "vot":
            lost = sum(self._lost(v) for v in self.videos if self.is_done(v))
            print(f"{self.name} total lost: {lost:d}")


def _here(args, cfg, spec: RunSpec, device: str, out: _Output, dataset, folder: str,
          wrap: Optional[Callable[[Any], Any]]) -> None:
    """One worker: this process tracks (as the sequential run always did)."""
    import torch

    from siamkpn.api import load_tracker
    from siamkpn.utils.claims import VideoClaims

    if spec.threads:
        torch.set_num_threads(spec.threads)
    tracker = load_tracker(cfg, args.snapshot, device)
    claim_folder(args, cfg, dataset, spec.kind, spec.name, backend_for(cfg).precision(tracker.model),
                 str(getattr(tracker.model, "device", "?")))
    if wrap is not None:
        tracker = wrap(tracker)
    with VideoClaims(folder) as claims:
        dispatcher = out.start(claims)

        def done(video: Any, res: Any) -> None:
            dispatcher.done(video)
            out.tracked(dispatcher.number[video.name], video, sum(res.times), res.lost)

        track_videos(tracker, cfg, spec, dispatcher.take, lambda video, n: out.frames(n), done, dispatcher.may_write)


def _pool(args, cfg, spec: RunSpec, devices: List[str], out: _Output, dataset, folder: str) -> None:
    """Several workers: worker processes track; this process claims, hands out and prints."""
    from siamkpn.utils.claims import VideoClaims

    pool = WorkerPool(spec, devices)
    pool.start()
    try:
        with VideoClaims(folder) as claims:
            dispatcher, precision, wants = None, None, {}
            by_name = {v.name: v for v in out.videos}
            while pool.running:
                msg = pool.get(timeout=0.2)
                kind = msg[0] if msg else None
                if kind == "ready":
                    if dispatcher is None:  # the first worker's model says what the folder's results are
                        precision = msg[2]
                        claim_folder(args, cfg, dataset, spec.kind, spec.name, precision, msg[3])
                        dispatcher = out.start(claims)
                    elif msg[2] != precision:
                        raise WorkerBadInput(f"worker {msg[1]} ({devices[msg[1]]}) computes in {msg[2]}, worker 0 "
                                             f"in {precision}: one result folder takes one precision (give "
                                             "--device devices of one kind)")
                elif kind == "want":
                    wants[msg[1]] = msg[2]
                elif kind == "frames":
                    out.frames(msg[2])
                elif kind == "write?":
                    allowed = dispatcher.may_write(by_name[msg[2]])
                    if not allowed:
                        pool.current[msg[1]].discard(msg[2])
                    pool.answer(msg[1], allowed)
                elif kind == "done":
                    video = by_name[msg[2]]
                    pool.current[msg[1]].discard(video.name)
                    dispatcher.done(video)
                    out.tracked(dispatcher.number[video.name], video, msg[3], msg[5])
                elif kind == "warn":
                    out.warn(msg[2])
                elif kind == "error":
                    raise pool.failed(msg[1], msg[2], msg[3])
                elif kind == "bye":
                    pool.finished.add(msg[1])
                if dispatcher is not None:
                    _serve(pool, dispatcher, wants)
    finally:
        pool.close()


def _serve(pool: WorkerPool, dispatcher: Dispatcher, wants: dict) -> None:
    """Answer the workers waiting for a video: one claimed now, None when there is nothing (more) for them."""
    for wid, wait in list(wants.items()):
        video = dispatcher.take(False)
        if video is not None:
            pool.give(wid, video.name)
        elif not wait or not dispatcher.waiting:
            pool.give(wid, None)
        else:
            continue
        del wants[wid]
    if any(wants.values()):
        dispatcher.announce()


def run(args: argparse.Namespace, cfg: Any, name: str, dataset: Sequence[Any], videos: List[Any], kind: str,
        wrap: Optional[Callable[[Any], Any]] = None) -> int:
    """Track `videos` of `dataset` into ``<results-dir>/<dataset>/<name>`` as siamkpn-test's flags say."""
    workers = worker_count(args.workers, args.device)
    devices = worker_devices(args.device, workers, local_rank())
    if args.vis and (workers > 1 or args.batch > 1):
        raise UsageError("--vis shows one video at a time: use it with --workers 1 --batch 1")
    spec = RunSpec(config=args.config, opts=tuple(config_opts(args)), snapshot=args.snapshot, dataset=args.dataset,
                   dataset_root=dataset_root_of(args), results_dir=args.results_dir, name=name, kind=kind,
                   batch=args.batch, threads=default_threads(args.threads, workers))
    folder = str(results.tracker_folder(args.results_dir, args.dataset, name))
    out = _Output(args, name, kind, videos, longest_first=workers > 1 or args.batch > 1)
    note = backend_for(cfg).lanes_note
    if args.batch > 1 and note:
        out.say(f"note: --batch {args.batch}: {note}")
    try:
        if workers == 1:
            _here(args, cfg, spec, devices[0], out, dataset, folder, wrap)
        else:
            _pool(args, cfg, spec, devices, out, dataset, folder)
    finally:
        out.close()
    out.total()
    return 0


def dataset_root_of(args: argparse.Namespace) -> str:
    """The benchmark folder as siamkpn-test resolved it (workers open the same one)."""
    from toolkit.datasets import resolve_dataset_root

    return os.path.abspath(resolve_dataset_root(args.dataset, args.dataset_root))
