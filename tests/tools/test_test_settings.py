"""siamkpn-test refuses bad settings before any work: one `siamkpn-test: error:` line and exit 2, in-process."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import tiny_cfg, tool_error
from siamkpn.cli.test import main


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("settings") / "config.yaml"
    path.write_text(tiny_cfg(stack=1).dump())
    return path


def _argv(config: Path, snapshot: Path, *extra: str):
    tmp = config.parent
    return ["--config", str(config), "--snapshot", str(snapshot), "--device", "cpu", "--dataset", "OTB100",
            "--dataset-root", str(tmp / "OTB100"), "--results-dir", str(tmp / "results"), *extra]


def test_a_search_region_below_the_exemplar_is_refused_before_the_model_loads(capsys, config):
    # the snapshot does not exist: the config is checked first, so the error names the setting, not the file
    argv = _argv(config, config.parent / "never_read.pth", "--opts", "TRACK.INSTANCE_SIZE", "100")
    line = tool_error(capsys, main, argv)
    assert line == (f"siamkpn-test: error: config {config}: TRACK.INSTANCE_SIZE = 100 (from --opts) must exceed "
                    "TRACK.EXEMPLAR_SIZE 127 by a multiple of TRAIN.STRIDE 8 (nearest: 135)")


@pytest.mark.parametrize("threads", ["-1", "0"])
def test_threads_below_one_is_a_usage_error_naming_the_flag(capsys, config, threads):
    with pytest.raises(SystemExit) as exit_:
        main(_argv(config, config.parent / "never_read.pth", "--threads", threads))
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2
    assert err[-1] == f"siamkpn-test: error: argument --threads: expected a positive integer, got {threads}"


def test_a_directory_as_torch_snapshot_is_one_line_naming_it(capsys, config, tmp_path):
    folder = tmp_path / "checkpoint_e20.pth"
    folder.mkdir()
    line = tool_error(capsys, main, _argv(config, folder))
    assert line == (f"siamkpn-test: error: snapshot {folder} is a directory: backend torch loads a .pth file "
                    "(an ONNX export folder needs --backend onnx)")
