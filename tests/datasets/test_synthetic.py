"""Synthetic videos and their on-disk sets: determinism, geometry, layouts, held-out seeds, trackability."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from siamkpn.datasets.prepare.crop import crop_like_siamfc, crop_path
from siamkpn.datasets.synthetic import TAGS, SceneConfig, render_video
from siamkpn.datasets.synthetic_draw import SHAPES, appearance, paste
from siamkpn.datasets.synthetic_sets import make_synthetic, otb_rect, video_rng, vot_polygon

SMALL = SceneConfig(width=160, height=120)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    make_synthetic(str(out), seed=11, train_videos=3, train_frames=8, test_videos=2, test_frames=12, scene=SMALL,
                   progress=False)
    return out


def test_render_is_deterministic_by_seed():
    a = render_video(np.random.default_rng(5), 6, SMALL)
    b = render_video(np.random.default_rng(5), 6, SMALL)
    c = render_video(np.random.default_rng(6), 6, SMALL)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.frames[0], c.frames[0])


def test_boxes_tags_and_motion_are_plausible():
    video = render_video(np.random.default_rng(3), 80, SceneConfig(occlusion_prob=1.0, illum_prob=1.0))
    boxes = video.boxes
    assert boxes.shape == (80, 4) and np.array_equal(boxes, np.round(boxes))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 320).all() and (boxes[:, 3] <= 240).all()
    assert (w >= 8).all() and (h >= 8).all()
    assert np.sqrt(w * h).max() < 0.3 * 240 * np.exp(0.45) + 2
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    step = np.hypot(*np.diff(centre, axis=0).T)
    assert step.max() <= 0.03 * 240 + 2 and step.mean() > 0.3  # it moves, smoothly
    assert set(video.tags) == set(TAGS) and all(len(v) == 80 and set(v) <= {0, 1} for v in video.tags.values())
    # the occluder passes once: occlusion frames are exactly the partly hidden ones, never fully hidden
    assert video.tags["occlusion"].any() and 0.2 < video.visible.min() < 0.97
    np.testing.assert_array_equal(video.tags["occlusion"], video.visible < 0.97)
    assert video.tags["illum_change"].any() and "IV" in video.attributes and "OCC" in video.attributes
    assert video.distractor_boxes.shape[1] >= 1


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_fills_its_box(shape):
    look = appearance(np.random.default_rng(0), shape=shape)
    frame = np.zeros((100, 120, 3), np.float32)
    alpha = paste(frame, look, np.array([17, 23, 69, 61]))
    ys, xs = np.nonzero(alpha > 0.5)
    # the shape touches every side of its box: pixels 17..68 x 23..60
    assert abs(xs.min() - 17) <= 1 and abs(xs.max() - 68) <= 1
    assert abs(ys.min() - 23) <= 1 and abs(ys.max() - 60) <= 1


def test_train_crops_are_the_prepare_crops_of_the_rendered_frames(synth_dir):
    anno = json.load(open(synth_dir / "train" / "train.json"))
    assert sorted(anno) == ["synth_00000", "synth_00001", "synth_00002"]
    video = render_video(video_rng(11, "train", 1), 8, SMALL)
    target = anno["synth_00001"]["00"]
    for frame, box in target.items():
        t = int(frame)
        np.testing.assert_array_equal(box, [*video.boxes[t, :2], *(video.boxes[t, 2:] - 1)])
        stored = cv2.imread(crop_path(str(synth_dir / "train" / "crop511"), "synth_00001", t, "00")).astype(float)
        fresh = crop_like_siamfc(video.frames[t], box).astype(float)
        assert np.abs(stored - fresh).mean() < 3.0  # equal up to JPEG
    for name, tracks in anno.items():  # every listed crop exists
        for track, frames in tracks.items():
            for frame in frames:
                assert os.path.isfile(crop_path(str(synth_dir / "train" / "crop511"), name, int(frame), track))


def test_otb_json_and_native_layout_describe_the_same_videos(synth_dir):
    root = synth_dir / "test" / "OTB100"
    meta = json.load(open(root / "OTB100.json"))
    assert sorted(meta) == sorted(d for d in os.listdir(root) if (root / d).is_dir()) == ["Synth001", "Synth002"]
    for name, info in meta.items():
        native = np.loadtxt(root / name / "groundtruth_rect.txt", delimiter=",")
        np.testing.assert_array_equal(native, info["gt_rect"])
        assert info["init_rect"] == info["gt_rect"][0] and info["video_dir"] == name
        assert info["img_names"] == [f"{name}/img/{i:04d}.jpg" for i in range(1, 13)]
        assert all((root / p).is_file() for p in info["img_names"])
        assert isinstance(info["attr"], list) and "BC" in info["attr"]
        # OTB boxes are 1-based: the video regenerated from its seed has its target there
        video = render_video(video_rng(11, "otb", int(name[-3:]) - 1), 12, SMALL)
        np.testing.assert_array_equal(native, [otb_rect(b) for b in video.boxes])
        assert native[0][0] == video.boxes[0][0] + 1


def test_vot_json_and_native_layout_describe_the_same_videos(synth_dir):
    root = synth_dir / "test" / "VOT2018"
    meta = json.load(open(root / "VOT2018.json"))
    names = (root / "list.txt").read_text().split()
    assert names == sorted(meta) == ["synth001", "synth002"]
    for name in names:
        info = meta[name]
        native = np.loadtxt(root / name / "groundtruth.txt", delimiter=",")
        assert native.shape == (12, 8)
        np.testing.assert_allclose(native, info["gt_rect"], atol=0.005)
        assert info["init_rect"] == info["gt_rect"][0]
        assert info["img_names"] == [f"{name}/color/{i:08d}.jpg" for i in range(1, 13)]
        assert all((root / p).is_file() for p in info["img_names"])
        for tag in TAGS:
            np.testing.assert_array_equal(np.loadtxt(root / name / f"{tag}.tag", dtype=int), info[tag])
        image = cv2.imread(str(root / info["img_names"][0]))
        assert image.shape == (120, 160, 3)


def test_vot_polygon_and_otb_rect_give_the_same_init_box():
    box = np.array([30, 40, 71, 66])  # pixels 30..70 x 40..65
    poly = np.array(vot_polygon(box)).reshape(4, 2)
    # pysot's init box from a polygon: centre = corner mean, size = extent + 1 (axis-aligned case)
    cx, cy = poly.mean(0)
    w, h = np.ptp(poly[:, 0]) + 1, np.ptp(poly[:, 1]) + 1
    x, y, ow, oh = otb_rect(box)
    assert (w, h) == (ow, oh) == (41, 26)
    assert (cx - (w - 1) / 2, cy - (h - 1) / 2) == (x - 1, y - 1)


def test_test_sets_are_held_out(synth_dir):
    otb = cv2.imread(str(synth_dir / "test" / "OTB100" / "Synth001" / "img" / "0001.jpg")).astype(int)
    vot = cv2.imread(str(synth_dir / "test" / "VOT2018" / "synth001" / "color" / "00000001.jpg")).astype(int)
    train = render_video(video_rng(11, "train", 0), 1, SMALL).frames[0].astype(int)
    assert np.abs(otb - vot).mean() > 10 and np.abs(train - otb).mean() > 10 and np.abs(train - vot).mean() > 10


def _ncc_track(frames, box):
    """A tracker that learns appearance: the first frame's target patch, matched near the last position."""
    x1, y1, x2, y2 = box.astype(int)
    patch, w, h = frames[0][y1:y2, x1:x2], x2 - x1, y2 - y1
    out, (x, y) = [box.astype(float)], (x1, y1)
    for frame in frames[1:]:
        r = max(w, h) + 10
        x0, y0 = max(0, x - r), max(0, y - r)
        window = frame[y0:min(frame.shape[0], y + h + r), x0:min(frame.shape[1], x + w + r)]
        _, _, _, loc = cv2.minMaxLoc(cv2.matchTemplate(window, patch, cv2.TM_CCOEFF_NORMED))
        x, y = x0 + loc[0], y0 + loc[1]
        out.append(np.array([x, y, x + w, y + h], float))
    return np.array(out)


