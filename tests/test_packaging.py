"""The package works without the repository: build a wheel, install it into a fresh venv outside the checkout,
run every console script's --help and a real pipeline (synthetic data -> test -> eval) from a folder far away.

The fresh venv gets the dependencies (torch, opencv, ...) from the project's .venv through a path entry, so the test
needs no download; the wheel itself is installed with --no-deps and is the only copy of siamkpn it can import.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import torch

from helpers import tiny_cfg
from siamkpn.models.model_builder import ModelBuilder

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd, cwd, timeout=300, check=True):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = str(Path(cmd[0]).parent) + os.pathsep + env.get("PATH", "")
    run = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert run.returncode == 0, f"{cmd}\n{run.stdout}\n{run.stderr}"
    return run


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder, console script names) of a fresh venv holding only the built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so the build leaves no build/ or egg-info in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info",
                                                                "__pycache__", ".*_cache", "results", "*output*"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist",
          source], cwd=root)
    wheel = next((root / "dist").glob("siamkpn-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = [line.split("=")[0].strip() for line in zf.read(entry_points).decode().splitlines()
                   if line.strip().startswith("siamkpn-")]
    assert not any(n.startswith(("tests/", "tools/", "scripts/", "benchmarks/")) for n in names), names
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next(env_dir.glob("lib/python*/site-packages")) if os.name != "nt" else env_dir / "Lib" / "site-packages"
    (site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co, not siamkpn
    _run([sys.executable, "-m", "pip", "--python", env_dir / "bin" / "python", "install", "-q", "--no-deps",
          wheel], cwd=root)
    return env_dir / "bin", scripts, root


def test_every_console_script_answers_help(installed):
    bin_dir, scripts, root = installed
    assert {"siamkpn-train", "siamkpn-test", "siamkpn-eval", "siamkpn-hp-search", "siamkpn-demo",
            "siamkpn-prepare", "siamkpn-synthetic"} <= set(scripts)
    for name in scripts:
        run = _run([bin_dir / name, "--help"], cwd=root)
        assert "usage:" in run.stdout and "--debug" in run.stdout, name
    where = _run([bin_dir / "python", "-c", "import siamkpn, toolkit; print(siamkpn.__file__, toolkit.__file__)"],
                 cwd=root).stdout
    assert str(REPO) not in where and "site-packages" in where


def test_installed_pipeline_runs_away_from_the_checkout(installed):
    bin_dir, _, root = installed
    work = root / "work"
    work.mkdir()
    _run([bin_dir / "siamkpn-synthetic", "--out", work / "data", "--parts", "otb", "--test-videos", "1",
          "--test-frames", "6", "--width", "96", "--height", "72"], cwd=work)
    cfg = tiny_cfg(stack=1)
    (work / "config.yaml").write_text(cfg.dump())
    torch.manual_seed(0)
    torch.save({"state_dict": ModelBuilder(cfg).state_dict()}, work / "tiny.pth")
    _run([bin_dir / "siamkpn-test", "--config", "config.yaml", "--snapshot", "tiny.pth", "--dataset", "OTB100",
          "--dataset-root", work / "data" / "test" / "OTB100", "--device", "cpu"], cwd=work)
    _run([bin_dir / "siamkpn-eval", "--tracker_path", "results", "--dataset", "OTB100", "--dataset-root",
          work / "data" / "test" / "OTB100", "--json", "scores.json", "--no-progress"], cwd=work)
    scores = json.loads((work / "scores.json").read_text())
    assert set(scores) == {"tiny"} and 0.0 <= scores["tiny"]["success_auc"] <= 1.0
    bad = _run([bin_dir / "siamkpn-eval", "--tracker_path", "nowhere", "--dataset", "OTB100"], cwd=work, check=False)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("siamkpn-eval: error:"), bad.stderr
