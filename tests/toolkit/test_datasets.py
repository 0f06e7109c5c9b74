"""Benchmark loaders: pysot json vs native layouts give the same videos; every native layout; clear errors."""
from __future__ import annotations

import json
import math
import os
import re

import cv2
import numpy as np
import pytest

from toolkit.datasets import DatasetError, DatasetFactory, FrameReadError, otb, uav
from toolkit.names import UnsafeNameError

create = DatasetFactory.create_dataset


def _same_videos(a, b, tags=False):
    assert [v.name for v in a] == [v.name for v in b]
    for va, vb in zip(a, b):
        assert va.gt_traj == vb.gt_traj and va.img_names == vb.img_names and va.init_rect == vb.init_rect
        assert len(va) == len(vb) and va.video_dir == vb.video_dir
        if tags:
            assert va.tags.keys() == vb.tags.keys()
            for k in va.tags:
                np.testing.assert_array_equal(va.tags[k], vb.tags[k])


# ------------------------------------------------------------------ shared fixture benchmarks

def test_otb_json_and_native_layouts_agree(eval_fixture_dir):
    root = eval_fixture_dir / "otb"
    js = create("OTB100", root, json_name="OTBSynth")
    native = create("OTB100", root, layout="native")
    assert (js.layout, native.layout, js.name) == ("json", "native", "OTB100")
    _same_videos(js, native)
    assert create("OTB100", root).layout == "json"  # the only pysot json in root is found
    assert [len(v) for v in js] == [60, 85, 120, 150, 200, 97]
    seq2 = native["Seq2"]
    assert seq2.gt_traj[20:23] == [[0.0, 0.0, 0.0, 0.0]] * 3
    assert native["Seq4"].gt_traj[0] == [379.92, 58.24, 39.54, 134.51]
    assert js.attr["ALL"] == [f"Seq{i}" for i in range(1, 7)] and "Seq1" in js.attr["FM"]
    assert js[0] is js["Seq1"] and [v.name for v in js] == sorted(js.videos)


def test_vot_json_and_native_layouts_agree(eval_fixture_dir):
    root = eval_fixture_dir / "vot"
    js = create("VOT2018", root)
    native = create("VOT2018", root, layout="native")
    assert js.layout == "json" and native.layout == "native"
    _same_videos(js, native, tags=True)
    ref = json.loads((eval_fixture_dir / "eval_ref.json").read_text())["vot"]["derived_empty_tag"]
    for v in native:
        assert v.tags["empty"].tolist() == ref[v.name]
        assert v.tags["all"].dtype == np.uint8 and v.tags["all"].sum() == len(v)
        assert len(v.gt_traj[0]) == 8 and v.result_kind == "vot"
    assert native.tags == ["all", "camera_motion", "illum_change", "motion_change", "size_change", "occlusion",
                           "empty"]
    assert native["vseq1"].select_tag("occlusion", 0, 10).shape == (10,)


def test_frames_are_lazy_bgr_and_sized(eval_fixture_dir):
    video = create("VOT2018", eval_fixture_dir / "vot")["vseq2"]
    assert video._size is None  # nothing read at load time
    assert (video.width, video.height) == (640, 360)
    img, gt = video[3]
    assert img.shape == (360, 640, 3) and img.dtype == np.uint8 and gt == video.gt_traj[3]
    frames = iter(video)
    img0, gt0 = next(frames)
    assert img0.shape == (360, 640, 3) and gt0 == video.gt_traj[0]