def test_objects_are_trackable_by_appearance():
    hits_ncc, hits_static = [], []
    for i in range(4):
        video = render_video(video_rng(0, "otb", i), 50)
        centre = (video.boxes[:, :2] + video.boxes[:, 2:]) / 2
        tracked = _ncc_track(video.frames, video.boxes[0])
        err = np.hypot(*(((tracked[:, :2] + tracked[:, 2:]) / 2) - centre).T)
        hits_ncc.append(np.mean(err < 10))
        hits_static.append(np.mean(np.hypot(*(centre[0] - centre).T) < 10))
    assert np.mean(hits_ncc) > 0.75 and np.mean(hits_static) < 0.4
    assert np.mean(hits_ncc) > np.mean(hits_static) + 0.4


def _cli():
    from importlib import util

    spec = util.spec_from_file_location("make_synthetic", os.path.join(os.path.dirname(__file__), "..", "..",
                                                                       "scripts", "make_synthetic.py"))
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sizes(train_videos, test_videos, frames, parts="train,otb,vot"):
    return ["--seed", "3", "--train-videos", str(train_videos), "--train-frames", str(frames), "--test-videos",
            str(test_videos), "--test-frames", str(frames), "--width", "96", "--height", "80", "--parts", parts]


def test_cli_writes_every_part(tmp_path, capsys):
    module = _cli()
    assert module.main(["--out", str(tmp_path), *_sizes(1, 1, 3, "train,vot")]) == 0
    assert (tmp_path / "train" / "train.json").is_file() and (tmp_path / "test" / "VOT2018" / "list.txt").is_file()
    assert not (tmp_path / "test" / "OTB100").exists()
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--out", str(tmp_path), "--parts", "train,bogus"])
    assert exit_info.value.code == 2 and "unknown part(s) ['bogus']" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["out", "below"])
