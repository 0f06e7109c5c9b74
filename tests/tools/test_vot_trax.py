"""siamkpn.cli.vot_trax driven through vot-trax's own TraX client, as the VOT toolkit drives it (no toolkit needed).

The client replays tools/test.py's VOT run on the same synthetic frames: it initialises where test.py wrote
``1``, sends a frame where test.py wrote a box or a failure ``2`` and skips ``0`` frames; the server's boxes
must equal test.py's, and its failure frames must have zero overlap, as test.py decided.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import tiny_cfg, tool_error, torch_threads
from siamkpn.cli.vot_trax import init_box_from_region, main, settings_from_env
from siamkpn.datasets.synthetic import SceneConfig
from siamkpn.datasets.synthetic_sets import write_vot_set
from siamkpn.models.model_builder import ModelBuilder
from toolkit.boxes import init_box_from_gt
from toolkit.datasets import DatasetFactory
from toolkit.region import vot_overlap
from toolkit.results import read_vot

FRAMES = 16


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trax")
    cfg = tiny_cfg(stack=1)
    (tmp / "config.yaml").write_text(cfg.dump())
    torch.manual_seed(0)
    model = ModelBuilder(cfg)
    with torch.no_grad():  # calm random output layers so the tracker follows the target for a while
        for name, param in model.named_parameters():
            if ".head1.1." in name:
                param.mul_(0.01)
                if "objsize" in name and name.endswith("bias"):
                    param.fill_(70.0)
    torch.save(model.state_dict(), tmp / "tiny.pth")
    write_vot_set(str(tmp / "VOT2018"), seed=3, num_videos=1, num_frames=FRAMES,
                  scene=SceneConfig(width=128, height=96, min_object=0.5, max_object=0.6, max_speed=0.01),
                  progress=False)
    return tmp


def _env(tmp: Path) -> dict:
    env = dict(os.environ, SIAMKPN_CONFIG=str(tmp / "config.yaml"), SIAMKPN_SNAPSHOT=str(tmp / "tiny.pth"),
               SIAMKPN_DEVICE="cpu", SIAMKPN_THREADS="1", SIAMKPN_FAST="0")
    env.pop("TRAX_SOCKET", None)
    return env


def _test_py_lines(tmp: Path):
    from siamkpn.cli.test import main as test_main

    with_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert test_main(["--config", str(tmp / "config.yaml"), "--snapshot", str(tmp / "tiny.pth"), "--device",
                          "cpu", "--dataset", "VOT2018", "--dataset-root", str(tmp / "VOT2018"),
                          "--results-dir", str(tmp / "results")]) == 0
    finally:
        torch.set_num_threads(with_threads)
    return read_vot(tmp / "results" / "VOT2018" / "tiny" / "baseline" / "synth001" / "synth001_001.txt")


def test_trax_server_tracks_like_test_py(setup):
    trax = pytest.importorskip("trax", reason="vot-trax (PyPI) is not installed: pip install 'siamkpn[vot]'")
    from trax.client import Client

    tmp = setup
    lines = _test_py_lines(tmp)
    video = DatasetFactory.create_dataset("VOT2018", tmp / "VOT2018")["synth001"]
    proc = subprocess.Popen([sys.executable, "-m", "siamkpn.cli.vot_trax"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=open(tmp / "server.log", "w"), env=_env(tmp), cwd=tmp)
    try:
        log = []  # vot-trax 4.0.2's Client needs a logger (log=False fails in ctypes), as the toolkit passes one
        client = Client(stream=(proc.stdin.fileno(), proc.stdout.fileno()), timeout=60, log=log.append)
        assert set(client.region_formats) == {"rectangle", "polygon"} and client.tracker_name == "SiamKPN"
        compared, failures = 0, 0
        for idx, line in enumerate(lines):
            image = {"color": trax.FileImage.create(str(Path(video.img_names[idx]).resolve()))}
            gt = [float(v) for v in video.gt_traj[idx]]
            if line == [1.0]:
                poly = trax.Polygon.create([(gt[i], gt[i + 1]) for i in range(0, 8, 2)])
                reply, _ = client.initialize(image, [(poly, {})], {})
                # the reported init box is the one test.py initialised with (float32 over the wire)
                np.testing.assert_allclose(reply[0][0].bounds(), init_box_from_gt(gt), atol=1e-4)
            elif line != [0.0]:
                reply, _ = client.frame(image, {}, [])
                box = list(reply[0][0].bounds())
                assert np.isfinite(float(reply[0][1]["confidence"]))
                if line == [2.0]:
                    failures += 1
                    assert vot_overlap(box, gt, bounds=(video.width, video.height)) == 0, (idx, box)
                else:
                    np.testing.assert_allclose(box, line, atol=1e-3, err_msg=f"frame {idx}")
                    compared += 1
        client.quit()
        assert proc.wait(timeout=30) == 0, (tmp / "server.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert compared >= 3 and failures >= 1, lines  # the replay compared tracked boxes and failures
    print(f"compared {compared} boxes and {failures} failures with test.py")


def _start_server(tmp: Path, trax):
    from trax.client import Client

    proc = subprocess.Popen([sys.executable, "-m", "siamkpn.cli.vot_trax"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=open(tmp / "server.log", "a"), env=_env(tmp), cwd=tmp)
    log = []  # vot-trax 4.0.2's Client needs a logger (log=False fails in ctypes), as the toolkit passes one
    return proc, Client(stream=(proc.stdin.fileno(), proc.stdout.fileno()), timeout=60, log=log.append)


def test_rectangle_ground_truth_tracks_like_the_longterm_protocol(setup):
    """VOT-LT sends rectangles: the server's run equals tools/test.py --dataset VOT2018-LT, box for box."""
    trax = pytest.importorskip("trax", reason="vot-trax (PyPI) is not installed: pip install 'siamkpn[vot]'")
    from siamkpn.cli.test import main as test_main
    from toolkit.results import read_longterm

    tmp = setup
    lt = tmp / "VOT2018-LT"
    shutil.copytree(tmp / "VOT2018" / "synth001" / "color", lt / "synth001" / "color")
    polys = np.loadtxt(tmp / "VOT2018" / "synth001" / "groundtruth.txt", delimiter=",")
    rects = np.stack([polys[:, 0], polys[:, 1], polys[:, 4] - polys[:, 0], polys[:, 5] - polys[:, 1]], axis=1)
    np.savetxt(lt / "synth001" / "groundtruth.txt", rects, fmt="%.2f", delimiter=",")
    (lt / "list.txt").write_text("synth001\n")
    with torch_threads(1):
        assert test_main(["--config", str(tmp / "config.yaml"), "--snapshot", str(tmp / "tiny.pth"), "--device",
                          "cpu", "--dataset", "VOT2018-LT", "--dataset-root", str(lt), "--results-dir",
                          str(tmp / "results")]) == 0
    boxes, scores, _ = read_longterm(tmp / "results" / "VOT2018-LT" / "tiny" / "longterm" / "synth001")
    video = DatasetFactory.create_dataset("VOT2018-LT", lt)["synth001"]
    proc, client = _start_server(tmp, trax)
    try:
        frames = [{"color": trax.FileImage.create(str(Path(p).resolve()))} for p in video.img_names]
        client.initialize(frames[0], [(trax.Rectangle.create(*rects[0]), {})], {})
        for idx in range(1, len(frames)):
            reply, _ = client.frame(frames[idx], {}, [])
            np.testing.assert_allclose(reply[0][0].bounds(), boxes[idx], atol=1e-3, err_msg=f"frame {idx}")
            assert float(reply[0][1]["confidence"]) == pytest.approx(scores[idx], abs=1e-5)
        client.quit()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_region_to_init_box_matches_the_vot_protocol():
    poly = [10.0, 20.0, 10.0, 39.0, 39.0, 39.0, 39.0, 20.0]
    assert init_box_from_region(poly) == init_box_from_gt(poly)
    # a rectangle as test.py's long-term / one-pass protocols take a 4-value ground truth (pysot's x + 0.5)
    assert init_box_from_region([10, 20, 30, 20]) == init_box_from_gt([10, 20, 30, 20]) == [10.5, 20.5, 30.0, 20.0]
    # a converted mask outline (not 4 points) is taken by its bounds
    outline = [10, 20, 25, 18, 39, 20, 39, 39, 10, 39]
    assert init_box_from_region(outline) == init_box_from_gt([10, 18, 39, 18, 39, 39, 10, 39])
    with pytest.raises(ValueError, match="empty"):
        init_box_from_region([5, 5, 0, 10])
    with pytest.raises(ValueError, match="non-finite"):
        init_box_from_region([5, 5, float("nan"), 10])