def test_load_tracker_reads_fixture_results(eval_fixture_dir):
    otb = create("OTB100", eval_fixture_dir / "otb", json_name="OTBSynth")
    path = eval_fixture_dir / "results" / "OTBSynth"
    video = otb["Seq1"]
    video.load_tracker(path, ["TrkGood", "TrkBad"])
    assert sorted(video.pred_trajs) == ["TrkBad", "TrkGood"] and len(video.pred_trajs["TrkGood"]) == 60
    assert video.load_tracker(path, "TrkMid", store=False) == [
        [float(x) for x in s.split(",")] for s in (path / "TrkMid/Seq1.txt").read_text().split()]
    video.load_tracker(path)
    assert sorted(video.tracker_names) == ["TrkBad", "TrkGood", "TrkMid"]
    vot = create("VOT2018", eval_fixture_dir / "vot")
    reps = vot["vseq1"].load_tracker(eval_fixture_dir / "results" / "VOT2018", "TrkPoly", store=False)
    assert len(reps) == 1 and reps[0][0] == [1.0] and len(reps[0]) == 130
    with pytest.raises(FileNotFoundError, match="Seq1"):
        video.load_tracker(path, "NoSuchTracker")


def test_factory_errors():
    with pytest.raises(KeyError, match="valid names: .*OTB100.*VOT2018"):
        create("OTB2000", ".")
    with pytest.raises(DatasetError, match="not a directory"):
        create("OTB100", "/nonexistent/root")


# ------------------------------------------------------------------ native layouts built in tmp_path

def _img(path, w=8, h=6):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 128, np.uint8))


def _frames(folder, n, fmt="{:08d}.jpg", start=1):
    for i in range(start, start + n):
        _img(folder / fmt.format(i))


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _boxes(n, sep=","):
    return "".join(sep.join(str(v) for v in (i, i + 1, 5, 4)) + "\n" for i in range(n))


def test_otb_native_quirks_multi_target_and_subsets(tmp_path, monkeypatch):
    _frames(tmp_path / "Basketball/img", 3, "{:04d}.jpg")
    _write(tmp_path / "Basketball/groundtruth_rect.txt", "1\t2\t3\t4\n2 3 4 5\n3,4,5,6\n")
    _frames(tmp_path / "Jogging/img", 2, "{:04d}.jpg")
    _write(tmp_path / "Jogging/groundtruth_rect.1.txt", _boxes(2))
    _write(tmp_path / "Jogging/groundtruth_rect.2.txt", _boxes(2))
    _frames(tmp_path / "Human4/img", 2, "{:04d}.jpg")
    _write(tmp_path / "Human4/groundtruth_rect.1.txt", "")
    _write(tmp_path / "Human4/groundtruth_rect.2.txt", _boxes(2))
    # Tiger1 annotates all 354 frames but the benchmark starts at frame 6; David's file covers 300..770.
    (tmp_path / "Tiger1/img").mkdir(parents=True)
    for i in range(1, 355):
        (tmp_path / f"Tiger1/img/{i:04d}.jpg").touch()  # never read: frames load lazily
    _write(tmp_path / "Tiger1/groundtruth_rect.txt", _boxes(354))
    (tmp_path / "David/img").mkdir(parents=True)
    for i in range(1, 771):
        (tmp_path / f"David/img/{i:04d}.jpg").touch()
    _write(tmp_path / "David/groundtruth_rect.txt", _boxes(471))
    ds = create("OTB100", tmp_path)
    assert list(ds.videos) == ["Basketball", "David", "Human4-2", "Jogging-1", "Jogging-2", "Tiger1"]
    assert ds["Basketball"].gt_traj == [[1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]]
    assert ds["Basketball"].img_names[0] == str(tmp_path / "Basketball/img/0001.jpg")
    tiger = ds["Tiger1"]
    assert len(tiger) == 349 and tiger.img_names[0].endswith("0006.jpg") and tiger.gt_traj[0] == [5, 6, 5, 4]
    david = ds["David"]
    assert len(david) == 471 and david.img_names[0].endswith("0300.jpg") and david.img_names[-1].endswith("0770.jpg")
    assert ds["Jogging-1"].img_names == ds["Jogging-2"].img_names
    with pytest.raises(FrameReadError, match="cannot decode .*Tiger1/img/0006.jpg"):
        tiger.load_frame(0)
    with pytest.raises(DatasetError, match="OTB2013: sequences missing"):
        create("OTB2013", tmp_path)
    # A full-benchmark json serves the subsets.
    meta = {v.name: {"video_dir": v.video_dir, "init_rect": v.gt_traj[0], "attr": ["X"],
                     "img_names": [p[len(str(tmp_path)) + 1:] for p in v.img_names], "gt_rect": v.gt_traj}
            for v in ds}
    _write(tmp_path / "OTB100.json", json.dumps(meta))
    with pytest.raises(DatasetError, match="subset are not in the json"):
        create("OTB50", tmp_path)
    json_ds = create("OTB100", tmp_path)
    _same_videos(json_ds, ds)
    assert json_ds.attr["X"] == list(json_ds.videos)
    monkeypatch.setitem(otb.NAMES, "OTB2013", ["Basketball", "Jogging-1"])
    _same_videos(create("OTB2013", tmp_path), create("OTB2013", tmp_path, layout="native"))
    assert list(create("OTB2013", tmp_path).videos) == ["Basketball", "Jogging-1"]


