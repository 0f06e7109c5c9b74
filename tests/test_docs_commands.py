"""Every command block of README.md and INSTALL.md runs as written, so the docs cannot drift from the tools.

Each ```bash block is split into commands (continuation lines joined, a `for ... done` loop whole, comments
kept for bash). Every command is either RUN or listed in ``doc_commands.NOT_RUN`` with its reason; a command that
is neither (a program the test does not know) fails `test_every_command_is_run_or_listed`, and so does a NOT_RUN
entry that matches nothing. `test_documented_commands_run` (slow) then runs the blocks in document order in a
temporary copy of the repository's runnable surface, like a user following the docs in a fresh terminal:

* every block starts in the tree's root (the repository root); a `cd DIR` command changes the folder for the
  rest of its block; every other command runs in `bash -e` with the venv's console scripts, `python` (this
  interpreter) and `torchrun` on PATH, OMP_NUM_THREADS=1 (as torchrun sets it) and a 240 s timeout, and must
  exit 0; a failure shows the command as written, as run, its folder and its output; later commands still
  run, so one run lists every broken one;
* a trailing comment `# = OTHER ARGS` documents an equivalent spelling and is run as a command of its own
  (`# = OTHER ...` means OTHER with the command's own arguments);
* a `--json FILE` a command wrote must be strict JSON right after it (README: never a bare NaN).

The tree: `tools/*.py` and the `scripts/` shims copied; `experiments/siamkpn_quickstart/config.yaml` as it is;
every published `experiments/<name>/config.yaml` replaced by its tiny version (below).

Substitutions (doc_commands.substitute), generic string rules applied in this order to every command:

  written in the docs                   run as                               why
  trailing `# comment`                  removed                              a `# = CMD` runs on its own
  `/data`, `/data/...`                  `<tmp>/data`, `<tmp>/data/...`       the tiny data root (below)
  `[--flag VALUE]` (optional parts)     `--flag VALUE`                       every documented option runs
  `--device cuda`, `--device cuda:N`    `--device cpu`                       CI has no GPU
  `--nproc_per_node=N`                  `--nproc_per_node=1`                 one process (2: test_train_distributed)
  `for VAR in A B C D;`                 `for VAR in A B;`                    one worker per GPU -> two
  `CMD &` ... `wait`                    each job's pid kept, each checked    a bare `wait` hides failures
  `start,stop,step` ranges              `start,start+step,step`              one value per parameter
  `--start-epoch A --end-epoch B`       `--start-epoch 2 --end-epoch 2`      the shortened run's last snapshot
  `siamkpn-train`, `tools/train.py`     `--opts ... TRAIN_OPTS` appended     2 epochs of 4 pairs (below)
  `siamkpn-synthetic`, `make_synthetic` `SYNTHETIC_SIZES` appended           3 + 1 + 1 videos at 96x72
  example names: `ants1`                the tiny VOT2018 video               (build_data)

TRAIN_OPTS = `TRAIN.EPOCH 2 TRAIN.LR_WARMUP.EPOCH 1 TRAIN.BATCH_SIZE 2 TRAIN.NUM_WORKERS 0
DATASET.VIDEOS_PER_EPOCH 4 TRAIN.PRINT_FREQ 1`: README's own advice for a shortened published run (the warm-up
ends before the last epoch); appended last, so it overrides a command's own `TRAIN.BATCH_SIZE 8` etc.

What the docs assume exists, made before the run (or, for snapshots and results, before the command needing them):

* `/data/{GOT-10k,LaSOT,coco,yt_bb,ILSVRC2015}`, the official downloads: the small official layouts of
  tests/datasets/test_prepare.py (fake_got10k, ...), so `siamkpn-prepare` writes the `/data/training_dataset/`
  the published configs then train on; `/data/GOT-10k/test`: one test sequence (first-frame box) of synthetic
  frames;
* `/data/OTB100`, `/data/VOT2018`: synthetic benchmarks, 1 OTB video of 12 frames and 1 VOT video of 100 frames
  (the VOT2018 EAO interval starts at frame 100: the search's EAO needs it);
* `experiments/<published>/config.yaml`: the published yaml with the model shrunk to the quick-start model
  (ResNet-18 layers 2-3, no ImageNet weights, 16-channel neck and heads, 159-px search region, 19x19 output);
  stages, variance decay, offsets, datasets, schedule and tracker stay as published;
* a `--snapshot` no earlier command wrote (`siamkpn-3s_vot.pth`, `siamkpn-3s_otb.pth`, ...): random weights of
  the command's own (tiny) config, where the command looks for it;
* `clip.mp4` (demo): a 240x180, 12-frame video written with OpenCV in the tree's root;
* the results `siamkpn-pack` reads (`results/GOT-10k-test/siamkpn-3s_got/`): `siamkpn-test` of
  `siamkpn-3s_got.pth` on `/data/GOT-10k` writes them;
* the workspace of `vot initialize ... --workspace ws` (not run): the empty folder (doc_commands.STAND_INS).

After the run, the outputs the docs promise are checked (snapshots and log of the shortened runs, results with
provenance.json, plots, the search's output folder, the demo video, trackers.ini, the submission archive).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from importlib import util
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from doc_commands import (
    NOT_RUN,
    REPO,
    TRAIN_EPOCHS,
    Command,
    doc_blocks,
    is_runnable,
    not_run_reason,
    option,
    split_commands,
    stand_in,
    substitute,
)
from helpers import write_clip

PUBLISHED = sorted(p.parent.name for p in (REPO / "experiments").glob("*/config.yaml")
                   if p.parent.name != "siamkpn_quickstart")
EXPERIMENT = "experiments/siamkpn_r50_stack3_difstd"  # the folder README's Training block enters
TIMEOUT_S = 240
# NOT_RUN entries that may match nothing right now: README's Performance section (python benchmarks/...) is being
# rewritten; its commands are listed-not-run whether or not they are in a ```bash block.
MAY_MATCH_NOTHING = {r"^python benchmarks/"}


# ---------------------------------------------------------------- fast checks: extraction and classification


def test_every_command_is_run_or_listed():
    unclassified, matched = [], set()
    for block in doc_blocks():
        for command in block:
            listed = not_run_reason(command)
            if listed:
                matched.add(listed[0])
            elif not is_runnable(command):
                unclassified.append(f"{command.where}: {command.flat}")
    assert not unclassified, ("documented commands neither run by this test nor listed in doc_commands.NOT_RUN "
                              "(run them here, or list them with a reason):\n" + "\n".join(unclassified))
    stale = set(NOT_RUN) - matched - MAY_MATCH_NOTHING
    assert not stale, f"NOT_RUN entries that match no documented command: {sorted(stale)}"


def test_docs_have_commands_of_every_runnable_tool():
    # guards the extraction itself: if the parser lost blocks, the run below would pass by running nothing
    flat = [c.flat for block in doc_blocks() for c in block if is_runnable(c)]
    for tool in ("siamkpn-prepare", "siamkpn-synthetic", "tools/train.py", "siamkpn-train", "tools/test.py",
                 "siamkpn-test", "tools/eval.py", "siamkpn-eval", "tools/hp_search_epoch.py", "siamkpn-demo",
                 "siamkpn-vot-integration", "siamkpn-pack"):
        assert any(tool in text for text in flat), tool


def test_split_keeps_continuations_loops_comments_and_alternatives():
    lines = ["# a comment line", "cd sub", "run-a --x 1 \\", "    --y 2   # = other-a ...",
             "for k in 0 1 2 3; do", "  # inside the loop", "  K=$k run-b --k $k &", "done; wait",
             "", "run-c  # = alt-c --z"]
    cmds = split_commands("X.md", 10, lines)
    assert [c.line for c in cmds] == [11, 12, 12, 14, 19, 19]
    assert cmds[1].flat == "run-a --x 1 --y 2   # = other-a ..."
    assert cmds[2].flat == "other-a --x 1 --y 2" and cmds[2].alternative_of is cmds[1]
    assert cmds[3].text.startswith("for k in") and cmds[3].text.endswith("done; wait")
    assert cmds[5].flat == "alt-c --z"
    with pytest.raises(ValueError, match="X.md:1"):
        split_commands("X.md", 1, ["run-a \\"])


def test_substitution_rules():
    names = {"ants1": "vot_000"}
    cmd = Command("X.md", 1, "for k in 0 1 2 3; do\n  CUDA_VISIBLE_DEVICES=$k python ../../tools/hp_search_epoch.py "
                             "--start-epoch 11 --end-epoch 20 --lr 0.3,0.8,0.1 --dataset-root /data/VOT2018 "
                             "--device cuda:1 &\ndone; wait")
    text = substitute(cmd, "/tmp/d", names)
    assert "for k in 0 1;" in text and "--start-epoch 2 --end-epoch 2" in text and "--lr 0.3,0.4,0.1" in text
    assert "--dataset-root /tmp/d/VOT2018" in text and "--device cpu" in text
    assert '& _pids+=("$!")' in text and 'wait "$_p" || _bad=1' in text
    # a failed background job fails the command (bash's bare `wait` would return 0)
    job = substitute(Command("X.md", 1, "for k in 0 1; do\n  (exit $k) &\ndone; wait"), "/d", {})
    assert subprocess.run(["bash", "-e", "-c", job]).returncode != 0
    job = substitute(Command("X.md", 1, "for k in 0 0; do\n  (exit $k) &\ndone; wait"), "/d", {})
    assert subprocess.run(["bash", "-e", "-c", job]).returncode == 0
    train = substitute(Command("X.md", 1, "siamkpn-train --config c.yaml --opts TRAIN.BATCH_SIZE 8"), "/d", names)
    assert train.startswith("siamkpn-train --config c.yaml --opts TRAIN.BATCH_SIZE 8 TRAIN.EPOCH 2 ")
    assert substitute(Command("X.md", 1, "torchrun --nproc_per_node=4 ../../tools/train.py --cfg c.yaml"),
                      "/d", {}).startswith("torchrun --nproc_per_node=1 ../../tools/train.py --cfg c.yaml --opts ")
    test = substitute(Command("X.md", 1, "python t.py --dataset-root /data/VOT2018 [--video ants1] [--vis]"),
                      "/d", names)
    assert test == "python t.py --dataset-root /d/VOT2018 --video vot_000 --vis"
    kept = substitute(Command("X.md", 1, "demo --init 100,80,60,40 --src /database/x /data"), "/d", names)
    assert kept == "demo --init 100,80,60,40 --src /database/x /d"


def test_json_outputs_must_be_strict(tmp_path):
    (tmp_path / "ok.json").write_text('{"t": {"eao": null, "accuracy": 0.5}}')
    (tmp_path / "nan.json").write_text('{"t": {"eao": NaN}}')
    assert _check_json("siamkpn-eval --json ok.json", tmp_path) is None
    assert "bare NaN" in _check_json("siamkpn-eval --dataset X --json nan.json", tmp_path)
    assert "not strict JSON" in _check_json("siamkpn-eval --json missing.json", tmp_path)
    assert _check_json("siamkpn-eval --dataset X", tmp_path) is None


# ---------------------------------------------------------------- the sandbox the docs run in


def _load_prepare_fakes():
    """The official-download generators of tests/datasets/test_prepare.py (one source of truth)."""
    spec = util.spec_from_file_location("_prepare_fakes", REPO / "tests" / "datasets" / "test_prepare.py")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config_text(published: Path) -> str:
    """The published yaml with the model shrunk to the quick-start model (see the module docstring)."""
    from siamkpn.config import load_cfg

    cfg = load_cfg(str(published))
    quick = load_cfg(str(REPO / "experiments" / "siamkpn_quickstart" / "config.yaml"))
    cfg.BACKBONE = quick.BACKBONE.clone()
    cfg.ADJUST.KWARGS.in_channels = list(quick.ADJUST.KWARGS.in_channels)
    cfg.ADJUST.KWARGS.out_channels = [16] * len(quick.ADJUST.KWARGS.out_channels)
    cfg.KPN.KWARGS.in_channels = [16] * len(quick.KPN.KWARGS.in_channels)
    cfg.TRAIN.SEARCH_SIZE = cfg.TRACK.INSTANCE_SIZE = quick.TRAIN.SEARCH_SIZE
    cfg.TRAIN.OUTPUT_SIZE = quick.TRAIN.OUTPUT_SIZE
    cfg.META_ARC = load_cfg().META_ARC  # compatibility-only key: its published value would only warn here
    return cfg.dump()


def build_tree(root: Path) -> None:
    """The repository's runnable surface: tool shims, script shims, the experiment configs (published ones tiny)."""
    shutil.copytree(REPO / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "scripts").mkdir()
    for shim in ("make_synthetic.py", "prepare_dataset.py"):
        shutil.copy(REPO / "scripts" / shim, root / "scripts" / shim)
    quick = root / "experiments" / "siamkpn_quickstart"
    quick.mkdir(parents=True)
    shutil.copy(REPO / "experiments" / "siamkpn_quickstart" / "config.yaml", quick / "config.yaml")
    for name in PUBLISHED:
        (root / "experiments" / name).mkdir()
        (root / "experiments" / name / "config.yaml").write_text(
            tiny_config_text(REPO / "experiments" / name / "config.yaml"))


