"""tools/demo.py without a display: an image folder (or a video file) in, an annotated video out."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import tiny_cfg, tool_error
from siamkpn.models.model_builder import ModelBuilder

REPO = Path(__file__).resolve().parents[2]
FRAMES = 4


def _load_demo():
    spec = importlib.util.spec_from_file_location("siamkpn_demo_tool", REPO / "tools" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    cfg = tiny_cfg(stack=1)
    (tmp_path / "config.yaml").write_text(cfg.dump())
    torch.manual_seed(0)
    torch.save(ModelBuilder(cfg).state_dict(), tmp_path / "tiny.pth")
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(FRAMES):
        img = rng.integers(0, 60, (72, 96, 3), dtype=np.uint8)
        img[20 + i:40 + i, 30 + 2 * i:56 + 2 * i] = 200
        cv2.imwrite(str(folder / f"{i:05d}.png"), img)
    (folder / "notes.txt").write_text("not a frame")
    base = ["--config", str(tmp_path / "config.yaml"), "--snapshot", str(tmp_path / "tiny.pth"), "--device", "cpu"]
    return _load_demo(), tmp_path, base


def _read_video(path: Path):
    cap = cv2.VideoCapture(str(path))
    out = []
    ok, img = cap.read()
    while ok:
        out.append(img)
        ok, img = cap.read()
    cap.release()
    return out


def test_image_folder_to_annotated_video_and_back(setup, capsys):
    demo, tmp, base = setup
    out = tmp / "tracked.mp4"
    assert demo.main(base + ["--video", str(tmp / "frames"), "--init", "30,20,26,20", "--out", str(out)]) == 0
    video = _read_video(out)
    assert len(video) == FRAMES and video[0].shape == (72, 96, 3)
    # the init box is drawn in green on frame 0: its top edge row is green, the untouched inside is not
    edge = video[0][20, 34:52].astype(int)
    assert (edge[:, 1] - edge[:, 2] > 100).mean() > 0.8
    assert f"{FRAMES} frames" in capsys.readouterr().out

    again = tmp / "again.avi"
    assert demo.main(base + ["--video", str(out), "--init", "30,20,26,20", "--out", str(again)]) == 0
    assert len(_read_video(again)) == FRAMES


def test_headless_without_init_box_says_what_to_do(setup, capsys):
    demo, tmp, base = setup
    assert "--init" in tool_error(capsys, demo.main, base + ["--video", str(tmp / "frames")])
    line = tool_error(capsys, demo.main, base + ["--video", str(tmp / "frames"), "--init", "1,2,0,4"])
    assert line.startswith("siamkpn-demo: error:") and "positive w and h" in line
    assert "no such file" in tool_error(capsys, demo.main,
                                        base + ["--video", str(tmp / "missing.mp4"), "--init", "1,2,3,4"])


@pytest.mark.parametrize("init", ["nan,1,2,3", "1,2,inf,4", "1,2,3", "1,2,-3,4"])
def test_bad_init_box_is_refused_before_the_model_loads(setup, capsys, init):
    demo, tmp, base = setup
    (tmp / "notes.pth").write_text("not a checkpoint")
    argv = ["--config", str(tmp / "config.yaml"), "--snapshot", str(tmp / "notes.pth"), "--device", "cpu"]
    line = tool_error(capsys, demo.main, argv + ["--video", str(tmp / "frames"), "--init", init])
    # the box is named (not the snapshot): it was checked first, without building the model
    assert "--init" in line and init in line and "four finite numbers" in line


def test_a_snapshot_that_is_not_a_checkpoint_is_one_line(setup, capsys):
    demo, tmp, base = setup
    (tmp / "notes.pth").write_text("not a checkpoint")
    argv = ["--config", str(tmp / "config.yaml"), "--snapshot", str(tmp / "notes.pth"), "--device", "cpu"]
    line = tool_error(capsys, demo.main, argv + ["--video", str(tmp / "frames"), "--init", "30,20,26,20"])
    assert str(tmp / "notes.pth") in line and "checkpoint" in line


def test_a_cut_jpeg_frame_is_one_line_naming_it(setup, capsys):
    demo, tmp, base = setup
    folder = tmp / "jpegs"
    folder.mkdir()
    for i, src in enumerate(sorted((tmp / "frames").glob("*.png"))):
        data = cv2.imencode(".jpg", cv2.imread(str(src)))[1].tobytes()
        (folder / f"{i:05d}.jpg").write_bytes(data[: len(data) // 2] if i == 2 else data)
    line = tool_error(capsys, demo.main, base + ["--video", str(folder), "--init", "30,20,26,20"])
    assert "truncated JPEG" in line and str(folder / "00002.jpg") in line


def _no_model_argv(tmp):
    """A snapshot that is not a checkpoint: an error about --out (not the snapshot) shows it came first."""
    (tmp / "notes.pth").write_text("not a checkpoint")
    return ["--config", str(tmp / "config.yaml"), "--snapshot", str(tmp / "notes.pth"), "--device", "cpu"]


def test_out_the_same_file_as_video_is_refused_untouched(setup, capsys, monkeypatch):
    demo, tmp, base = setup
    clip = tmp / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 72))
    for src in sorted((tmp / "frames").glob("*.png")):
        writer.write(cv2.imread(str(src)))
    writer.release()
    before = clip.read_bytes()
    (tmp / "link.avi").symlink_to(clip)
    monkeypatch.chdir(tmp)
    for out in (str(clip), "clip.avi", str(tmp / "link.avi")):  # the same file, however it is spelt
        line = tool_error(capsys, demo.main, _no_model_argv(tmp) + ["--video", str(clip), "--init", "30,20,26,20",
                                                                    "--out", out])
        # it used to track and write the annotated video over the input
        assert line == (f"siamkpn-demo: error: --out {out} is the input --video {clip}: it would be overwritten; "
                        "choose another --out")
    assert clip.read_bytes() == before
    frame = tmp / "frames" / "00001.png"
    line = tool_error(capsys, demo.main, _no_model_argv(tmp) + ["--video", str(tmp / "frames"), "--init",
                                                                "30,20,26,20", "--out", str(frame)])
    assert line.endswith(f"--out {frame} is a frame of the input --video {tmp / 'frames'}: it would be overwritten; "
                         "choose another --out")


def test_out_into_a_missing_folder_names_the_folder_before_the_model_loads(setup, capsys):
    demo, tmp, base = setup
    out = tmp / "missing" / "tracked.mp4"
    line = tool_error(capsys, demo.main, _no_model_argv(tmp) + ["--video", str(tmp / "frames"), "--init",
                                                                "30,20,26,20", "--out", str(out)])
    # it used to load the model, track the first frame and say "cannot write video ... (codec not available?)"
    assert line == f"siamkpn-demo: error: --out {out}: the folder {tmp / 'missing'} does not exist"
    line = tool_error(capsys, demo.main, _no_model_argv(tmp) + ["--video", str(tmp / "frames"), "--init",
                                                                "30,20,26,20", "--out", str(tmp / "frames")])
    assert line.endswith(f"--out {tmp / 'frames'} is a folder; give a video file name (.mp4 or .avi)")