def test_vot_native_variants_and_errors(tmp_path):
    poly = "".join(f"{i},{i},{i + 10},{i},{i + 10},{i + 8},{i},{i + 8}\n" for i in range(3))
    _write(tmp_path / "list.txt", "a\nb\n")
    _write(tmp_path / "a/groundtruth.txt", poly)
    _frames(tmp_path / "a/color", 3)
    _write(tmp_path / "a/occlusion.label", "0\n1\n0\n")
    _write(tmp_path / "b/groundtruth.txt", _boxes(3))  # 4-value boxes are kept as they are
    _frames(tmp_path / "b", 3)
    ds = create("VOT2019", tmp_path)
    a, b = ds["a"], ds["b"]
    assert a.img_names[0].endswith("a/color/00000001.jpg") and b.img_names[2].endswith("b/00000003.jpg")
    assert a.tags["occlusion"].tolist() == [0, 1, 0] and a.tags["camera_motion"].tolist() == [0, 0, 0]
    assert a.tags["empty"].tolist() == [0, 1, 1, 1, 1, 0]
    assert a.init_rect == [0.0, 0.0, 10.0, 8.0] and b.gt_traj[1] == [1, 2, 5, 4]
    _write(tmp_path / "a/size_change.tag", "0\n1\n")
    with pytest.raises(DatasetError, match=r"size_change.tag: 2 flags, expected 3"):
        create("VOT2019", tmp_path)
    (tmp_path / "a/size_change.tag").unlink()
    _write(tmp_path / "a/groundtruth.txt", poly + "1,2,3\n")
    with pytest.raises(DatasetError, match=r"a/groundtruth.txt, line 4: 3 values"):
        create("VOT2019", tmp_path)
    _write(tmp_path / "a/groundtruth.txt", poly + poly)
    with pytest.raises(DatasetError, match=r"3 frames but .*has 6 lines"):
        create("VOT2019", tmp_path)
    _write(tmp_path / "list.txt", "a\nmissing\n")
    with pytest.raises(DatasetError, match=r"list.txt, line 2: .*missing/groundtruth.txt not found"):
        create("VOT2019", tmp_path)


def test_vot_longterm_native(tmp_path):
    _write(tmp_path / "list.txt", "car1\n")
    _write(tmp_path / "car1/groundtruth.txt", "1,2,3,4\nnan,nan,nan,nan\n2,3,4,5\n")
    _frames(tmp_path / "car1/color", 3)
    v = create("VOT2018-LT", tmp_path)["car1"]
    assert v.gt_traj == [[1, 2, 3, 4], [0], [2, 3, 4, 5]] and v.absent.tolist() == [False, True, False]
    assert v.result_kind == "longterm"
    _write(tmp_path / "car1/groundtruth.txt", "1,2,3,4\nnan,2,3,4\n2,3,4,5\n")
    with pytest.raises(DatasetError, match="line 2: NaN"):
        create("VOT2018-LT", tmp_path)