def _got10k_test_split(data: Path, otb: Path) -> None:
    """One GOT-10k test sequence (official layout: first-frame box only) from a synthetic OTB video's frames."""
    video = next(p for p in sorted(otb.iterdir()) if (p / "img").is_dir())
    seq = data / "GOT-10k" / "test" / "GOT-10k_Test_000001"
    seq.mkdir(parents=True)
    for i, frame in enumerate(sorted((video / "img").iterdir()), 1):
        shutil.copy(frame, seq / f"{i:08d}.jpg")
    (seq / "groundtruth.txt").write_text((video / "groundtruth_rect.txt").read_text().splitlines()[0] + "\n")
    (data / "GOT-10k" / "test" / "list.txt").write_text("GOT-10k_Test_000001\n")


def build_data(data: Path) -> Dict[str, str]:
    """The tiny /data (see the module docstring); returns EXAMPLE_NAMES (documented name -> tiny name)."""
    from siamkpn.datasets.synthetic import SceneConfig
    from siamkpn.datasets.synthetic_sets import write_otb_set, write_vot_set

    fakes = _load_prepare_fakes()
    fakes.fake_got10k(str(data / "GOT-10k"))
    fakes.fake_lasot(str(data / "LaSOT"))
    fakes.fake_coco(str(data / "coco"))
    fakes.fake_ytbb(str(data / "yt_bb"))
    fakes.fake_vid(str(data))  # writes data/ILSVRC2015/{Annotations,Data}/VID
    fakes.fake_det(str(data))  # and .../DET beside it
    scene = SceneConfig(width=96, height=72)
    write_otb_set(str(data / "OTB100"), num_videos=1, num_frames=12, scene=scene, progress=False)
    write_vot_set(str(data / "VOT2018"), num_videos=1, num_frames=100, scene=scene, progress=False)
    _got10k_test_split(data, data / "OTB100")
    vot_video = (data / "VOT2018" / "list.txt").read_text().split()[0]
    return {"ants1": vot_video}


