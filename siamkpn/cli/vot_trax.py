"""TraX server for the official VOT toolkit: ``python -m siamkpn.cli.vot_trax`` (trackers.ini
``protocol = traxpython``).

Settings come from environment variables, which ``siamkpn-vot-integration`` writes into trackers.ini as
``env_*`` keys: ``SIAMKPN_CONFIG`` and ``SIAMKPN_SNAPSHOT`` (required), ``SIAMKPN_DEVICE`` (auto, cpu, cuda or
cuda:N; default auto, as tools/test.py: cuda when available, the CPU for onnx), ``SIAMKPN_THREADS`` (torch
threads), ``SIAMKPN_FAST`` (1: ``TRACK.FAST``), ``SIAMKPN_BACKEND`` (torch or onnx; default the config's
``TRACK.BACKEND``: with onnx, ``SIAMKPN_SNAPSHOT`` is the folder siamkpn-export-onnx wrote, run by ONNX Runtime on
the CPU). The snapshot and device are checked by the backend (``siamkpn.models.backends``) as every tool checks
them; the tracker is built once per process with ``siamkpn.load_tracker`` (the tracker tools/test.py runs) and
re-initialised for every TraX ``initialize``.

Regions: a polygon (the TraX client turns a mask into a polygon for a box tracker) becomes the init box exactly
as tools/test.py's VOT protocol computes it, a rectangle (VOT-LT ground truth) as its long-term protocol does
(both ``toolkit.boxes.init_box_from_gt``). Each frame is answered with a rectangle and the tracker's
``best_score`` as the ``confidence`` property (read by long-term analyses).

The hello goes out before torch and the model load, so the toolkit's handshake never waits for them; the
first ``initialize`` does (set ``timeout`` in trackers.ini, see docs/VOT.md). Like the other command lines, this
entry point uses ``toolkit`` (boxes, frame reader). Nothing is printed on stdout: in the toolkit's default mode it
carries the protocol.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from siamkpn.cli.args import DEVICE_PATTERN
from siamkpn.cli.common import UsageError, run_tool
from toolkit.boxes import init_box_from_gt
from toolkit.errors import BadValue

__all__ = ["ENV_VARS", "TraxSettings", "settings_from_env", "init_box_from_region", "TraxTrackerSession", "main"]

ENV_VARS = ("SIAMKPN_CONFIG", "SIAMKPN_SNAPSHOT", "SIAMKPN_DEVICE", "SIAMKPN_THREADS", "SIAMKPN_FAST",
            "SIAMKPN_BACKEND")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_INSTALL_HINT = "pip install 'siamkpn[vot]' (PyPI package vot-trax) into the interpreter trackers.ini names"
_BY_HAND = ("python -m siamkpn.cli.vot_trax is the TraX server that the VOT toolkit starts (from the trackers.ini that "
            "siamkpn-vot-integration writes) and talks to over stdin/stdout; {why}. To try it by hand, run `vot test "
            "--workspace WORKSPACE NAME` in the toolkit's environment (docs/VOT.md, section 2)")


@dataclass(frozen=True)
class TraxSettings:
    """What the server needs to build its tracker, read from the environment."""

    config: str
    snapshot: str
    device: str = "auto"
    threads: Optional[int] = None
    fast: bool = False
    backend: str = "torch"


def settings_from_env(environ: Mapping[str, str]) -> TraxSettings:
    """Read and check the ``SIAMKPN_*`` variables; a bad one raises UsageError naming it."""
    paths = {}
    for key in ("SIAMKPN_CONFIG", "SIAMKPN_SNAPSHOT"):
        value = environ.get(key, "")
        if not value:
            raise UsageError(f"{key} is not set (trackers.ini: env_{key} = /absolute/path)")
        if not os.path.exists(value):
            raise UsageError(f"{key}={value}: not found")
        paths[key] = value
    if not os.path.isfile(paths["SIAMKPN_CONFIG"]):
        raise UsageError(f"SIAMKPN_CONFIG={paths['SIAMKPN_CONFIG']}: not a file")
    backend = _backend(environ.get("SIAMKPN_BACKEND", ""), paths["SIAMKPN_CONFIG"])
    device = environ.get("SIAMKPN_DEVICE", "") or "auto"
    if not DEVICE_PATTERN.match(device):
        raise UsageError(f"SIAMKPN_DEVICE={device}: expected auto, cpu, cuda or cuda:N")
    _check_snapshot(paths["SIAMKPN_SNAPSHOT"], backend, device)
    threads_text = environ.get("SIAMKPN_THREADS", "")
    threads = None
    if threads_text:
        if not threads_text.isdigit() or int(threads_text) < 1:
            raise UsageError(f"SIAMKPN_THREADS={threads_text}: expected a positive integer")
        threads = int(threads_text)
    fast_text = environ.get("SIAMKPN_FAST", "").strip().lower()
    if fast_text not in _TRUE + _FALSE:
        raise UsageError(f"SIAMKPN_FAST={fast_text}: expected 1 or 0")
    return TraxSettings(paths["SIAMKPN_CONFIG"], paths["SIAMKPN_SNAPSHOT"], device, threads, fast_text in _TRUE,
                        backend)


def _backend(text: str, config: str) -> str:
    """SIAMKPN_BACKEND checked, or the config's TRACK.BACKEND when it is unset (no torch import: before the hello)."""
    from siamkpn.config import load_cfg
    from siamkpn.models.backends import BACKENDS

    value = text.strip().lower()
    if value:
        if value not in BACKENDS:
            raise UsageError(f"SIAMKPN_BACKEND={text}: expected {' or '.join(BACKENDS)}")
        return value
    value = str(load_cfg(config).TRACK.BACKEND)
    if value not in BACKENDS:
        raise UsageError(f"{config}: TRACK.BACKEND {value!r} is not a backend (expected {' or '.join(BACKENDS)}); "
                         "fix it or set SIAMKPN_BACKEND")
    return value