def test_lasot_native(tmp_path):
    for seq in ("airplane-1", "airplane-2"):
        d = tmp_path / "airplane" / seq
        _frames(d / "img", 4)
        _write(d / "groundtruth.txt", _boxes(4))
        _write(d / "full_occlusion.txt", "0,1,0,0")
        _write(d / "out_of_view.txt", "0,0,0,1\n")
    _write(tmp_path / "testing_set.txt", "airplane-2\n")
    ds = create("LaSOT", tmp_path)
    assert list(ds.videos) == ["airplane-2"]
    v = ds["airplane-2"]
    assert v.absent.tolist() == [False, True, False, True] and v.absent.dtype == bool
    assert v.video_dir == "airplane/airplane-2" and len(v) == 4 and (v.width, v.height) == (8, 6)
    _write(tmp_path / "airplane/airplane-2/out_of_view.txt", "0,0,2,1")
    with pytest.raises(DatasetError, match="out_of_view.txt, line 1: flag must be 0 or 1"):
        create("LaSOT", tmp_path)
    _write(tmp_path / "testing_set.txt", "airplane-3\n")
    with pytest.raises(DatasetError, match="airplane-3"):
        create("LaSOT", tmp_path)


def test_got10k_val_and_test(tmp_path):
    val = tmp_path / "val"
    _write(val / "list.txt", "GOT-10k_Val_000001\n")
    _frames(val / "GOT-10k_Val_000001", 3)
    _write(val / "GOT-10k_Val_000001/groundtruth.txt", _boxes(3))
    _write(val / "GOT-10k_Val_000001/absence.label", "0\n0\n1\n")
    test = tmp_path / "test"
    _write(test / "list.txt", "GOT-10k_Test_000001\n")
    _frames(test / "GOT-10k_Test_000001", 3)
    _write(test / "GOT-10k_Test_000001/groundtruth.txt", "1,2,3,4\n")
    v = create("GOT-10k", tmp_path)["GOT-10k_Val_000001"]  # the splits' parent -> val
    assert v.absent.tolist() == [False, False, True] and v.result_kind == "got10k"
    t = create("GOT-10k-test", tmp_path)["GOT-10k_Test_000001"]
    assert t.gt_traj[0] == [1, 2, 3, 4] and all(math.isnan(x) for x in t.gt_traj[2]) and len(t) == 3
    assert create("GOT-10k", test)["GOT-10k_Test_000001"].img_names == t.img_names
    _write(val / "GOT-10k_Val_000001/groundtruth.txt", _boxes(2))
    with pytest.raises(DatasetError, match="2 boxes for 3 frames"):
        create("GOT-10k-val", tmp_path)


def test_uav123_native_subsequences(tmp_path, monkeypatch):
    monkeypatch.setitem(uav.SUBSEQ_START, "bird1_2", 4)
    _frames(tmp_path / "data_seq/UAV123/bird1", 6, "{:06d}.jpg")
    _frames(tmp_path / "data_seq/UAV123/car1_s", 2, "{:06d}.jpg")
    _write(tmp_path / "anno/UAV123/bird1_1.txt", _boxes(3))
    _write(tmp_path / "anno/UAV123/bird1_2.txt", "1,2,3,4\nNaN,NaN,NaN,NaN\n3,4,5,6\n")
    _write(tmp_path / "anno/UAV123/car1_s.txt", _boxes(2))
    ds = create("UAV123", tmp_path)
    assert list(ds.videos) == ["bird1_1", "bird1_2", "car1_s"]
    b2 = ds["bird1_2"]
    assert [p[-10:] for p in b2.img_names] == ["000004.jpg", "000005.jpg", "000006.jpg"]
    assert b2.absent.tolist() == [False, True, False] and all(math.isnan(x) for x in b2.gt_traj[1])
    assert ds["car1_s"].video_dir == "data_seq/UAV123/car1_s"
    _write(tmp_path / "anno/UAV123/bird1_2.txt", _boxes(4))
    with pytest.raises(DatasetError, match="needs frames 4..7"):
        create("UAV123", tmp_path)
    with pytest.raises(DatasetError, match="anno/UAV20L"):
        create("UAV20L", tmp_path)


