"""Preparation of real training sets: each official layout, faked in tmp_path, into crop511 + json."""
from __future__ import annotations

import json
import logging
import os
from importlib import util

import cv2
import numpy as np
import pytest

from siamkpn.config import get_cfg
from siamkpn.datasets.prepare import prepare
from siamkpn.datasets.prepare.crop import INSTANCE_SIZE, crop_like_siamfc, crop_path, search_region, write_image_atomic
from siamkpn.datasets.prepare.record import RECORD_FILE
from siamkpn.datasets.training_set import TrainingSet
from toolkit.atomic import temp_files

W, H = 160, 120
COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]  # BGR: red, green, blue objects


def _image(path, boxes, ext_ok=True):
    """Grey frame with each corner box (x1, y1, x2, y2; pixels x1..x2-1) filled with its own colour."""
    img = np.full((H, W, 3), 110, np.uint8)
    for (x1, y1, x2, y2), colour in zip(boxes, COLOURS):
        img[int(y1):int(y2), int(x1):int(x2)] = colour
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    with open(path, "wb") as f:
        f.write(buf.tobytes())


def _xyxy(x, y, w, h):
    return [x, y, x + w, y + h]


def _check_crop(path, box, colour):
    """The object of `colour` sits at the crop centre with the size the 511 crop of `box` gives it."""
    crop = cv2.imread(path).astype(int)
    assert crop.shape == (INSTANCE_SIZE, INSTANCE_SIZE, 3)
    mask = np.abs(crop - np.array(colour)).sum(axis=2) < 120
    ys, xs = np.nonzero(mask)
    x1, y1, x2, y2 = search_region(box)
    scale = (INSTANCE_SIZE - 1) / (x2 - x1)
    centre = (INSTANCE_SIZE - 1) / 2
    assert abs((xs.min() + xs.max()) / 2 - centre) <= scale and abs((ys.min() + ys.max()) / 2 - centre) <= scale
    assert abs((xs.max() - xs.min() + 1) - (box[2] - box[0]) * scale) <= scale + 1
    assert abs((ys.max() - ys.min() + 1) - (box[3] - box[1]) * scale) <= scale + 1


def test_crop_geometry_and_mean_colour_padding():
    # pysot's crop_like_SiamFC: s_z = sqrt((w + (w+h)/2)(h + (w+h)/2)), s_x = s_z * 511 / 127, centred on the box
    x1, y1, x2, y2 = search_region([10, 20, 50, 40])
    side = np.sqrt(70 * 50) * 511 / 127
    np.testing.assert_allclose([x1, y1, x2, y2], [30 - side / 2, 30 - side / 2, 30 + side / 2, 30 + side / 2])
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[:, :40] = (200, 100, 50)
    crop = crop_like_siamfc(frame, [10, 20, 50, 40])
    mean = frame.reshape(-1, 3).mean(0)  # (100, 50, 25)
    np.testing.assert_array_equal(crop[0, 0], np.round(mean))  # outside the frame
    np.testing.assert_array_equal(crop[255, 200], (200, 100, 50))  # frame x = -89.0 + 200 * side / 510 = 4.3
    with pytest.raises(ValueError, match="no area"):
        search_region([5, 5, 5, 9])


# ---------------------------------------------------------------- fake downloads


def fake_got10k(src):
    rows = {"GOT-10k_Train_000001": [(20, 30, 40, 30), (24, 32, 40, 31), (50, 40, 0, 30), (30, 30, 40, 30)],
            "GOT-10k_Train_000002": [(60, 50, 30, 44), (62, 50, 30, 44)]}
    absence = {"GOT-10k_Train_000001": [0, 0, 0, 1], "GOT-10k_Train_000002": [0, 0]}
    expected = {}
    for seq, boxes in rows.items():
        folder = os.path.join(src, "train", seq)
        for i, b in enumerate(boxes):
            _image(os.path.join(folder, f"{i + 1:08d}.jpg"), [_xyxy(*b)])
        with open(os.path.join(folder, "groundtruth.txt"), "w") as f:
            f.writelines(",".join(f"{v:.4f}" for v in b) + "\n" for b in boxes)
        with open(os.path.join(folder, "absence.label"), "w") as f:
            f.writelines(f"{a}\n" for a in absence[seq])
        keep = {f"{i:06d}": _xyxy(*b) for i, b in enumerate(boxes) if b[2] > 0 and not absence[seq][i]}
        expected[f"train/{seq}"] = {"00": keep}
    with open(os.path.join(src, "train", "list.txt"), "w") as f:
        f.write("\n".join(rows))
    return expected, "train.json"


