"""The flags every tool shares: one name, one default and one help text each.

Names are hyphenated (``--dataset-root``); pysot's underscore spellings (``--dataset_root``,
``--tracker_path``, ...) are accepted as hidden aliases of the same destination. Imports no torch
(``siamkpn-eval`` must start without it).
"""
from __future__ import annotations

import argparse
import re
from typing import List, Optional, Sequence

from siamkpn.cli.common import add_debug_flag
from siamkpn.models.backends import BACKENDS

__all__ = ["DEVICE_HELP", "DEVICE_PATTERN", "add_backend", "add_config", "add_dataset", "add_device", "add_fast",
           "add_flag", "add_opts", "add_progress", "add_results_dir", "add_snapshot", "add_standard", "add_threads",
           "add_tracker_path", "config_opts", "make_parser", "parse_device", "parse_devices", "positive_int"]

DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Appends '(default: X)' where a default means something and the help does not already say it."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            return super()._format_action_invocation(action)
        name = action.option_strings[0]  # the canonical spelling; aliases stay accepted but unlisted
        if action.nargs == 0:
            return name
        return f"{name} {self._format_args(action, self._get_default_metavar_for_optional(action))}"

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default in (None, False, "", [], argparse.SUPPRESS) or "default" in text or action.required
                or not action.option_strings):
            return text
        return f"{text} (default: {default})"


def make_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser named after the console script, with --debug, defaults shown in --help, the description's line
    breaks kept."""

    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=_Formatter)
    add_debug_flag(p)
    return p


def add_flag(p: argparse.ArgumentParser, name: str, *aliases: str, **kwargs) -> argparse.Action:
    """``name`` with help; ``aliases`` (pysot spellings) are the same option (same destination, default and
    requiredness) but --help shows only ``name``."""
    return p.add_argument(name, *aliases, **kwargs)


def add_config(p: argparse.ArgumentParser, *aliases: str, required: bool = True, default: Optional[str] = None):
    """``--config``: the experiment yaml (only .yaml/.yml)."""
    return add_flag(p, "--config", *aliases, dest="config", required=required, default=default,
                    help="experiment config (.yaml)")


def add_snapshot(p: argparse.ArgumentParser, help: str = "model weights (.pth)", required: bool = True):
    return add_flag(p, "--snapshot", required=required, help=help)


def add_dataset(p: argparse.ArgumentParser, required: bool = True):
    """``--dataset`` NAME and ``--dataset-root`` DIR (alias ``--dataset_root``)."""
    add_flag(p, "--dataset", "-d", required=required,
             help="benchmark name, e.g. OTB100, VOT2018, GOT-10k, LaSOT, TrackingNet")
    add_flag(p, "--dataset-root", "--dataset_root", dest="dataset_root", default=None,
             help="benchmark folder (default: $SIAMKPN_DATASETS/<dataset>, else ./testing_dataset/<dataset>)")


def add_results_dir(p: argparse.ArgumentParser, default: str = "results"):
    return add_flag(p, "--results-dir", "--results_dir", dest="results_dir", default=default,
                    help="results folder; files go to <results-dir>/<dataset>/<tracker>/")


def add_tracker_path(p: argparse.ArgumentParser):
    """The results folder of pysot's eval.py (``--tracker_path``), hyphenated like every other flag."""
    return add_flag(p, "--tracker-path", "--tracker_path", "-p", dest="tracker_path", default="./results",
                    help="results folder holding <dataset>/<tracker>/")


def parse_device(text: str) -> str:
    """Check a --device value (auto, cpu, cuda, cuda:N)."""
    if not DEVICE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"invalid device {text!r}: use {DEVICE_HELP}")
    return text


def parse_devices(text: str) -> str:
    """Check a --device list: one value or several joined by commas (``cuda:0,cuda:1``), each as parse_device."""
    items = text.split(",")
    for item in items:
        if not DEVICE_PATTERN.match(item):
            raise argparse.ArgumentTypeError(f"invalid device {item!r} in {text!r}: use {DEVICE_HELP}, or a "
                                             "comma-separated list of them (cuda:0,cuda:1)")
    return text


def add_device(p: argparse.ArgumentParser, several: bool = False):
    """``--device``, one help text in every tool; ``several``: a comma-separated list is accepted too (a tool whose
    workers share the devices says so in the help of its --workers)."""
    return add_flag(p, "--device", default="auto", type=parse_devices if several else parse_device, help=DEVICE_HELP)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse names the flag in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_threads(p: argparse.ArgumentParser):
    return add_flag(p, "--threads", type=positive_int, default=None,
                    help="torch CPU threads of this process, or of each worker where the tool has --workers "
                         "(default: torch's choice; with several workers, the cores divided among them)")


def add_fast(p: argparse.ArgumentParser):
    return add_flag(p, "--fast", action="store_true",
                    help="fast mode (TRACK.FAST): the fastest path within the accuracy budget on this machine; "
                         "see README's Performance section")


def add_backend(p: argparse.ArgumentParser, where: str = "given as --snapshot"):
    """``--backend torch|onnx``; ``where`` says where the tool takes the export folder from."""
    return add_flag(p, "--backend", choices=tuple(BACKENDS), default=None,
                    help="inference backend (default: TRACK.BACKEND, torch): torch runs a .pth; onnx runs a "
                         f"siamkpn-export-onnx folder {where}, under ONNX Runtime on the CPU")


def add_progress(p: argparse.ArgumentParser):
    return add_flag(p, "--no-progress", "--no_progress", dest="no_progress", action="store_true",
                    help="no progress bars (for logs and batch jobs)")


def add_opts(p: argparse.ArgumentParser):
    """``--opts KEY VALUE ...`` last on the command line: config overrides."""
    return add_flag(p, "--opts", nargs=argparse.REMAINDER, default=[],
                    help="config overrides as KEY VALUE pairs, e.g. TRACK.LR 0.4 (must come last; default: none)")


def config_opts(args: argparse.Namespace) -> List[str]:
    """``--opts`` with ``--fast`` and ``--backend`` as the config keys they set (TRACK.FAST, TRACK.BACKEND): tools
    read fast mode and the backend from the config only."""
    fast = ["TRACK.FAST", "True"] if getattr(args, "fast", False) else []
    backend = ["TRACK.BACKEND", args.backend] if getattr(args, "backend", None) else []
    return list(getattr(args, "opts", None) or []) + fast + backend


def add_standard(p: argparse.ArgumentParser, flags: Sequence[str]) -> None:
    """Add the shared flags named in ``flags`` (in that order)."""
    table = {"dataset": add_dataset, "results-dir": add_results_dir, "device": add_device, "threads": add_threads,
             "fast": add_fast, "progress": add_progress, "backend": add_backend}
    for name in flags:
        table[name](p)
