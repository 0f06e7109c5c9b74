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