def _check_snapshot(snapshot: str, backend: str, device: str) -> None:
    """The backend's check of the snapshot and device, its refusals worded with the variables that set them."""
    from siamkpn.models.backends import BACKENDS, DeviceError, SnapshotKindError

    try:
        BACKENDS[backend].check(snapshot, device)
    except SnapshotKindError as err:
        found = "folder" if os.path.isdir(snapshot) else "file"
        raise UsageError(f"SIAMKPN_SNAPSHOT={snapshot} is a {found}, but backend {backend} runs "
                         f"{BACKENDS[backend].snapshot_kind} (set SIAMKPN_BACKEND={err.other} for "
                         f"{BACKENDS[err.other].snapshot_kind})") from None
    except DeviceError as err:
        raise UsageError(f"SIAMKPN_DEVICE={err.device}: {err.reason}; set SIAMKPN_DEVICE=cpu or leave it "
                         "unset") from None


def init_box_from_region(values: Sequence[float]) -> list[float]:
    """Init box ``[x, y, w, h]`` of a TraX region: 4 rectangle values or 2N polygon coordinates.

    As tools/test.py initialises: a 4-point polygon by its VOT rule, a rectangle by its rule for a 4-value ground
    truth (one-pass and long-term protocols, where rectangles come from: VOT-LT); any other polygon (a converted
    mask outline) by the 4 corners of its bounds.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        raise BadValue(f"initialisation region has non-finite values: {v.tolist()}")
    if v.size == 4:
        if v[2] <= 0 or v[3] <= 0:
            raise BadValue(f"initialisation region is empty: {v.tolist()}")
        # not via the polygon of the reset protocol: that would start 0.5 px away from test.py's long-term run
        return init_box_from_gt(v)
    elif v.size == 8:
        poly = v
    elif v.size >= 6 and v.size % 2 == 0:
        x1, x2, y1, y2 = v[0::2].min(), v[0::2].max(), v[1::2].min(), v[1::2].max()
        poly = np.array([x1, y1, x2, y1, x2, y2, x1, y2])
    else:
        raise BadValue(f"initialisation region needs 4 rectangle values or a polygon, got {v.size} values")
    xs, ys = poly[0::2], poly[1::2]
    if xs.max() - xs.min() <= 0 or ys.max() - ys.min() <= 0:
        raise BadValue(f"initialisation region is empty: {v.tolist()}")
    return init_box_from_gt(poly)


class TraxTrackerSession:
    """Answers TraX requests with one tracker: ``initialize(img, region) -> box``, ``frame(img) -> (box, score)``."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker

    def initialize(self, img: np.ndarray, region: Sequence[float]) -> list[float]:
        """Initialise on ``img`` at ``region``; returns the init box (reported for the init frame)."""
        box = init_box_from_region(region)
        self.tracker.init(img, box)
        return box

    def frame(self, img: np.ndarray) -> tuple[list[float], float]:
        """Track one frame: the box ``[x, y, w, h]`` and the tracker's confidence (best score)."""
        out = self.tracker.track(img)
        return [float(v) for v in out["bbox"]], float(out.get("best_score", float("nan")))