def test_nfs_native_subsamples_240fps_annotation(tmp_path):
    d = tmp_path / "Gymnastics" / "30"
    _frames(d / "Gymnastics", 3, "{:05d}.jpg")
    lines = "".join(f'1 {10 + i} {20 + i} {40 + i} {60 + i} {i + 1} 0 0 0 "person"\n' for i in range(24))
    _write(d / "Gymnastics.txt", lines)
    v = create("NFS30", tmp_path)["Gymnastics"]
    assert v.gt_traj == [[10, 20, 30, 40], [18, 28, 30, 40], [26, 36, 30, 40]]
    _write(d / "Gymnastics.txt", '1 a 2 3 4 1 0 0 0 "x"\n')
    with pytest.raises(DatasetError, match="Gymnastics.txt, line 1"):
        create("NFS30", tmp_path)


def test_trackingnet_native_test_split(tmp_path):
    _frames(tmp_path / "TEST/frames/seqA", 11, "{}.jpg", start=0)
    _write(tmp_path / "TEST/anno/seqA.txt", "1,2,3,4\n")
    v = create("TrackingNet", tmp_path)["seqA"]
    assert len(v) == 11 and v.img_names[2].endswith("frames/seqA/2.jpg") and v.img_names[10].endswith("10.jpg")
    assert v.gt_traj[0] == [1, 2, 3, 4] and math.isnan(v.gt_traj[5][0])


# ------------------------------------------------------------------ malformed inputs

def test_ground_truth_errors_name_file_and_line(tmp_path):
    _frames(tmp_path / "S/img", 3, "{:04d}.jpg")
    cases = {
        "1,2,3,4\n1,2,x,4\n1,2,3,4\n": r"groundtruth_rect.txt, line 2: not numbers",
        "1,2,3,4\nnan,2,3,4\n1,2,3,4\n": r"groundtruth_rect.txt, line 2: NaN",
        "1,2,3,4\n\n1,2,3,4\n": r"line 2: blank line",
        "1,2,3,4\n1,2,3,4\n": r"2 boxes for 3 frames",
        "": r"empty ground-truth file",
    }
    for text, pattern in cases.items():
        _write(tmp_path / "S/groundtruth_rect.txt", text)
        with pytest.raises(DatasetError, match=pattern):
            create("OTB100", tmp_path)
    (tmp_path / "S/groundtruth_rect.txt").unlink()
    with pytest.raises(DatasetError, match="S: frames in img/ but no groundtruth_rect.txt"):
        create("OTB100", tmp_path)


