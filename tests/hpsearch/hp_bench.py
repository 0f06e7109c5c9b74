"""The tiny search bench shared by the search's end-to-end tests: a small config, two snapshots and synthetic
benchmarks small enough to track on one CPU thread in seconds (the fixture is made available by conftest.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from helpers import tiny_cfg, torch_threads
from siamkpn.datasets.synthetic import SceneConfig
from siamkpn.datasets.synthetic_sets import write_otb_set, write_vot_set
from siamkpn.models.model_builder import ModelBuilder

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "hp_search_epoch.py"
GRID = ["--penalty-k", "0.0,0.6,0.3", "--window-influence", "0.1,1.0,0.5", "--lr", "0.5"]  # 2 x 2 x 1 per epoch


def tame(state: dict) -> dict:
    """Random weights, but heads that keep the box near the target so the metrics differ between configs."""
    for k, v in state.items():
        if ".offsets.head1.1." in k:
            v.zero_()
        elif ".objsize.head1.1.weight" in k:
            v.mul_(0.05)
        elif ".objsize.head1.1.bias" in k:
            v.fill_(30.0)
    return state


def write_snapshots(cfg, folder: Path, epochs, seed: int = 0) -> None:
    """checkpoint_e{N}.pth with tamed random weights (seed + N)."""
    folder.mkdir(parents=True, exist_ok=True)
    for epoch in epochs:
        torch.manual_seed(seed + epoch)
        torch.save({"epoch": epoch, "state_dict": tame(ModelBuilder(cfg).state_dict())},
                   folder / f"checkpoint_e{epoch}.pth")


@pytest.fixture(scope="session")
def bench(tmp_path_factory) -> Path:
    """config.yaml, checkpoint_e1/e2.pth, OTB100 (2 x 10 frames), VOT2019 (1 x 50) and VOT2018 (1 x 12 frames)."""
    root = tmp_path_factory.mktemp("hp")
    cfg = tiny_cfg(stack=1)
    cfg.TRACK.EXEMPLAR_SIZE, cfg.TRACK.INSTANCE_SIZE, cfg.TRACK.BASE_SIZE = 63, 95, 10  # small crops: fast on CPU
    (root / "config.yaml").write_text(cfg.dump())
    with torch_threads(1):
        write_snapshots(cfg, root, (1, 2))
    scene = SceneConfig(width=96, height=72, min_object=0.4, max_object=0.6, max_speed=0.01)
    write_otb_set(str(root / "OTB100"), seed=0, num_videos=2, num_frames=10, scene=scene, progress=False)
    # named VOT2019 for its EAO interval (46, 291), which a 50-frame video reaches
    write_vot_set(str(root / "VOT2019"), seed=0, num_videos=1, num_frames=50, scene=scene, progress=False)
    # VOT2018's EAO interval starts at 100 frames: EAO is undefined on these
    write_vot_set(str(root / "VOT2018"), seed=1, num_videos=1, num_frames=12, scene=scene, progress=False)
    return root


def tool_argv(bench: Path, out: Path, dataset: str, *extra: str, snapshots: Path = None) -> list:
    """siamkpn-hp-search's arguments for the bench (epochs 1-2, one CPU thread, GRID unless overridden)."""
    return ["--config", str(bench / "config.yaml"), "--dataset", dataset, "--dataset-root", str(bench / dataset),
            "--snapshot-dir", str(snapshots or bench), "--results-dir", str(out), "--start-epoch", "1",
            "--end-epoch", "2", "--threads", "1", "--device", "cpu", *GRID, *extra]


def tool_cmd(bench: Path, out: Path, dataset: str, *extra: str) -> list:
    """The same as a command line (tools/hp_search_epoch.py in a new process)."""
    return [sys.executable, str(TOOL), *tool_argv(bench, out, dataset, *extra)]