def build_session(settings: TraxSettings) -> TraxTrackerSession:
    """Load the config and snapshot once (the same tracker tools/test.py builds, for either backend)."""
    import torch

    from siamkpn.api import load_tracker
    from siamkpn.config import load_cfg

    if settings.threads:
        torch.set_num_threads(settings.threads)
    cfg = load_cfg(settings.config, ["TRACK.BACKEND", settings.backend], freeze=True)
    return TraxTrackerSession(load_tracker(cfg, settings.snapshot, settings.device, fast=settings.fast))


def _region_values(region: Any) -> list[float]:
    """The numbers of a trax Rectangle (x, y, w, h) or Polygon (x1, y1, x2, y2, ...)."""
    if region.type == "rectangle":
        return [float(v) for v in region.bounds()]
    if region.type == "polygon":
        return [float(c) for point in region for c in point]
    raise BadValue(f"unsupported region type {region.type!r}: this tracker takes rectangles and polygons")


def _image_path(images: Mapping[str, Any]) -> str:
    image = images.get("color")
    kind = getattr(image, "type", None)
    if image is None or (kind() if callable(kind) else kind) != "path":  # Image.type is a method, Region.type not
        raise BadValue("expected a colour image given by path")
    return image.path()


def _client_is_a_terminal(environ: Mapping[str, str]) -> bool:
    """True when libtrax would read its client from a terminal: no TRAX_SOCKET, and stdin (or the descriptor in
    TRAX_IN) is a TTY. The toolkit always connects a pipe or a socket, so this is a person who started it by hand."""
    if environ.get("TRAX_SOCKET"):
        return False
    fd = environ.get("TRAX_IN", "")
    try:
        return os.isatty(int(fd) if fd.isdigit() else 0)
    except OSError:
        return False


def _reply(server: Any, session: TraxTrackerSession, request: Any, trax: Any) -> None:
    """Answer one initialize or frame request."""
    from toolkit.datasets.video import read_image

    img = read_image(_image_path(request.image))
    if request.type == "initialize":
        if not request.objects:
            raise BadValue("initialize request without a region")
        x, y, w, h = session.initialize(img, _region_values(request.objects[0][0]))
        server.status([(trax.Rectangle.create(x, y, w, h), {})])
    else:
        (x, y, w, h), score = session.frame(img)
        server.status([(trax.Rectangle.create(x, y, w, h), {"confidence": score})])


def serve(settings: TraxSettings, build: Callable[[TraxSettings], TraxTrackerSession] = build_session) -> None:
    """Run the TraX loop until the client quits (hello first, then the model load, then requests).

    Started by hand (stdin a terminal, or nothing that speaks TraX on it) it is a UsageError saying who starts it.
    """
    try:
        import trax
    except ImportError as err:
        raise UsageError(f"the TraX bindings are missing ({err}): {_INSTALL_HINT}") from None
    if _client_is_a_terminal(os.environ):  # before the hello, torch and the model
        raise UsageError(_BY_HAND.format(why="here its input is a terminal"))
    server = trax.Server([trax.Region.RECTANGLE, trax.Region.POLYGON], [trax.Image.PATH],
                         tracker_name="SiamKPN", tracker_family="siamese")
    lost = None
    with server:  # an exception ends the session with its message as the reason the toolkit shows
        session = build(settings)
        try:
            request = server.wait()
        except trax.TraxException as err:  # the first request is not TraX (e.g. input that ended at once)
            lost = err
        else:
            while request.type != "quit":
                _reply(server, session, request, trax)
                request = server.wait()
    if lost is not None:  # raised after the session closed: the server's exit would print a traceback
        raise UsageError(_BY_HAND.format(why=f"no TraX client answered on its input ({lost})"))


def _main(argv: Optional[Sequence[str]] = None) -> int:
    if [a for a in argv or () if a != "--debug"]:
        raise UsageError("python -m siamkpn.cli.vot_trax takes no arguments: set SIAMKPN_CONFIG, SIAMKPN_SNAPSHOT, ... "
                         "(siamkpn-vot-integration writes them into trackers.ini)")
    serve(settings_from_env(os.environ))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m siamkpn.cli.vot_trax``: serve the VOT toolkit under the common error policy."""
    return run_tool(_main, sys.argv[1:] if argv is None else argv, "siamkpn-vot-trax")


if __name__ == "__main__":
    sys.exit(main())
