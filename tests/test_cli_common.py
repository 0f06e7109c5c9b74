"""The one error policy of every command (siamkpn.cli.common.run_tool): one line, exit 2 for bad input, 1 for a
failure while running, the traceback only with --debug or SIAMKPN_DEBUG."""
from __future__ import annotations

import errno

import pytest

from siamkpn.cli.common import UsageError, exit_code_for, run_tool
from siamkpn.config import ConfigError
from siamkpn.engine.run_lock import RankZeroRefused, RankZeroStopped
from siamkpn.engine.trainer import TrainingDiverged
from siamkpn.hpsearch.storage import StorageFullError
from siamkpn.models.checkpoint import CheckpointError
from toolkit.datasets import DatasetError
from toolkit.datasets.video import FrameReadError
from toolkit.errors import BadInput
from toolkit.evaluation.workers import WorkerError, WorkerInputError
from toolkit.results import ResultFileError


def _raiser(err):
    def main(argv):
        raise err
    return main


@pytest.mark.parametrize("err, code", [
    (UsageError("bad flag combination"), 2),
    (ConfigError("unknown config key 'TRACK.X' in a.yaml"), 2),
    (CheckpointError("x.pth: missing keys"), 2),
    (ResultFileError("r.txt", 3, "not numbers"), 2),
    (DatasetError("gt.txt, line 2: 3 values"), 2),
    (FrameReadError("cannot read frame 00000001.jpg"), 2),
    (FileNotFoundError("config file not found: c.yaml"), 2),
    (OSError(errno.EACCES, "Permission denied", "/root/x"), 2),
    (BadInput("--init must be finite"), 2),
    (TrainingDiverged("weights are not finite"), 1),
    (StorageFullError("cannot write the study database x.db: No space left on device"), 1),
    (WorkerError("the worker process evaluating 'B' died (killed by SIGKILL)"), 1),
    (WorkerInputError("worker evaluating 'B' failed: Unloadable: v.txt: garbled"), 2),
    (RankZeroStopped("process 0 stopped: cannot write train.lock"), 1),
    (RankZeroRefused("process 0 stopped: TRAIN.SNAPSHOT_DIR s is in use by another training run"), 2),
    (OSError(errno.ENOSPC, "No space left on device"), 1),
    (RuntimeError("CUDA error: out of memory"), 1),
    (ValueError("operands could not be broadcast together"), 1),  # a bug inside, not the user's input
])
def test_exit_codes_and_one_line(capsys, monkeypatch, err, code):
    monkeypatch.delenv("SIAMKPN_DEBUG", raising=False)
    assert exit_code_for(err) == code
    assert run_tool(_raiser(err), [], "siamkpn-x") == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siamkpn-x: error: "), lines
    # failures name their type and point at --debug; bad input is the message alone
    assert ("--debug" in lines[0]) == (code == 1)


def test_keyerror_quotes_and_multiline_messages_become_one_plain_line(capsys):
    assert run_tool(_raiser(KeyError("no such video 'x'")), [], "siamkpn-x") == 1
    assert capsys.readouterr().err.strip() == ("siamkpn-x: error: KeyError: no such video 'x' "
                                               "(run with --debug for the traceback)")
    run_tool(_raiser(UsageError("first line\n  second line\n")), [], "siamkpn-x")
    assert capsys.readouterr().err.strip() == "siamkpn-x: error: first line second line"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback_and_keeps_the_code(capsys, monkeypatch, how):
    argv = ["--debug"] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("SIAMKPN_DEBUG", "1")
    assert run_tool(_raiser(RuntimeError("boom")), argv, "siamkpn-x") == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().endswith("siamkpn-x: error: RuntimeError: boom")


def test_usage_errors_and_interrupts(capsys):
    def argparse_error(argv):
        raise SystemExit(2)

    with pytest.raises(SystemExit) as exit_info:  # argparse prints its own usage line and exits 2
        run_tool(argparse_error, [], "siamkpn-x")
    assert exit_info.value.code == 2
    assert run_tool(_raiser(KeyboardInterrupt()), [], "siamkpn-x") == 130
    assert capsys.readouterr().err.strip() == "siamkpn-x: interrupted"
    assert run_tool(lambda argv: None, [], "siamkpn-x") == 0