def ensure_snapshot(text: str, cwd: Path) -> None:
    """A `--snapshot` no earlier command wrote: random weights of the command's own config, where it looks."""
    snapshot, config = option(text, "--snapshot"), option(text, "--config", "--cfg")
    if not snapshot or not config or (cwd / snapshot).exists() or not (cwd / config).is_file():
        return  # nothing to make, or the command itself will report what it lacks
    import torch

    from siamkpn.config import load_cfg
    from siamkpn.models.model_builder import ModelBuilder

    torch.manual_seed(0)
    model = ModelBuilder(load_cfg(str(cwd / config)))
    torch.save({"state_dict": model.state_dict()}, cwd / snapshot)


def ensure_pack_results(text: str, cwd: Path, run: Callable[[str, Path], bool]) -> None:
    """Results `siamkpn-pack` reads that no earlier command wrote: `siamkpn-test` of `<tracker>.pth` writes them."""
    if "siamkpn-pack" not in text and "pack_results.py" not in text:
        return
    dataset, root = option(text, "--dataset"), option(text, "--dataset-root", "--dataset_root")
    tracker_path = option(text, "--tracker-path", "--tracker_path") or "results"
    tracker = option(text, "--tracker")
    if (cwd / tracker_path / dataset / tracker).is_dir():
        return
    make = (f"siamkpn-test --config {EXPERIMENT}/config.yaml --snapshot {tracker}.pth --dataset {dataset} "
            f"--dataset-root {root} --results-dir {tracker_path} --no-progress")
    ensure_snapshot(make, cwd)
    run(make, cwd)


