"""Register SiamKPN with the official VOT toolkit: write its section of a workspace's trackers.ini.

    python tools/vot_integration.py --config config.yaml --snapshot model.pth --out WORKSPACE/trackers.ini
        [--name SiamKPN] [--device cpu|cuda] [--backend torch|onnx] [--threads N] [--fast] [--timeout S]

The section ``[NAME]`` is written, or replaced if present (other sections and comments are kept), with
absolute paths, ``protocol = traxpython``, ``command = siamkpn.cli.vot_trax``, ``python =`` this interpreter and
the ``env_SIAMKPN_*`` settings that ``python -m siamkpn.cli.vot_trax`` reads. The snapshot is checked by the backend
(``--backend`` or the config's TRACK.BACKEND) as every tool checks it; an ONNX export folder is loaded once here
with the config, so a folder that the tracker process could not run is an error now, not inside the toolkit.
See docs/VOT.md.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from typing import Optional, Sequence

from siamkpn.cli.args import add_config, add_flag, add_snapshot, add_standard, config_opts, make_parser
from siamkpn.cli.common import UsageError, run_tool
from siamkpn.config import load_cfg
from toolkit.atomic import atomic_write

__all__ = ["tracker_section", "replace_section", "main"]

# the VOT toolkit's own rule for tracker identifiers (vot.tracker.VALID_IDENTIFIER)
_IDENTIFIER = re.compile(r"^[a-zA-Z0-9_-]+$")
_HEADER = re.compile(r"^\s*\[([^\]]*)\]\s*$")
DEFAULT_TIMEOUT = 120  # seconds per TraX call: the first initialize loads torch and the model (docs/VOT.md)


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("siamkpn-vot-integration", "Write SiamKPN's section of a VOT toolkit workspace's trackers.ini")
    add_config(p)
    add_snapshot(p)
    add_flag(p, "--out", required=True, help="the workspace's trackers.ini (its folder must exist)")
    add_flag(p, "--name", default="SiamKPN", help="tracker identifier in the toolkit")
    add_standard(p, ["device", "backend", "threads", "fast"])
    add_flag(p, "--timeout", type=int, default=DEFAULT_TIMEOUT,
             help=f"seconds the toolkit waits for one reply (default {DEFAULT_TIMEOUT}: model load on a CPU)")
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.device == "auto":  # the tracker process decides (CUDA when available)
        args.device = None
    return args


def _ini_value(value: str, key: str) -> str:
    if "\n" in value or "\r" in value:
        raise UsageError(f"{key}: a trackers.ini value cannot hold a line break: {value!r}")
    return value.replace("%", "%%")  # the toolkit reads trackers.ini with configparser's % interpolation


def tracker_section(name: str, config: str, snapshot: str, python: str, package_root: str,
                    device: Optional[str] = None, threads: Optional[int] = None, fast: bool = False,
                    timeout: int = DEFAULT_TIMEOUT, backend: Optional[str] = None) -> str:
    """The ``[name]`` section (header and keys, ending in a newline) for ``python -m siamkpn.cli.vot_trax``."""
    if not _IDENTIFIER.match(name):
        raise UsageError(f"--name {name!r}: the VOT toolkit allows letters, digits, '-' and '_' only")
    keys = [("label", name), ("protocol", "traxpython"), ("command", "siamkpn.cli.vot_trax"), ("python", python),
            ("paths", package_root), ("timeout", str(timeout)),
            ("env_SIAMKPN_CONFIG", config), ("env_SIAMKPN_SNAPSHOT", snapshot)]
    if device:
        keys.append(("env_SIAMKPN_DEVICE", device))
    if threads:
        keys.append(("env_SIAMKPN_THREADS", str(threads)))
    keys.append(("env_SIAMKPN_FAST", "1" if fast else "0"))
    if backend:  # else the tracker process takes the config's TRACK.BACKEND
        keys.append(("env_SIAMKPN_BACKEND", backend))
    return f"[{name}]\n" + "".join(f"{k} = {_ini_value(v, k)}\n" for k, v in keys)


def replace_section(text: str, name: str, section: str) -> str:
    """``text`` (an ini file) with section ``name`` replaced by ``section``, or ``section`` appended."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, s in enumerate(lines) if (m := _HEADER.match(s)) and m.group(1).strip() == name), None)
    if start is None:
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + section
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    tail = lines[end:]
    # keep one blank line before the next section, as a person would have written it
    return "".join(lines[:start]) + section + ("\n" if tail else "") + "".join(tail)


def _check_snapshot(cfg, snapshot: str, device: Optional[str]) -> None:
    """The snapshot is what the config's backend runs, on `device`, with `cfg` (without reading a .pth's weights)."""
    from siamkpn.models.backends import backend_for

    backend = backend_for(cfg)
    backend.check(snapshot, device or "auto")
    backend.check_config(cfg, snapshot)


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.timeout < 1:
        raise UsageError(f"--timeout {args.timeout}: must be at least 1 second")
    config, snapshot, out = (os.path.abspath(p) for p in (args.config, args.snapshot, args.out))
    cfg = load_cfg(config, config_opts(args))  # a bad config fails here, naming the key and file, not in the toolkit
    _check_snapshot(cfg, snapshot, args.device)
    if not os.path.isdir(os.path.dirname(out)):
        raise FileNotFoundError(f"workspace folder not found: {os.path.dirname(out)} (run `vot initialize` there)")
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    section = tracker_section(args.name, config, snapshot, sys.executable, package_root, args.device, args.threads,
                              args.fast, args.timeout, args.backend)
    text = ""
    if os.path.exists(out):
        with open(out, encoding="utf-8") as f:
            text = f.read()
    atomic_write(out, replace_section(text, args.name, section))
    command = shlex.join(["vot", "evaluate", "--workspace", os.path.dirname(out), args.name])  # pastes into a shell
    print(f"wrote [{args.name}] to {out}: `{command}`")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``siamkpn-vot-integration`` / ``python tools/vot_integration.py`` under the common error policy."""
    return run_tool(_main, argv, "siamkpn-vot-integration")


if __name__ == "__main__":
    sys.exit(main())
