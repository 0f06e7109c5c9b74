"""siamkpn.load_tracker: the boxes siamkpn-test writes for the same frames and first box, with either backend; the
README's "Use from Python" example runs as written."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import tiny_cfg, torch_threads, write_clip
from siamkpn.cli import test as siamkpn_test
from siamkpn.config import load_cfg
from siamkpn.models.inference import describe
from siamkpn.models.model_builder import ModelBuilder
from toolkit.boxes import init_box_from_gt
from toolkit.datasets import DatasetFactory
from toolkit.datasets.video import read_image
from toolkit.errors import BadInput

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tiny_bench", REPO / "tests" / "tools" / "tiny_bench.py")
tiny_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_bench)  # tests/tools/tiny_bench.py: tests/tools is not on this file's path


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """config.yaml (no TRACK.BACKEND: the API takes it from the snapshot), a tiny .pth and one OTB-style video."""
    root = tmp_path_factory.mktemp("api")
    text = tiny_cfg(stack=1).dump()
    (root / "config.yaml").write_text(re.sub(r"\n  BACKEND: torch\n", "\n", text))
    tiny_bench.write_tiny_snapshot(root / "tiny.pth", seed=3)
    tiny_bench.write_otb_video(root / "OTB100", "walker", seed=4)
    return root


def _export(root: Path) -> Path:
    """An ONNX export folder of the tiny snapshot (float32 graphs)."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'siamkpn[onnx]')")
    from siamkpn.datasets.calibration import synthetic_pairs
    from siamkpn.models.checkpoint import load_tracking_checkpoint
    from siamkpn.models.onnx_export import export_onnx

    folder = root / "tiny_onnx"
    if not folder.exists():
        cfg = tiny_cfg(stack=1)
        model = ModelBuilder(cfg)
        load_tracking_checkpoint(model, str(root / "tiny.pth"))
        pairs = synthetic_pairs(cfg.TRACK.EXEMPLAR_SIZE, cfg.TRACK.INSTANCE_SIZE, 1)
        export_onnx(model.eval(), cfg, str(folder), pairs)
    return folder


def _result_boxes(root: Path, snapshot: Path, name: str, *extra: str) -> np.ndarray:
    argv = ["--config", str(root / "config.yaml"), "--snapshot", str(snapshot), "--dataset", "OTB100",
            "--dataset-root", str(root / "OTB100"), "--results-dir", str(root / "results"), "--tracker-name", name,
            "--device", "cpu", "--no-progress", *extra]
    assert siamkpn_test.main(argv) == 0
    lines = (root / "results" / "OTB100" / name / "walker.txt").read_text().split()
    return np.array([[float(v) for v in line.split(",")] for line in lines])


def _api_boxes(root: Path, snapshot: Path) -> np.ndarray:
    import siamkpn

    video = DatasetFactory.create_dataset("OTB100", root / "OTB100")["walker"]
    tracker = siamkpn.load_tracker(root / "config.yaml", snapshot, device="cpu")
    frames = [read_image(p) for p in video.img_names]
    box = init_box_from_gt(video.gt_traj[0])
    tracker.init(frames[0], box)
    boxes = [box] + [tracker.track(img)["bbox"] for img in frames[1:]]
    return np.array(boxes)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_api_gives_the_boxes_of_siamkpn_test(bench, backend):
    snapshot = bench / "tiny.pth" if backend == "torch" else _export(bench)
    with torch_threads(1):
        written = _result_boxes(bench, snapshot, backend, *(["--backend", "onnx"] if backend == "onnx" else []))
        tracked = _api_boxes(bench, snapshot)
    assert tracked.shape == written.shape == (tiny_bench.FRAMES, 4)
    np.testing.assert_array_equal(tracked, written)  # the file holds repr() floats: exactly the same boxes


def test_the_backend_follows_the_snapshot_and_a_config_that_names_one_must_agree(bench, tmp_path):
    from siamkpn import load_tracker

    folder = _export(bench)
    with torch_threads(1):
        tracker = load_tracker(bench / "config.yaml", folder, fast=True)
    assert "no int8 track graph" in describe(tracker.model)  # onnx, in fast mode (the folder has no int8 graph)
    named = tmp_path / "torch.yaml"
    named.write_text(tiny_cfg(stack=1).dump())  # TRACK.BACKEND: torch, written out

    with pytest.raises(BadInput, match="ONNX export folder: run it with --backend onnx"):
        load_tracker(named, folder)
    with pytest.raises(BadInput, match=r"is a file, but backend onnx runs the folder"):
        load_tracker(bench / "config.yaml", bench / "tiny.pth", opts=["TRACK.BACKEND", "onnx"])
    with pytest.raises(BadInput, match=r"--device cuda: backend onnx runs on the CPU"):
        load_tracker(load_cfg(str(bench / "config.yaml"), ["TRACK.BACKEND", "onnx"]), folder, device="cuda")


def test_import_siamkpn_stays_torch_free():
    """`import siamkpn` and what a `siamkpn-test --workers N` parent on CPU imports (it claims, hands out, checks
    the folder's record and prints; workers track) load no torch: the parent starts no 2-second import."""
    code = ("import sys, siamkpn\nprint('torch' in sys.modules)\n"
            "import siamkpn.tracker, siamkpn.tracker.provenance, siamkpn.testing.runner, siamkpn.utils.claims\n"
            "print('torch' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.split() == ["False", "False"], run


def test_the_readme_example_runs(tmp_path):
    """README "Use from Python", run as written in a folder holding what it names: the quick-start config, random
    weights of that model where the quick start leaves its trained snapshot, and a short clip."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use from Python\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    config, snapshot = "experiments/siamkpn_quickstart/config.yaml", "quickstart_output/snapshots/checkpoint_e6.pth"
    assert config in code and snapshot in code and "clip.mp4" in code
    (tmp_path / config).parent.mkdir(parents=True)
    (tmp_path / config).write_text((REPO / config).read_text())
    (tmp_path / snapshot).parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(ModelBuilder(load_cfg(str(REPO / config))).state_dict(), tmp_path / snapshot)
    write_clip(tmp_path / "clip.mp4")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 11  # one line per frame after the first of the 12-frame clip
    box, score = lines[0].rsplit("] ", 1)
    assert len(box.strip("[").split(",")) == 4 and 0.0 <= float(score) <= 1.0