def test_missing_and_corrupt_frames_name_the_file(tmp_path):
    _frames(tmp_path / "S/img", 2, "{:04d}.jpg")
    _write(tmp_path / "S/groundtruth_rect.txt", _boxes(2))
    v = create("OTB100", tmp_path)["S"]
    (tmp_path / "S/img/0002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(FrameReadError, match="corrupt.*S/img/0002.jpg"):
        v.load_frame(1)
    with pytest.raises(FrameReadError, match="S/img/0002.jpg"):
        create("OTB100", tmp_path, load_img=True)
    (tmp_path / "S/img/0001.jpg").unlink()
    with pytest.raises(FrameReadError, match="not found: .*S/img/0001.jpg"):
        _ = v.width


def test_truncated_frames_are_an_error_naming_the_file(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    (tmp_path / "S/img").mkdir(parents=True)
    for name, ext in (("0001", ".jpg"), ("0002", ".png")):
        data = cv2.imencode(ext, img)[1].tobytes()
        (tmp_path / f"S/img/{name}.jpg").write_bytes(data[: len(data) * 2 // 3])  # cut short, as by a full disk
    _write(tmp_path / "S/groundtruth_rect.txt", _boxes(2))
    v = create("OTB100", tmp_path)["S"]
    # cv2.imread alone returns a full-size frame for the cut JPEG (grey rows) and the test would track it
    with pytest.raises(FrameReadError, match=r"truncated JPEG.*S/img/0001\.jpg"):
        v.load_frame(0)
    with pytest.raises(FrameReadError, match=r"truncated PNG.*S/img/0002\.jpg"):  # the content decides, not the name
        v.load_frame(1)
    with pytest.raises(FrameReadError, match=r"S/img/0001\.jpg"):
        create("OTB100", tmp_path, load_img=True)


def test_json_errors(tmp_path):
    _write(tmp_path / "VOT2018.json", '{"v": {"img_names": ["a.jpg"], "gt_rect": [[1, 2, 3]]}}')
    with pytest.raises(DatasetError, match=r"VOT2018.json: video 'v': frame 0: 3 values"):
        create("VOT2018", tmp_path)
    _write(tmp_path / "VOT2018.json", '{"v": {"img_names": ["a.jpg", "b.jpg"], "gt_rect": [[1, 2, 3, 4]]}}')
    with pytest.raises(DatasetError, match="2 frames but 1 ground-truth"):
        create("VOT2018", tmp_path)
    _write(tmp_path / "VOT2018.json", '{"v": {"img_names": ["a.jpg"]}}')
    with pytest.raises(DatasetError, match="has no 'gt_rect'"):
        create("VOT2018", tmp_path)
    _write(tmp_path / "VOT2018.json", '{"v": [1, 2,')
    with pytest.raises(DatasetError, match="VOT2018.json, line 1: invalid json"):
        create("VOT2018", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no dataset json"):
        create("OTB100", tmp_path / "empty", layout="json")


def test_longterm_json_nan_and_marker_frames(tmp_path):
    meta = {"car1": {"video_dir": "car1", "init_rect": [1, 2, 3, 4], "img_names": ["car1/1.jpg"] * 3,
                     "gt_rect": [[1, 2, 3, 4], [math.nan] * 4, [0]]}}
    _write(tmp_path / "VOT2018-LT.json", json.dumps(meta))
    v = create("VOT2018-LT", tmp_path)["car1"]
    assert v.gt_traj == [[1, 2, 3, 4], [0], [0]] and v.absent.tolist() == [False, True, True]


def test_dataset_root_resolution(tmp_path, monkeypatch):
    from toolkit.datasets import resolve_dataset_root

    assert resolve_dataset_root("VOT2018", "/data/vot") == "/data/vot"
    monkeypatch.setenv("SIAMKPN_DATASETS", str(tmp_path))
    assert resolve_dataset_root("VOT2018") == str(tmp_path / "VOT2018")
    monkeypatch.delenv("SIAMKPN_DATASETS")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="SIAMKPN_DATASETS"):
        resolve_dataset_root("OTB100")
    (tmp_path / "testing_dataset" / "OTB100").mkdir(parents=True)
    assert resolve_dataset_root("OTB100") == "testing_dataset/OTB100"


# ------------------------------------------------------------------ names from data are data, not paths

JSON_LOADERS = ("OTB100", "VOT2018", "VOT2018-LT", "UAV123", "LaSOT", "GOT-10k", "NFS30", "TrackingNet")
UNSAFE = ("../../x", "/abs/victim", "a/b", "a\\b", "..", ".", "", "x\x00y")


@pytest.mark.parametrize("dataset", JSON_LOADERS)
@pytest.mark.parametrize("name", UNSAFE)
def test_a_video_name_that_is_a_path_is_refused_naming_the_json(tmp_path, dataset, name):
    meta = {"ok": {"video_dir": "ok", "img_names": ["ok/1.jpg"], "gt_rect": [[1, 2, 3, 4]]},
            name: {"video_dir": "ok", "img_names": ["ok/1.jpg"], "gt_rect": [[1, 2, 3, 4]]}}
    _write(tmp_path / f"{dataset}.json", json.dumps(meta))
    with pytest.raises(UnsafeNameError) as err:
        create(dataset, tmp_path)
    assert str(err.value).startswith(f"{tmp_path / dataset}.json: video name {name!r} ")


def _one_frame_json(path, img, video_dir="ok"):
    _write(path, json.dumps({"v": {"video_dir": video_dir, "img_names": [img], "gt_rect": [[1, 2, 3, 4]]}}))


@pytest.mark.parametrize("img", ["../elsewhere/1.jpg", "ok/../../1.jpg", "/etc/passwd", ""])
def test_json_image_names_must_stay_inside_the_dataset_root(tmp_path, img):
    root = tmp_path / "root"
    _one_frame_json(root / "OTB100.json", img)
    with pytest.raises(UnsafeNameError, match=rf"OTB100.json: video 'v': image {re.escape(repr(img))} "):
        create("OTB100", root)
    _one_frame_json(root / "OTB100.json", "ok/1.jpg", video_dir="../../up")
    with pytest.raises(UnsafeNameError, match=r"OTB100.json: video 'v': video_dir '../../up' leads to .* outside"):
        create("OTB100", root)
    # sub-paths are how pysot jsons name frames; only the text is normalised, so a symlinked root still reads
    (tmp_path / "link").symlink_to(root)
    for ok in ("ok/img/1.jpg", "ok/../ok/1.jpg", f"{tmp_path}/link/ok/1.jpg"):
        _one_frame_json(root / "OTB100.json", ok)
        assert create("OTB100", tmp_path / "link")["v"].img_names == [os.path.join(tmp_path / "link", ok)]


def test_attribute_names_that_are_paths_are_refused(tmp_path):
    """Attributes name the plot files of siamkpn-eval --plot (``success_plot_<attr>.png``)."""
    meta = {"v": {"img_names": ["v/1.jpg"], "gt_rect": [[1, 2, 3, 4]], "attr": ["IV", "../../x"]}}
    _write(tmp_path / "OTB100.json", json.dumps(meta))
    with pytest.raises(UnsafeNameError, match=r"OTB100.json: video 'v': attribute '../../x' holds a path separator"):
        create("OTB100", tmp_path)
    meta["v"]["attr"] = ["IV", "Out-of-View", "Scale Variation"]  # UAV123's attribute names are fine
    _write(tmp_path / "OTB100.json", json.dumps(meta))
    assert create("OTB100", tmp_path).attr["Out-of-View"] == ["v"]


def test_duplicate_keys_in_a_json_are_refused_naming_the_key_and_file(tmp_path):
    entry = '{"img_names": ["%s/1.jpg"], "gt_rect": [[1, 2, 3, 4]]}'
    _write(tmp_path / "OTB100.json", '{"a": %s, "b": %s, "a": %s}' % (entry % "a", entry % "b", entry % "c"))
    with pytest.raises(DatasetError, match=r"OTB100.json: duplicate video key 'a'"):
        create("OTB100", tmp_path)
    _write(tmp_path / "OTB100.json", '{"a": {"img_names": ["a/1.jpg"], "gt_rect": [[1, 2, 3, 4]], '
                                     '"gt_rect": [[5, 6, 7, 8]]}}')
    with pytest.raises(DatasetError, match=r"OTB100.json: video 'a': duplicate key 'gt_rect'"):
        create("OTB100", tmp_path)


@pytest.mark.parametrize("dataset, list_name", [("VOT2018", "list.txt"), ("GOT-10k", "list.txt"),
                                                 ("LaSOT", "testing_set.txt")])
def test_list_file_names_that_are_paths_are_refused_naming_file_and_line(tmp_path, dataset, list_name):
    root = tmp_path / "root"
    _write(tmp_path / "victim/groundtruth.txt", _boxes(1))  # what '../victim' would reach
    _write(root / "a/groundtruth.txt", _boxes(1))
    _frames(root / "a/color", 1)
    _frames(root / "a/img", 1)
    _write(root / list_name, "a\n../victim\n")
    with pytest.raises(UnsafeNameError, match=rf"{list_name}(, line 2)?: sequence name '../victim' holds a path"):
        create(dataset, root, layout="native")


def test_folder_names_that_are_not_plain_names_are_refused(tmp_path):
    _frames(tmp_path / "a\\b/img", 1, "{:04d}.jpg")  # one folder on POSIX, a path elsewhere
    _write(tmp_path / "a\\b/groundtruth_rect.txt", _boxes(1))
    with pytest.raises(UnsafeNameError, match=r"video name 'a\\\\b' holds a path separator"):
        create("OTB100", tmp_path)
