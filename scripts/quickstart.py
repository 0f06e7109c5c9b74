"""SiamKPN end to end on a CPU, no download: synthetic data -> training -> tracking -> evaluation -> report.

    python scripts/quickstart.py [--quick | --tiny] [--out quickstart_output]      (make quickstart [QUICK=1])

Stages (each one is the repository's own command line, printed before it runs):
  1. scripts/make_synthetic.py: a synthetic training set and held-out OTB100 / VOT2018-style benchmarks
     (another seed, so no test video is seen in training);
  2. tools/train.py: trains experiments/siamkpn_quickstart/config.yaml from scratch; the untrained model
     (the very weights training starts from) is saved beside the snapshots as the baseline;
  3. tools/test.py: tracks both benchmarks with the trained and the untrained model;
  4. tools/eval.py: success/precision (OTB) and EAO/accuracy/robustness (VOT) tables, json and plots;
  5. side-by-side tables and `report.md` in the output folder.
An interrupted run continues where it stopped when started again with the same settings; other settings
start that output folder afresh. Presets: full (default, ~15 min on 2 cores), --quick (~3 min), --tiny
(a pipeline check for CI: seconds of training, no learning expected).
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from quickstart_report import format_seconds, format_table, learning_verdict, write_report  # noqa: E402

from toolkit.atomic import atomic_write, atomic_write_json  # noqa: E402

DEFAULT_CONFIG = os.path.join("experiments", "siamkpn_quickstart", "config.yaml")
BENCHMARKS = ("OTB100", "VOT2018")
TRACKERS = ("untrained", "trained")  # table columns; the change column is trained minus untrained
SETTINGS_FILE = "quickstart_settings.json"
SIZE_FIELDS = ("train_videos", "train_frames", "test_videos", "otb_frames", "vot_frames", "epochs",
               "videos_per_epoch", "batch_size")
MANAGED = ("data", "snapshots", "logs", "results", "eval", "plots", "report.md", SETTINGS_FILE)


@dataclass(frozen=True)
class Preset:
    """Sizes of one quick-start flavour; `min_auc_gain` None: no learning expected (pipeline check)."""

    train_videos: int
    train_frames: int
    test_videos: int
    otb_frames: int
    vot_frames: int  # VOT2018's EAO averages lengths 100-356: shorter videos leave it undefined
    epochs: int
    videos_per_epoch: int
    batch_size: int
    min_auc_gain: Optional[float]
    budget_min: float


PRESETS = {
    "full": Preset(train_videos=80, train_frames=40, test_videos=6, otb_frames=100, vot_frames=140, epochs=6,
                   videos_per_epoch=480, batch_size=8, min_auc_gain=0.10, budget_min=15),
    "quick": Preset(train_videos=40, train_frames=30, test_videos=3, otb_frames=60, vot_frames=105, epochs=1,
                    videos_per_epoch=560, batch_size=8, min_auc_gain=0.10, budget_min=3),
    "tiny": Preset(train_videos=3, train_frames=8, test_videos=1, otb_frames=12, vot_frames=105, epochs=1,
                   videos_per_epoch=8, batch_size=4, min_auc_gain=None, budget_min=2),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the ~3-minute version")
    size.add_argument("--tiny", action="store_true", help="smallest pipeline check (CI); no learning expected")
    p.add_argument("--out", default="quickstart_output", help="output folder (default ./quickstart_output)")
    p.add_argument("--config", default=os.path.join(REPO, DEFAULT_CONFIG), help="experiment config to train")
    p.add_argument("--seed", type=int, default=0, help="synthetic training-set seed (test sets use seed + 1)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--workers", type=int, default=2, help="processes for the synthetic data")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    for field in SIZE_FIELDS:
        p.add_argument("--" + field.replace("_", "-"), type=int, default=None, help="override the preset")
    return p.parse_args(argv)


def choose_preset(args: argparse.Namespace) -> tuple:
    """(name, Preset) from the flags, with any size overrides applied."""
    name = "tiny" if args.tiny else "quick" if args.quick else "full"
    overrides = {k: getattr(args, k) for k in SIZE_FIELDS if getattr(args, k) is not None}
    for key, value in overrides.items():
        if value < 1:
            raise SystemExit(f"--{key.replace('_', '-')} must be positive, got {value}")
    return name, replace(PRESETS[name], **overrides)


class Runner:
    """Runs the stage commands (echoed, streamed, recorded) and times the stages."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.commands: List[str] = []
        self.timings: Dict[str, float] = {}
        self.resumed: List[str] = []

    def heading(self, index: int, title: str) -> None:
        print(f"\n{'=' * 78}\n[{index}/5] {title}\n{'=' * 78}", flush=True)

    def run(self, cmd: Sequence[str], stage: str, capture: Optional[str] = None) -> str:
        """Run `cmd` from the repository root; stdout goes to the terminal (and to `capture` if given)."""
        shown = " ".join(_quote(c) for c in cmd)
        self.commands.append(shown.replace(sys.executable, "python"))
        print(f"$ {shown}", flush=True)
        proc = subprocess.run(list(cmd), cwd=REPO, stdout=subprocess.PIPE if capture else None, text=True)
        text = proc.stdout or ""
        if capture:
            print(text, end="", flush=True)
            atomic_write(capture, text)
        if proc.returncode != 0:
            raise SystemExit(f"quickstart: stage '{stage}' failed (exit status {proc.returncode}) running:\n  {shown}")
        return text