def fake_lasot(src):
    boxes = [(20, 30, 40, 30), (22, 30, 41, 30), (25, 31, 42, 30)]
    expected = {}
    for video in ("airplane-1", "airplane-2"):
        folder = os.path.join(src, "airplane", video)
        for i, b in enumerate(boxes):
            _image(os.path.join(folder, "img", f"{i + 1:08d}.jpg"), [_xyxy(*b)])
        with open(os.path.join(folder, "groundtruth.txt"), "w") as f:
            f.writelines(",".join(str(v) for v in b) + "\n" for b in boxes)
        with open(os.path.join(folder, "full_occlusion.txt"), "w") as f:
            f.write("0,1,0")
        with open(os.path.join(folder, "out_of_view.txt"), "w") as f:
            f.write("0,0,0")
    with open(os.path.join(src, "testing_set.txt"), "w") as f:
        f.write("airplane-2\n")
    expected["airplane/airplane-1"] = {"00": {"000000": _xyxy(*boxes[0]), "000002": _xyxy(*boxes[2])}}
    return expected, "train.json"


def fake_coco(src):
    images = [{"id": 7, "file_name": "000000000007.jpg"}, {"id": 9, "file_name": "000000000009.jpg"},
              {"id": 11, "file_name": "000000000011.jpg"}]
    anns = [{"image_id": 7, "bbox": [10.5, 20.25, 40.0, 30.0], "iscrowd": 0},
            {"image_id": 7, "bbox": [5, 5, 0, 10], "iscrowd": 0},
            {"image_id": 7, "bbox": [90, 50, 36, 44], "iscrowd": 1},
            {"image_id": 9, "bbox": [60, 40, 50, 40], "iscrowd": 0}]
    _image(os.path.join(src, "train2017", images[0]["file_name"]), [_xyxy(10, 20, 41, 31), [0, 0, 0, 0],
                                                                    _xyxy(90, 50, 36, 44)])
    _image(os.path.join(src, "train2017", images[1]["file_name"]), [_xyxy(60, 40, 50, 40)])
    _image(os.path.join(src, "train2017", images[2]["file_name"]), [])
    os.makedirs(os.path.join(src, "annotations"))
    with open(os.path.join(src, "annotations", "instances_train2017.json"), "w") as f:
        json.dump({"images": images, "annotations": anns}, f)
    expected = {"train2017/000000000007": {"00": {"000000": [10.5, 20.25, 50.5, 50.25]},
                                           "02": {"000000": [90, 50, 126, 94]}},
                "train2017/000000000009": {"00": {"000000": [60, 40, 110, 80]}}}
    return expected, "train2017.json"


def fake_ytbb(src):
    rows = ["AAA,1000,0,person,0,present,0.25,0.5,0.3,0.6", "AAA,2000,0,person,0,present,0.3,0.55,0.3,0.6",
            "AAA,3000,0,person,0,absent,-1.0,-1.0,-1.0,-1.0", "BBB,5000,3,dog,1,present,0.1,0.4,0.2,0.7"]
    for ts, (x1, x2, y1, y2) in ((1000, (0.25, 0.5, 0.3, 0.6)), (2000, (0.3, 0.55, 0.3, 0.6))):
        _image(os.path.join(src, "yt_bb_detection_train", "0", f"AAA_{ts}_0_0.jpg"),
               [[x1 * W, y1 * H, x2 * W, y2 * H]])
    with open(os.path.join(src, "yt_bb_detection_train.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")  # BBB's frame was never downloaded
    expected = {"yt_bb_detection_train/0/AAA": {"00": {"000001": [0.25 * W, 0.3 * H, 0.5 * W, 0.6 * H],
                                                       "000002": [0.3 * W, 0.3 * H, 0.55 * W, 0.6 * H]}}}
    return expected, "train.json"


def _xml(path, objects, trackids=True):
    parts = ["<annotation><filename>x</filename><size><width>160</width><height>120</height></size>"]
    for tid, (x1, y1, x2, y2) in objects:
        track = f"<trackid>{tid}</trackid>" if trackids else ""
        parts.append(f"<object>{track}<name>n01</name><bndbox><xmax>{x2}</xmax><xmin>{x1}</xmin><ymax>{y2}</ymax>"
                     f"<ymin>{y1}</ymin></bndbox><occluded>0</occluded></object>")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(parts) + "</annotation>")


