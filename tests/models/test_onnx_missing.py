"""Without onnxruntime the onnx backend and the export tool fail with one clear line (runs without the extra)."""
from __future__ import annotations

import sys

import pytest
import torch

from helpers import tiny_cfg, tool_error
from siamkpn.api import load_tracker
from siamkpn.cli.common import exit_code_for
from siamkpn.models.onnx_folder import BackendUnavailable, require_onnxruntime


@pytest.fixture
def no_onnxruntime(monkeypatch):
    """Make `import onnxruntime` fail as on a machine without the onnx extra."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


def test_onnx_backend_without_onnxruntime_is_a_clear_usage_error(no_onnxruntime, tmp_path):
    with pytest.raises(BackendUnavailable, match=r"needs onnxruntime.*pip install 'siamkpn\[onnx\]'") as err:
        require_onnxruntime()
    assert exit_code_for(err.value) == 2
    cfg = tiny_cfg()
    cfg.TRACK.BACKEND = "onnx"
    with pytest.raises(BackendUnavailable, match="--backend torch"):
        load_tracker(cfg, str(tmp_path))
    with pytest.raises(BackendUnavailable):
        load_tracker(tiny_cfg(), str(tmp_path), "cpu", opts=["TRACK.BACKEND", "onnx"])


def test_export_tool_without_onnxruntime_prints_one_line(no_onnxruntime, tmp_path, capsys):
    from siamkpn.cli.export_onnx import main
    from siamkpn.models.model_builder import ModelBuilder

    cfg = tiny_cfg()
    (tmp_path / "config.yaml").write_text(cfg.dump())
    torch.save({"state_dict": ModelBuilder(cfg).state_dict()}, tmp_path / "w.pth")
    line = tool_error(capsys, main, ["--config", str(tmp_path / "config.yaml"), "--snapshot",
                                     str(tmp_path / "w.pth"), "--out", str(tmp_path / "out")])
    assert line.startswith("siamkpn-export-onnx: error: backend 'onnx' needs onnxruntime")
    assert not (tmp_path / "out").exists()