def test_cli_out_is_a_file_is_one_line_exit_2(tmp_path, capsys, where):
    from helpers import tool_error

    existing = tmp_path / "a_file"
    existing.write_text("mine")
    out = existing if where == "out" else existing / "sub"
    line = tool_error(capsys, _cli().main, ["--out", str(out), *_sizes(1, 1, 2)])
    assert f"{existing} is a file, not a folder" in line
    assert existing.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def _videos(folder):
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def test_rerun_with_a_smaller_set_replaces_what_the_last_run_wrote(tmp_path):
    module = _cli()
    assert module.main(["--out", str(tmp_path), *_sizes(3, 3, 5)]) == 0
    otb, vot, crops = tmp_path / "test" / "OTB100", tmp_path / "test" / "VOT2018", tmp_path / "train" / "crop511"
    assert _videos(otb) == ["Synth001", "Synth002", "Synth003"] and len(_videos(crops)) == 3
    (otb / "my_notes.txt").write_text("keep")  # the user's own files in an owned folder stay
    (otb / "MyVideo").mkdir()
    assert module.main(["--out", str(tmp_path), *_sizes(1, 1, 2)]) == 0
    assert _videos(otb) == ["MyVideo", "Synth001"] and (otb / "my_notes.txt").read_text() == "keep"
    assert sorted(os.listdir(otb / "Synth001" / "img")) == ["0001.jpg", "0002.jpg"]  # no frames of the old video
    assert _videos(vot) == ["synth001"] and len(os.listdir(vot / "synth001" / "color")) == 2
    assert (vot / "list.txt").read_text().split() == ["synth001"]
    assert _videos(crops) == ["synth_00000"]
    assert all(int(n[:6]) < 2 for n in os.listdir(crops / "synth_00000"))
    assert list(json.load(open(tmp_path / "train" / "train.json"))) == ["synth_00000"]
    # the native OTB layout (folders on disk) now agrees with the json
    from toolkit.datasets import DatasetFactory

    native = DatasetFactory.create_dataset("OTB100", str(otb), layout="native")
    assert [v.name for v in native] == ["Synth001"]


def test_a_folder_it_did_not_write_is_refused_untouched(tmp_path, capsys):
    from helpers import tool_error

    real = tmp_path / "test" / "OTB100"  # e.g. a real benchmark under the same name
    (real / "Basketball" / "img").mkdir(parents=True)
    (real / "OTB100.json").write_text("{}")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    line = tool_error(capsys, _cli().main, ["--out", str(tmp_path), *_sizes(1, 1, 2)])
    assert str(real) in line and ".siamkpn_synthetic.json" in line
    # refused before anything was written: not even the training part (checked first) exists
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_parallel_generation_writes_identical_files(tmp_path):
    from siamkpn.datasets.synthetic_sets import write_otb_set

    scene = SceneConfig(width=96, height=80)
    for workers, name in ((1, "serial"), (2, "parallel")):
        write_otb_set(str(tmp_path / name), seed=4, num_videos=2, num_frames=4, scene=scene, workers=workers,
                      progress=False)
    serial = sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*") if p.is_file())
    parallel = sorted(p.relative_to(tmp_path / "parallel") for p in (tmp_path / "parallel").rglob("*") if p.is_file())
    assert serial == parallel and len(serial) == 2 + 2 * (4 + 1)  # json, marker, per video: frames + ground truth
    for rel in serial:
        assert (tmp_path / "serial" / rel).read_bytes() == (tmp_path / "parallel" / rel).read_bytes()