def test_settings_errors_name_the_variable(setup, monkeypatch, capsys):
    env = _env(setup)
    settings = settings_from_env(env)
    assert (settings.device, settings.threads, settings.fast) == ("cpu", 1, False)
    bad = {"SIAMKPN_CONFIG": "", "SIAMKPN_SNAPSHOT": str(setup / "missing.pth"), "SIAMKPN_THREADS": "two",
           "SIAMKPN_DEVICE": "tpu", "SIAMKPN_FAST": "maybe"}
    for key, value in bad.items():
        monkeypatch.setattr(os, "environ", dict(env, **{key: value}))
        line = tool_error(capsys, main, [], 2)
        assert line.startswith("siamkpn-vot-trax: error: ") and key in line, line


def test_missing_trax_is_a_clear_error(setup, monkeypatch, capsys):
    monkeypatch.setattr(os, "environ", _env(setup))
    monkeypatch.setitem(sys.modules, "trax", None)  # import trax raises ImportError
    line = tool_error(capsys, main, [], 2)
    assert "vot-trax" in line and "siamkpn[vot]" in line


def _replay(session_or_client, frames, gt0, trax=None) -> np.ndarray:
    """Initialise on frame 0 at its polygon and track every later frame (no resets): the boxes, frame by frame."""
    boxes = []
    if trax is None:
        session_or_client.initialize(frames[0], gt0)
        for img in frames[1:]:
            boxes.append(session_or_client.frame(img)[0])
        return np.array(boxes)
    poly = trax.Polygon.create([(gt0[i], gt0[i + 1]) for i in range(0, 8, 2)])
    session_or_client.initialize(frames[0], [(poly, {})], {})
    for img in frames[1:]:
        reply, _ = session_or_client.frame(img, {}, [])
        boxes.append(list(reply[0][0].bounds()))
    return np.array(boxes)