def _quote(arg: str) -> str:
    """Shell quoting that keeps yaml lists readable: "['SYNTH']" rather than shlex's nested quotes."""
    if "'" in arg and not any(c in arg for c in '"$`\\!'):
        return f'"{arg}"'
    return shlex.quote(arg)


def _config_hash(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def prepare_output(out: str, settings: Dict[str, object]) -> bool:
    """Create or reuse `out`; True when it holds a run with the same settings (to be continued)."""
    path = os.path.join(out, SETTINGS_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if json.load(f) == settings:
                return True
        print(f"{out} holds a quick start with other settings: starting it afresh", flush=True)
        for name in MANAGED:
            target = os.path.join(out, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
    elif os.path.isdir(out) and os.listdir(out):
        raise SystemExit(f"{out} exists and is not a quick-start output folder ({SETTINGS_FILE} missing): "
                         "choose another --out")
    atomic_write_json(path, settings)
    return False


def save_untrained(config: str, opts: Sequence[str], path: str) -> None:
    """The random initial weights of training (same seed as tools/train.py) as {'epoch': 0, 'state_dict'}."""
    import torch

    from siamkpn.config import load_cfg
    from siamkpn.models.checkpoint import save_checkpoint
    from siamkpn.models.model_builder import ModelBuilder

    cfg = load_cfg(config, opts)
    torch.manual_seed(cfg.TRAIN.SEED)  # tools/train.py seeds torch with TRAIN.SEED right before ModelBuilder
    model = ModelBuilder(cfg)
    save_checkpoint({"epoch": 0, "state_dict": model.state_dict()}, path)


@dataclass
class QuickStart:
    """One quick-start run: its flags, sizes, output folders, and the runner of its stage commands."""

    args: argparse.Namespace
    preset_name: str
    preset: Preset
    out: str
    config: str
    settings: Dict[str, object]
    runner: Runner
    start: float

    @property
    def data(self) -> str:
        return os.path.join(self.out, "data")

    @property
    def snapshots(self) -> str:
        return os.path.join(self.out, "snapshots")

    @property
    def quiet(self) -> List[str]:
        return ["--no-progress"] if self.args.no_progress else []


def setup(argv=None) -> QuickStart:
    """Flags, preset and output folder (continued when it holds a run with the same settings)."""
    args = parse_args(argv)
    preset_name, preset = choose_preset(args)
    out = os.path.abspath(args.out)
    config = os.path.abspath(args.config)
    if not os.path.isfile(config):
        raise SystemExit(f"config file not found: {config}")
    settings = {"preset": preset_name, **asdict(preset), "seed": args.seed, "config": config,
                "config_sha256": _config_hash(config), "device": args.device}
    resuming = prepare_output(out, settings)
    qs = QuickStart(args, preset_name, preset, out, config, settings, Runner(out), time.time())
    print(f"SiamKPN quick start ({preset_name}{', continuing' if resuming else ''}): output in {out}", flush=True)
    return qs


def stage_data(qs: QuickStart) -> None:
    """1. The synthetic training set and the held-out OTB100 / VOT2018-style benchmarks (another seed)."""
    runner, preset, args, py = qs.runner, qs.preset, qs.args, sys.executable
    runner.heading(1, "Synthetic data: training set and held-out OTB100 / VOT2018-style benchmarks")
    t0 = time.time()
    if os.path.isfile(os.path.join(qs.data, "train", "train.json")):
        runner.resumed.append("data (train)")
    else:
        runner.run([py, "scripts/make_synthetic.py", "--out", qs.data, "--seed", str(args.seed), "--parts", "train",
                    "--train-videos", str(preset.train_videos), "--train-frames", str(preset.train_frames),
                    "--workers", str(args.workers)], "data")
    for bench, part, frames in (("OTB100", "otb", preset.otb_frames), ("VOT2018", "vot", preset.vot_frames)):
        if os.path.isfile(os.path.join(qs.data, "test", bench, bench + ".json")):
            runner.resumed.append(f"data ({bench})")
            continue
        runner.run([py, "scripts/make_synthetic.py", "--out", qs.data, "--seed", str(args.seed + 1), "--parts", part,
                    "--test-videos", str(preset.test_videos), "--test-frames", str(frames),
                    "--workers", str(args.workers)], "data")
    runner.timings["1. synthetic data"] = time.time() - t0


def stage_train(qs: QuickStart) -> Tuple[str, str]:
    """2. The untrained baseline (training's initial weights), then training; returns both snapshot paths."""
    runner, preset = qs.runner, qs.preset
    runner.heading(2, f"Training {os.path.relpath(qs.config, REPO)} from scratch ({preset.epochs} epochs of "
                      f"{preset.videos_per_epoch} pairs, batch {preset.batch_size})")
    t0 = time.time()
    opts = ["DATASET.NAMES", "['SYNTH']", "TRAIN.EPOCH", str(preset.epochs), "DATASET.VIDEOS_PER_EPOCH",
            str(preset.videos_per_epoch), "TRAIN.BATCH_SIZE", str(preset.batch_size)]
    untrained = os.path.join(qs.snapshots, "untrained.pth")
    trained = os.path.join(qs.snapshots, f"checkpoint_e{preset.epochs}.pth")
    os.makedirs(qs.snapshots, exist_ok=True)
    if not os.path.isfile(untrained):
        save_untrained(qs.config, opts, untrained)
    print(f"untrained baseline (the initial weights of training): {untrained}", flush=True)
    if os.path.isfile(trained):
        runner.resumed.append("training")
    else:
        runner.run([sys.executable, "tools/train.py", "--cfg", qs.config, "--data-root",
                    os.path.join(qs.data, "train"), "--device", qs.args.device, "--resume", "auto", *qs.quiet,
                    "--opts", *opts, "TRAIN.SNAPSHOT_DIR", qs.snapshots, "TRAIN.LOG_DIR",
                    os.path.join(qs.out, "logs")], "training")
    if not os.path.isfile(trained):
        raise SystemExit(f"quickstart: training finished without writing {trained}")
    runner.timings["2. training"] = time.time() - t0
    return untrained, trained


def stage_test(qs: QuickStart, untrained: str, trained: str) -> None:
    """3. Both benchmarks tracked with the untrained and the trained model."""
    qs.runner.heading(3, "Tracking both benchmarks with the untrained and the trained model")
    t0 = time.time()
    results = os.path.join(qs.out, "results")
    for bench in BENCHMARKS:
        for name, snap in zip(TRACKERS, (untrained, trained)):
            qs.runner.run([sys.executable, "tools/test.py", "--config", qs.config, "--snapshot", snap, "--dataset",
                           bench, "--dataset-root", os.path.join(qs.data, "test", bench), "--results-dir", results,
                           "--tracker-name", name, "--device", qs.args.device], f"tracking {bench} ({name})")
    qs.runner.timings["3. tracking"] = time.time() - t0


def stage_eval(qs: QuickStart) -> Tuple[Dict[str, dict], List[str]]:
    """4. pysot's metrics per benchmark (json tables and plots); returns the metrics and the plot files."""
    qs.runner.heading(4, "Evaluation (pysot's metrics), json tables and plots")
    t0 = time.time()
    metrics, plots = {}, []
    results = os.path.join(qs.out, "results")
    for bench in BENCHMARKS:
        json_path = os.path.join(qs.out, "eval", bench + ".json")
        os.makedirs(os.path.dirname(json_path), exist_ok=True)
        qs.runner.run([sys.executable, "tools/eval.py", "--tracker_path", results, "--dataset", bench,
                       "--dataset-root", os.path.join(qs.data, "test", bench), "--json", json_path, "--plot",
                       os.path.join(qs.out, "plots", bench), *qs.quiet], f"evaluation {bench}",
                      capture=os.path.join(qs.out, "eval", bench + ".txt"))
        with open(json_path, encoding="utf-8") as f:
            metrics[bench] = json.load(f)
        plots += sorted(glob.glob(os.path.join(qs.out, "plots", bench, "**", "*.png"), recursive=True))
    qs.runner.timings["4. evaluation"] = time.time() - t0
    return metrics, plots


def stage_report(qs: QuickStart, metrics: Dict[str, dict], plots: List[str]) -> int:
    """5. Side-by-side tables, the verdict and report.md; 3 when the model did not learn enough, else 0."""
    preset, runner = qs.preset, qs.runner
    runner.heading(5, "Report: untrained vs trained on the held-out synthetic benchmarks")
    frames = {"OTB100": preset.otb_frames, "VOT2018": preset.vot_frames}
    tables = {f"{bench} (synthetic, {preset.test_videos} videos x {frames[bench]} frames)":
              (metrics[bench], TRACKERS) for bench in BENCHMARKS}
    for title, (values, trackers) in tables.items():
        print(format_table(title, values, trackers) + "\n")
    if preset.min_auc_gain is None:
        passed, verdict = True, ("Pipeline check (--tiny): every stage ran; the training is far too short to "
                                 "learn, so no gain is expected.")
    else:
        passed, verdict = learning_verdict(metrics["OTB100"], metrics["VOT2018"], "untrained", "trained",
                                           preset.min_auc_gain)
    elapsed = time.time() - qs.start
    notes = [f"Preset '{qs.preset_name}', budget about {preset.budget_min:g} min on 2 CPU cores; this run took "
             f"{format_seconds(elapsed)}."]
    if runner.resumed:
        notes.append("Continued an earlier run; reused without rerunning: " + ", ".join(runner.resumed) + ".")
    notes.append("The untrained model is the exact initial state of training (same seed), tracked the same way.")
    report = write_report(os.path.join(qs.out, "report.md"), settings=qs.settings, commands=runner.commands,
                          timings=runner.timings, tables=tables, plots=plots, verdict=verdict, notes=notes,
                          embed=("success_plot_ALL.png", "precision_plot_ALL.png", "eao_rank.png"))
    print(verdict)
    print(f"\nTotal time {format_seconds(elapsed)}. Report: {report}\nPlots:  {os.path.join(qs.out, 'plots')}\n"
          f"Output: {qs.out}", flush=True)
    if not passed:
        print("quickstart: the trained model did not beat the untrained one by the expected margin; see the "
              f"training log in {os.path.join(qs.out, 'logs')}", file=sys.stderr)
        return 3
    return 0


def main(argv=None) -> int:
    """The five stages in order; each one reuses what an interrupted run with the same settings left."""
    qs = setup(argv)
    stage_data(qs)
    untrained, trained = stage_train(qs)
    stage_test(qs, untrained, trained)
    metrics, plots = stage_eval(qs)
    return stage_report(qs, metrics, plots)


if __name__ == "__main__":
    sys.exit(main())