def fake_vid(src):
    root = os.path.join(src, "ILSVRC2015")
    rel = os.path.join("train", "ILSVRC2015_VID_train_0000", "vidA")
    expected = {}
    for frame in range(4):
        objs = [(0, (20 + 2 * frame, 30, 60 + 2 * frame, 60))]
        if frame == 2:
            objs.append((1, (100, 60, 140, 100)))  # seen once: dropped as pysot's gen_json does
        _xml(os.path.join(root, "Annotations", "VID", rel, f"{frame:06d}.xml"), objs)
        _image(os.path.join(root, "Data", "VID", rel, f"{frame:06d}.JPEG"), [b for _, b in objs])
        expected.setdefault("ILSVRC2015_VID_train_0000/vidA", {}).setdefault("00", {})[f"{frame:06d}"] = list(
            objs[0][1])
    return expected, "train.json"


def fake_det(src):
    root = os.path.join(src, "ILSVRC2015")
    files = {os.path.join("ILSVRC2013_train", "n0001", "n0001_1"): [(20, 30, 60, 60), (90, 40, 130, 100)],
             os.path.join("ILSVRC2014_train_0000", "ILSVRC2014_train_00000001"): [(50, 50, 50, 80), (30, 20, 90, 70)]}
    for rel, boxes in files.items():
        _xml(os.path.join(root, "Annotations", "DET", "train", rel + ".xml"), list(enumerate(boxes)), trackids=False)
        _image(os.path.join(root, "Data", "DET", "train", rel + ".JPEG"), boxes)
    expected = {"ILSVRC2013_train/n0001_1": {"00": {"000000": [20, 30, 60, 60]}, "01": {"000000": [90, 40, 130, 100]}},
                "ILSVRC2014_train_0000/ILSVRC2014_train_00000001": {"01": {"000000": [30, 20, 90, 70]}}}
    return expected, "train.json"


FAKES = {"got10k": fake_got10k, "lasot": fake_lasot, "coco": fake_coco, "ytbb": fake_ytbb, "vid": fake_vid,
         "det": fake_det}
# which colour each track's object has in the fake images (track index in the frame)
_COLOUR_OF = {"coco": {"00": 0, "02": 2}, "det": {"00": 0, "01": 1}}


@pytest.mark.parametrize("source", sorted(FAKES))
def test_source_layout_becomes_crop511_and_json(tmp_path, source):
    src, out = str(tmp_path / "download"), str(tmp_path / "out")
    expected, json_name = FAKES[source](src)
    stats = prepare(source, src, out, workers=1)
    anno = json.load(open(os.path.join(out, json_name)))
    assert anno.keys() == expected.keys()
    for video, tracks in expected.items():
        assert anno[video].keys() == tracks.keys()
        for track, frames in tracks.items():
            assert anno[video][track].keys() == frames.keys()
            for frame, box in frames.items():
                np.testing.assert_allclose(anno[video][track][frame], box, atol=1e-9)
                colour = COLOURS[_COLOUR_OF.get(source, {}).get(track, 0)]
                _check_crop(crop_path(os.path.join(out, "crop511"), video, int(frame), track), box, colour)
    assert stats.written == sum(len(f) for t in expected.values() for f in t.values()) and stats.reused == 0


def test_resume_skips_finished_crops_and_leaves_no_temp_files(tmp_path):
    src, out = str(tmp_path / "download"), str(tmp_path / "out")
    fake_got10k(src)
    first = prepare("got10k", src, out, workers=1)
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(out, "crop511")) for f in fs)
    crops = [f for f in files if f.endswith(".x.jpg")]
    assert len(crops) == first.written == 4 and not any(os.path.basename(c).startswith(".") for c in files)
    assert sorted(os.path.basename(f) for f in files if f not in crops) == [RECORD_FILE] * 2  # one per video
    umask = os.umask(0)
    os.umask(umask)
    assert all(os.stat(c).st_mode & 0o777 == 0o666 & ~umask for c in files)  # not mkstemp's owner-only mode
    mtimes = {c: os.stat(c).st_mtime_ns for c in files}
    anno = open(os.path.join(out, "train.json")).read()
    second = prepare("got10k", src, out, workers=1)
    assert (second.written, second.reused, second.recut_videos) == (0, 4, 0)
    assert {c: os.stat(c).st_mtime_ns for c in files} == mtimes
    os.remove(crops[0])
    third = prepare("got10k", src, out, workers=2)
    assert (third.written, third.reused) == (1, 3)
    assert open(os.path.join(out, "train.json")).read() == anno