def test_onnx_backend_serves_the_boxes_of_the_torch_backend(setup):
    """SIAMKPN_BACKEND=onnx with an export folder of the tiny model: a TraX session answers the rectangles the
    torch backend's tracker gives on the same frames (within 1e-2 px; float32 reassociation only)."""
    trax = pytest.importorskip("trax", reason="vot-trax (PyPI) is not installed: pip install 'siamkpn[vot]'")
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'siamkpn[onnx]')")
    from siamkpn.cli.vot_trax import build_session
    from siamkpn.datasets.calibration import synthetic_pairs
    from siamkpn.models.checkpoint import load_tracking_checkpoint
    from siamkpn.models.onnx_export import export_onnx
    from toolkit.datasets.video import read_image

    tmp = setup
    cfg = tiny_cfg(stack=1)
    model = ModelBuilder(cfg)
    load_tracking_checkpoint(model, str(tmp / "tiny.pth"))
    with torch_threads(1):
        export_onnx(model.eval(), cfg, str(tmp / "tiny_onnx"),
                    synthetic_pairs(cfg.TRACK.EXEMPLAR_SIZE, cfg.TRACK.INSTANCE_SIZE, 1))
    video = DatasetFactory.create_dataset("VOT2018", tmp / "VOT2018")["synth001"]
    gt0 = [float(v) for v in video.gt_traj[0]]
    with torch_threads(1):
        torch_boxes = _replay(build_session(settings_from_env(_env(tmp))), [read_image(p) for p in video.img_names],
                              gt0)
    env = dict(_env(tmp), SIAMKPN_BACKEND="onnx", SIAMKPN_SNAPSHOT=str(tmp / "tiny_onnx"))
    assert settings_from_env(env).backend == "onnx"
    proc = subprocess.Popen([sys.executable, "-m", "siamkpn.cli.vot_trax"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=open(tmp / "server_onnx.log", "w"), env=env, cwd=tmp)
    try:
        from trax.client import Client

        log = []
        client = Client(stream=(proc.stdin.fileno(), proc.stdout.fileno()), timeout=60, log=log.append)
        frames = [{"color": trax.FileImage.create(str(Path(p).resolve()))} for p in video.img_names]
        onnx_boxes = _replay(client, frames, gt0, trax)
        client.quit()
        assert proc.wait(timeout=30) == 0, (tmp / "server_onnx.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(onnx_boxes) == FRAMES - 1
    assert np.abs(torch_boxes[-1] - torch_boxes[0]).max() > 1.0  # the boxes move: the comparison means something
    diff = np.abs(torch_boxes - onnx_boxes).max()
    print(f"onnx vs torch over {len(onnx_boxes)} frames: largest box difference {diff:.2e} px")
    assert diff <= 1e-2


def test_backend_errors_name_the_variable(setup, monkeypatch, capsys, tmp_path):
    """A bad SIAMKPN_BACKEND, a snapshot of the other backend's kind, a GPU for onnx: one error line each."""
    env = _env(setup)
    folder = tmp_path / "export"
    folder.mkdir()
    onnx_cfg = tiny_cfg(stack=1)
    onnx_cfg.TRACK.BACKEND = "onnx"
    (tmp_path / "onnx.yaml").write_text(onnx_cfg.dump())
    cases = [({"SIAMKPN_BACKEND": "tensorrt"}, ["SIAMKPN_BACKEND=tensorrt", "torch or onnx"]),
             ({"SIAMKPN_BACKEND": "onnx"}, ["SIAMKPN_SNAPSHOT=", "is a file", "SIAMKPN_BACKEND=torch"]),
             ({"SIAMKPN_SNAPSHOT": str(folder)}, ["SIAMKPN_SNAPSHOT=", "is a folder", "SIAMKPN_BACKEND=onnx"]),
             ({"SIAMKPN_BACKEND": "onnx", "SIAMKPN_SNAPSHOT": str(folder), "SIAMKPN_DEVICE": "cuda"},
              ["SIAMKPN_DEVICE=cuda", "on the CPU"]),
             # unset: the config's TRACK.BACKEND (onnx here), so the .pth is the wrong kind
             ({"SIAMKPN_CONFIG": str(tmp_path / "onnx.yaml")}, ["SIAMKPN_SNAPSHOT=", "is a file"])]
    for change, parts in cases:
        monkeypatch.setattr(os, "environ", dict(env, **change))
        line = tool_error(capsys, main, [], 2)
        assert line.startswith("siamkpn-vot-trax: error: ") and all(p in line for p in parts), (change, line)
    assert settings_from_env(dict(env, SIAMKPN_BACKEND=" ONNX ", SIAMKPN_SNAPSHOT=str(folder))).backend == "onnx"
    assert settings_from_env(dict(env, SIAMKPN_CONFIG=str(tmp_path / "onnx.yaml"),
                                  SIAMKPN_SNAPSHOT=str(folder))).backend == "onnx"
    assert settings_from_env(env).backend == "torch"  # unset, and the config's default


def test_settings_are_read_before_torch_is_imported(setup):
    """The hello goes out before torch: reading the variables, SIAMKPN_BACKEND included, does not import it."""
    code = ("import os, sys\nfrom siamkpn.cli.vot_trax import settings_from_env\n"
            "s = settings_from_env(os.environ)\nprint(s.backend, 'torch' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], env=_env(setup), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["torch", "False"]


def test_started_from_a_terminal_it_says_who_starts_it_before_torch(setup):
    pytest.importorskip("trax", reason="vot-trax (PyPI) is not installed: pip install 'siamkpn[vot]'")
    import pty

    code = ("import sys\nfrom siamkpn.cli.vot_trax import main\nrc = main([])\nprint('torch' in sys.modules)\n"
            "sys.exit(rc)\n")
    leader, terminal = pty.openpty()
    try:
        run = subprocess.run([sys.executable, "-c", code], stdin=terminal, capture_output=True, text=True,
                             env=_env(setup), timeout=60)
    finally:
        os.close(leader)
        os.close(terminal)
    # it used to send the hello to the terminal, load the model and fail with "TraxException ... Unknown"
    assert run.returncode == 2 and run.stdout.split() == ["False"], run
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("siamkpn-vot-trax: error: python -m siamkpn.cli.vot_trax is the TraX server that the VOT "
                           "toolkit starts") and "its input is a terminal" in line
    assert "`vot test --workspace WORKSPACE NAME`" in line and "docs/VOT.md" in line


def test_input_that_is_not_a_trax_client_is_one_line_saying_who_starts_it(setup):
    pytest.importorskip("trax", reason="vot-trax (PyPI) is not installed: pip install 'siamkpn[vot]'")
    code = ("import os, sys\nfrom siamkpn.cli import vot_trax\nfrom siamkpn.cli.common import run_tool\n"
            "serve = lambda argv: vot_trax.serve(vot_trax.settings_from_env(os.environ), build=lambda s: None)\n"
            "sys.exit(run_tool(serve, [], 'siamkpn-vot-trax'))\n")  # no model: only the protocol is under test
    run = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         env=_env(setup), timeout=60)
    assert run.returncode == 2, run
    (line,) = run.stderr.strip().splitlines()  # no traceback from the TraX server's exit
    assert line.startswith("siamkpn-vot-trax: error: python -m siamkpn.cli.vot_trax is the TraX server that the VOT "
                           "toolkit starts") and "no TraX client answered" in line and "vot test" in line


def test_the_former_module_path_still_runs_the_server(setup):
    """trackers.ini files written before the server moved to siamkpn.cli name `siamkpn.vot_trax`: it still runs."""
    run = subprocess.run([sys.executable, "-m", "siamkpn.vot_trax", "extra"], capture_output=True, text=True,
                         env=_env(setup), timeout=60)
    assert run.returncode == 2, run
    assert run.stderr.strip() == ("siamkpn-vot-trax: error: python -m siamkpn.cli.vot_trax takes no arguments: set "
                                  "SIAMKPN_CONFIG, SIAMKPN_SNAPSHOT, ... (siamkpn-vot-integration writes them into "
                                  "trackers.ini)")
