"""Small configs and models for tests: the real code paths at a size that runs in milliseconds."""
from __future__ import annotations

import contextlib

from siamkpn.config import get_cfg


def tiny_cfg(stack: int = 2, weighted: bool = True, offsets: bool = True):
    """A resnet18 (layers 2+3) SiamKPN with 16-channel neck/heads; same structure as the published ones."""
    cfg = get_cfg()
    cfg.BACKBONE.TYPE = "resnet18"
    cfg.BACKBONE.KWARGS.used_layers = [2, 3]
    cfg.ADJUST.KWARGS.in_channels = [128, 256]
    cfg.ADJUST.KWARGS.out_channels = [16, 16]
    cfg.KPN.TYPE = "MultiKPN"
    cfg.KPN.KWARGS.in_channels = [16, 16]
    cfg.KPN.KWARGS.weighted = weighted
    cfg.TRAIN.STACK = stack
    cfg.TRAIN.INTER_SUPER = stack > 1
    cfg.TRAIN.DIF_STD = stack > 1
    cfg.TRAIN.OFFSETS = offsets
    cfg.TRACK.OFFSETS = offsets
    cfg.TRACK.BASE_SIZE = 14
    cfg.TRAIN.BASE_SIZE = 14
    cfg.TRAIN.OUTPUT_SIZE = 31
    return cfg


@contextlib.contextmanager
def torch_threads(n: int):
    """Run with `n` torch intra-op threads (restored after): small ops on a shared 2-core machine stall on
    OpenMP barriers with two threads, so the heavier small-model tests use one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tool_error(capsys, main, argv, code: int = 2) -> str:
    """Run a tool's ``main(argv)``, check it exited with ``code`` after exactly one ``<tool>: error:`` line on
    stderr (no traceback), and return that line. A usage error found by argparse ends in SystemExit: its status
    counts the same."""
    try:
        status = main(list(argv))
    except SystemExit as stop:
        status = stop.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == code, (status, err)
    lines = [line for line in err if ": error: " in line]
    assert len(lines) == 1 and not any("Traceback" in line for line in err), err
    return lines[0]


def write_clip(path, frames: int = 12, size=(240, 180)) -> None:
    """A small video of a square moving right and down, written with OpenCV (what the demo and API examples read)."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for t in range(frames):
        img = np.full((size[1], size[0], 3), 90, np.uint8)
        img[80 + t:120 + t, 100 + 2 * t:160 + 2 * t] = (40, 200, 240)
        writer.write(img)
    writer.release()


def race(target, values, *head, timeout: float = 60.0) -> list:
    """Start one forked process per value at once, ``target(*head, value, barrier, queue)`` (each waits at the
    barrier, then puts its outcome on the queue), and return the outcomes in the order they came; every child must
    finish."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(len(values)), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*head, value, barrier, queue)) for value in values]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=timeout)
        assert not p.is_alive(), "a child did not finish"
    return outcomes