# ---------------------------------------------------------------- running


class Runner:
    """Runs substituted commands in the sandbox and records every failure."""

    def __init__(self, tree: Path, bin_dir: Path) -> None:
        self.tree = tree
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "VIRTUAL_ENV", "SIAMKPN_DATA", "SIAMKPN_DATASETS", "SIAMKPN_DEBUG")}
        self.env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
        self.env["MPLBACKEND"] = "Agg"
        # one torch/OpenMP thread per process (what torchrun sets): two threads of each of two parallel workers
        # on a shared 2-core machine spin on OpenMP barriers, a train step went from 0.7 s to 10 s
        self.env["OMP_NUM_THREADS"] = "1"
        self.failures: List[str] = []
        self.timings: List[str] = []

    def run(self, text: str, cwd: Path, command: Optional[Command] = None) -> bool:
        """Run one command line with bash -e in `cwd`; False (and a recorded failure) unless it exits 0."""
        start = time.monotonic()
        label = command.where if command else "(setup)"
        # a session of its own, so a timeout ends the whole group (torchrun's workers, background search workers)
        proc = subprocess.Popen(["bash", "-e", "-c", text], cwd=cwd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code, err = "timeout", f"timed out after {TIMEOUT_S} s\n{err}"
        seconds = time.monotonic() - start
        self.timings.append(f"{seconds:6.1f} s  {label}  {(command.text if command else text).splitlines()[0][:90]}")
        if code == 0:
            problem = _check_json(text, cwd)
            if not problem:
                return True
            code, err = "0 but", problem + "\n" + err
        written = command.text if command else text
        self.failures.append(f"{label}: exit {code} in {cwd.relative_to(self.tree.parent)}\n  as written: {written}\n"
                             f"  as run:     {text}\n--- stdout (tail)\n{_tail(out)}\n--- stderr (tail)\n{_tail(err)}")
        return False


def _check_json(text: str, cwd: Path) -> Optional[str]:
    """A `--json FILE` the command wrote must be strict JSON (README, Evaluation: never a bare NaN)."""
    path = option(text, "--json")
    if not path:
        return None

    def bare(token):
        raise ValueError(f"bare {token}")

    try:
        json.loads((cwd / path).read_text(), parse_constant=bare)
    except (OSError, ValueError) as err:
        return f"--json {path}: not strict JSON: {err}"
    return None


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_docs(tree: Path, data: Path, names: Dict[str, str], runner: Runner) -> int:
    """Every block in document order; returns how many commands ran."""
    ran = 0
    for block in doc_blocks():
        cwd = tree
        for command in block:
            if not_run_reason(command):
                extra = stand_in(command)
                if extra:
                    runner.run(extra, cwd, command)
                continue
            text = substitute(command, str(data), names)
            ran += 1
            words = text.split()
            if len(words) == 2 and words[0] == "cd":
                target = (cwd / words[1]).resolve()
                if not target.is_dir():
                    runner.failures.append(f"{command.where}: cd {words[1]}: no such folder under "
                                           f"{cwd.relative_to(tree.parent)}")
                    break
                cwd = target
                continue
            ensure_snapshot(text, cwd)
            ensure_pack_results(text, cwd, runner.run)
            runner.run(text, cwd, command)
    return ran


def check_outputs(tree: Path, data: Path) -> List[str]:
    """The files the docs say the commands write, and what the docs say about them; returns the problems."""
    exp = tree / EXPERIMENT
    problems = []

    def need(path: Path, why: str) -> bool:
        if not path.exists():
            problems.append(f"missing {path.relative_to(tree.parent)}: {why}")
            return False
        return True

    for name in ("got10k", "lasot", "coco", "yt_bb/crop", "vid", "det"):
        need(data / "training_dataset" / name / "crop511", "siamkpn-prepare writes crop511/ (Data preparation)")
    for part in ("train/train.json", "test/OTB100", "test/VOT2018"):
        need(tree / "synthetic" / part, "siamkpn-synthetic --out synthetic writes it")
    for folder in (exp, tree):  # the published run (experiment folder) and the synthetic one (repository root)
        need(folder / "snapshot" / f"checkpoint_e{TRAIN_EPOCHS}.pth", "a snapshot after every epoch (Training)")
        need(folder / "logs" / "train.log", "Logs: logs/train.log (Training)")
    for dataset, tracker in (("VOT2018", "siamkpn-3s_vot"), ("OTB100", "siamkpn-3s_otb")):
        need(exp / "results" / dataset / tracker / "provenance.json",
             "results/<dataset>/<snapshot name>/ with provenance.json (Testing)")
    if need(exp / "scores.json", "--json scores.json (Evaluation)"):  # strict JSON: checked after each command
        scores = json.loads((exp / "scores.json").read_text())
        if "siamkpn-3s_otb" not in scores:
            problems.append(f"scores.json has no siamkpn-3s_otb: {sorted(scores)}")
    if need(exp / "plots", "--plot plots/ (Evaluation)") and not any((exp / "plots").rglob("*.png")):
        problems.append("plots/ holds no PNG")
    search = exp / "hp_search_result_epoch" / "VOT2018"
    for name in ("hp_search_summary.csv", "hp_search_summary.json", "hp_search.db"):
        need(search / name, "the search's outputs under <results-dir>/<dataset>/ (Hyper-parameter search)")
    need(tree / "out.mp4", "siamkpn-demo --out out.mp4 (Demo)")
    if need(tree / "ws" / "trackers.ini", "siamkpn-vot-integration --out ws/trackers.ini (VOT challenge)"):
        if "[SiamKPN]" not in (tree / "ws" / "trackers.ini").read_text():
            problems.append("ws/trackers.ini has no [SiamKPN] section")
    if need(tree / "siamkpn-3s_got.zip", "siamkpn-pack --out siamkpn-3s_got.zip (Submitting results)"):
        with zipfile.ZipFile(tree / "siamkpn-3s_got.zip") as zf:
            if "GOT-10k_Test_000001/GOT-10k_Test_000001_001.txt" not in zf.namelist():
                problems.append(f"siamkpn-3s_got.zip lacks the GOT-10k layout: {zf.namelist()}")
    return problems


@pytest.mark.slow
def test_documented_commands_run(tmp_path):
    tree, data, bin_dir = tmp_path / "repo", tmp_path / "data", tmp_path / "bin"
    tree.mkdir()
    bin_dir.mkdir()
    # `python` in the docs is this interpreter (a wrapper, not a symlink: a venv is found from the invoked path)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    build_tree(tree)
    names = build_data(data)
    write_clip(tree / "clip.mp4")
    runner = Runner(tree, bin_dir)
    ran = run_docs(tree, data, names, runner)
    print(f"{ran} documented commands run:\n" + "\n".join(runner.timings))
    assert not runner.failures, (f"{len(runner.failures)} documented command(s) failed:\n\n"
                                 + "\n\n".join(runner.failures))
    problems = check_outputs(tree, data)
    assert not problems, "documented outputs missing or wrong:\n" + "\n".join(problems)