def test_interrupted_crop_write_leaves_only_a_recognisable_temp_file(tmp_path, monkeypatch):
    """A crop write killed between writing and renaming leaves nothing under the final name, only a temporary
    file that toolkit.atomic.temp_files finds (the one helper's naming, so one clean-up finds them all)."""
    path = tmp_path / "video" / "000000.00.x.jpg"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    for name in ("remove", "unlink"):  # a kill also skips the clean-up of the temporary file
        monkeypatch.setattr(os, name, lambda *args, **kwargs: None)
    with pytest.raises(KeyboardInterrupt):
        write_image_atomic(str(path), np.full((8, 8, 3), 100, np.uint8))
    monkeypatch.undo()
    leftovers = temp_files(str(path.parent))
    assert not path.exists() and len(leftovers) == 1 and os.listdir(path.parent) == [os.path.basename(leftovers[0])]


def test_parallel_run_gives_the_same_result(tmp_path):
    src = str(tmp_path / "download")
    fake_det(src)
    prepare("det", src, str(tmp_path / "a"), workers=1)
    prepare("det", src, str(tmp_path / "b"), workers=2)
    assert open(tmp_path / "a" / "train.json").read() == open(tmp_path / "b" / "train.json").read()
    for d, _, files in os.walk(tmp_path / "a" / "crop511"):
        for f in files:
            other = os.path.join(str(tmp_path / "b"), os.path.relpath(os.path.join(d, f), str(tmp_path / "a")))
            assert open(os.path.join(d, f), "rb").read() == open(other, "rb").read()


def _crop_files(out):
    """{path: bytes} of every crop under out/crop511."""
    root = os.path.join(out, "crop511")
    return {os.path.join(d, f): open(os.path.join(d, f), "rb").read() for d, _, fs in os.walk(root) for f in fs
            if f.endswith(".x.jpg")}


def _expected_crop(image_path, box, quality=95):
    """The bytes of the crop that `box` (corners) of the image gives."""
    image = cv2.imread(image_path)
    ok, buf = cv2.imencode(".jpg", crop_like_siamfc(image, box), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes()


def _shift_groundtruth(src, seq="GOT-10k_Train_000002", dx=6):
    """Move every box of a GOT-10k sequence `dx` pixels right (a corrected annotation); return the new corners."""
    gt = os.path.join(src, "train", seq, "groundtruth.txt")
    rows = [[float(v) for v in line.split(",")] for line in open(gt).read().split()]
    with open(gt, "w") as f:
        f.writelines(f"{x + dx:.4f},{y:.4f},{w:.4f},{h:.4f}\n" for x, y, w, h in rows)
    return [_xyxy(x + dx, y, w, h) for x, y, w, h in rows]


def test_a_changed_groundtruth_recuts_that_video_only_around_the_new_boxes(tmp_path):
    src, out = str(tmp_path / "download"), str(tmp_path / "out")
    fake_got10k(src)
    prepare("got10k", src, out, workers=1)
    before = _crop_files(out)
    mtimes = {p: os.stat(p).st_mtime_ns for p in before}
    boxes = _shift_groundtruth(src)
    stats = prepare("got10k", src, out, workers=1)
    crop_root = os.path.join(out, "crop511")
    for frame, box in enumerate(boxes):
        image = os.path.join(src, "train", "GOT-10k_Train_000002", f"{frame + 1:08d}.jpg")
        path = crop_path(crop_root, "train/GOT-10k_Train_000002", frame, "00")
        assert open(path, "rb").read() == _expected_crop(image, box) != before[path]
    assert (stats.written, stats.reused) == (2, 2)
    assert (stats.recut_videos, stats.recut_reasons) == (1, {"annotation changed": 1})
    anno = json.load(open(os.path.join(out, "train.json")))
    np.testing.assert_allclose(anno["train/GOT-10k_Train_000002"]["00"]["000000"], boxes[0])
    untouched = [p for p in before if "GOT-10k_Train_000001" in p]
    assert len(untouched) == 2 and all(os.stat(p).st_mtime_ns == mtimes[p] for p in untouched)


def test_another_quality_recuts_every_crop_and_the_summary_says_so(tmp_path, capsys):
    from siamkpn.cli.prepare import main

    src, out, fresh = str(tmp_path / "download"), str(tmp_path / "out"), str(tmp_path / "fresh")
    fake_got10k(src)
    assert main(["got10k", "--src", src, "--out", out, "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["got10k", "--src", src, "--out", out, "--workers", "2", "--quality", "60", "--no-progress"]) == 0
    line = capsys.readouterr().out
    assert "got10k: 4 crops written, 0 kept from an earlier run, 2 videos re-cut (quality 95 -> 60: 2)" in line
    prepare("got10k", src, fresh, workers=1, quality=60, progress=False)
    recut = {os.path.relpath(p, out): data for p, data in _crop_files(out).items()}
    assert recut == {os.path.relpath(p, fresh): data for p, data in _crop_files(fresh).items()}


def test_crops_without_a_record_are_recut_and_an_interrupted_recut_resumes(tmp_path, monkeypatch):
    """Crops of an earlier version (no record) are not trusted; a re-cut stopped half-way resumes: every crop it
    left was cut from the new annotation, the missing ones are cut next time."""
    from siamkpn.datasets.prepare import runner

    src, out = str(tmp_path / "download"), str(tmp_path / "out")
    fake_got10k(src)
    prepare("got10k", src, out, workers=1)
    records = [os.path.join(d, RECORD_FILE) for d, _, fs in os.walk(os.path.join(out, "crop511")) if RECORD_FILE in fs]
    for record in records:
        os.remove(record)
    again = prepare("got10k", src, out, workers=1)
    assert (again.written, again.reused) == (4, 0)
    assert (again.recut_videos, again.recut_reasons) == (2, {"no record of their inputs": 2})
    boxes = _shift_groundtruth(src)
    real_write, calls = runner.write_image_atomic, []

    def killed_after_one(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(args[0])
        real_write(*args, **kwargs)

    monkeypatch.setattr(runner, "write_image_atomic", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        prepare("got10k", src, out, workers=1)
    monkeypatch.undo()
    resumed = prepare("got10k", src, out, workers=1)
    for frame, box in enumerate(boxes):
        image = os.path.join(src, "train", "GOT-10k_Train_000002", f"{frame + 1:08d}.jpg")
        path = crop_path(os.path.join(out, "crop511"), "train/GOT-10k_Train_000002", frame, "00")
        assert open(path, "rb").read() == _expected_crop(image, box)
    assert (resumed.written, resumed.reused, resumed.recut_videos) == (1, 3, 0)  # only the missing crop is cut


def _ytbb_row(ytid, cls="0"):
    return f"{ytid},1000,{cls},person,0,present,0.25,0.5,0.3,0.6"


@pytest.mark.parametrize("source, bad", [("ytbb", "youtube id '../../../x'"), ("ytbb", "class id '../../../x'"),
                                         ("coco", "image file_name '../x.jpg'")])
def test_a_name_from_data_that_leaves_its_folder_is_refused_and_nothing_is_written(tmp_path, capsys, source, bad):
    from helpers import tool_error  # here: tests/test_docs_commands.py loads this module for its fakes
    from siamkpn.cli.prepare import main

    src, out = tmp_path / "download", tmp_path / "out"
    if source == "ytbb":
        row = _ytbb_row("../../../x") if "youtube" in bad else _ytbb_row("AAA", "../../../x")
        # the frame a bad youtube id points at (tmp_path/x_1000_0_0.jpg) exists: the old code cut it into out/x/
        _image(str(tmp_path / "x_1000_0_0.jpg"), [[40, 36, 80, 72]])
        (src / "yt_bb_detection_train" / "0").mkdir(parents=True)
        (src / "yt_bb_detection_train.csv").write_text(row + "\n")
        where = f"{src / 'yt_bb_detection_train.csv'}:1"
    else:
        fake_coco(str(src))
        anno = src / "annotations" / "instances_train2017.json"
        data = json.loads(anno.read_text())
        data["images"][0]["file_name"] = "../x.jpg"
        anno.write_text(json.dumps(data))
        _image(str(src / "x.jpg"), [[40, 36, 80, 72]])
        where = str(anno)
    before = sorted(p for p in tmp_path.rglob("*"))
    line = tool_error(capsys, main, [source, "--src", str(src), "--out", str(out), "--workers", "1"])
    assert f"{where}: {bad} holds a path separator" in line, line
    assert sorted(p for p in tmp_path.rglob("*")) == before and not out.exists()


def test_unsafe_video_keys_are_refused_whatever_the_source(tmp_path):
    from siamkpn.datasets.prepare.runner import CropJob, run_jobs
    from toolkit.names import UnsafeNameError

    job = CropJob(str(tmp_path / "a.jpg"), "train/../../x", [("00", 0, [1, 1, 9, 9])], source="list.txt")
    with pytest.raises(UnsafeNameError, match=r"list.txt: video 'train/../../x': component '..' is '..'"):
        run_jobs([job], str(tmp_path / "crop511"), progress=False)
    assert not (tmp_path / "crop511").exists()
    with pytest.raises(UnsafeNameError, match=r"--split: split '../x' holds a path separator"):
        prepare("got10k", str(tmp_path), str(tmp_path / "out"), split="../x")


def test_unreadable_image_is_skipped_with_a_warning(tmp_path, caplog):
    src, out = str(tmp_path / "download"), str(tmp_path / "out")
    fake_got10k(src)
    bad = os.path.join(src, "train", "GOT-10k_Train_000002", "00000002.jpg")
    with open(bad, "wb") as f:
        f.write(b"\x00garbage")
    with caplog.at_level(logging.WARNING):
        stats = prepare("got10k", src, out, workers=1)
    assert stats.failed_images == 1 and stats.written == 3
    assert any(bad in r.getMessage() for r in caplog.records)
    assert list(json.load(open(os.path.join(out, "train.json")))["train/GOT-10k_Train_000002"]["00"]) == ["000000"]


def test_malformed_annotation_names_file_and_line(tmp_path):
    src = str(tmp_path / "download")
    fake_got10k(src)
    gt = os.path.join(src, "train", "GOT-10k_Train_000002", "groundtruth.txt")
    with open(gt, "a") as f:
        f.write("1,2,three,4\n")
    with pytest.raises(ValueError, match=f"{gt}:3"):
        prepare("got10k", src, str(tmp_path / "out"))
    with pytest.raises(ValueError, match="unknown dataset source 'imagenet'"):
        prepare("imagenet", src, str(tmp_path / "out"))


def test_command_line(tmp_path, capsys):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "prepare_dataset.py")
    spec = util.spec_from_file_location("prepare_dataset", path)
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src, out = str(tmp_path / "download"), str(tmp_path / "out")
    fake_lasot(src)
    assert module.main(["lasot", "--src", src, "--out", out, "--workers", "1"]) == 0
    assert "lasot: 2 crops written" in capsys.readouterr().out  # 2 of 3 frames survive the occlusion flags
    assert os.path.isfile(os.path.join(out, "train.json"))
    assert module.main(["lasot", "--src", str(tmp_path / "nowhere"), "--out", out]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_training_set_reads_a_prepared_dataset(tmp_path):
    src = str(tmp_path / "download")
    fake_got10k(src)
    prepare("got10k", src, str(tmp_path / "training_dataset" / "got10k"), workers=1)
    cfg = get_cfg()
    cfg.DATASET.NAMES = ["GOT10K"]  # default ROOT/ANNO: training_dataset/got10k/{crop511,train.json}
    cfg.DATASET.VIDEOS_PER_EPOCH, cfg.TRAIN.EPOCH, cfg.DATASET.NEG = 6, 1, 0.0
    cfg.DATASET.SEARCH.COLOR = 0.0
    ds = TrainingSet(cfg, data_root=str(tmp_path), seed=0)
    for i in range(len(ds)):
        item = ds[i]
        search = item["search"].transpose(1, 2, 0)
        ys, xs = np.nonzero(np.abs(search - np.array(COLOURS[0])).sum(axis=2) < 120)
        box = item["bbox"]
        assert abs((xs.min() + xs.max()) / 2 - (box[0] + box[2]) / 2) < 2.5
        assert abs((ys.min() + ys.max()) / 2 - (box[1] + box[3]) / 2) < 2.5
