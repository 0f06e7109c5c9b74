"""Training pairs from pysot's prepared layout: sampling rules, geometry of the labels, robustness."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from siamkpn.config import get_cfg
from siamkpn.datasets.prepare.crop import crop_like_siamfc, crop_path
from siamkpn.datasets.synthetic import SceneConfig, render_video
from siamkpn.datasets.synthetic_draw import paste
from siamkpn.datasets.synthetic_sets import train_box
from siamkpn.datasets.training_set import TrainingSet, resolve_data_root


def _cfg(names=("SYNTH",), **data):
    cfg = get_cfg()
    cfg.DATASET.NAMES = list(names)
    cfg.DATASET.VIDEOS_PER_EPOCH = data.pop("per_epoch", 0)
    cfg.TRAIN.EPOCH = data.pop("epochs", 1)
    for key, value in data.items():
        cfg.DATASET[key] = value
    return cfg


def _write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)


def _video(frames, box=(10, 10, 40, 50), step=1):
    return {"00": {f"{i * step:06d}": list(box) for i in range(frames)}}


# ---------------------------------------------------------------- sampling rules (no images needed)

def test_positive_pairs_respect_frame_range(tmp_path):
    # frame numbers step by 3: FRAME_RANGE counts positions in the sorted frame list (pysot's rule)
    _write_json(str(tmp_path / "train.json"), {f"v{i}": _video(40, step=3) for i in range(4)})
    cfg = _cfg(per_epoch=600)
    cfg.DATASET.SYNTH.FRAME_RANGE = 5
    ds = TrainingSet(cfg, data_root=str(tmp_path), seed=3)
    gaps = []
    for i in range(len(ds)):
        pair = ds.plan(i)
        if pair.neg:
            continue
        assert pair.template.video == pair.search.video and pair.template.track == pair.search.track
        assert pair.template.path.startswith(str(tmp_path / "crop511"))
        gaps.append((pair.search.frame - pair.template.frame) // 3)
    gaps = np.array(gaps)
    assert np.abs(gaps).max() == 5  # the whole range is used, never more
    assert (gaps < 0).any() and (gaps > 0).any() and (gaps == 0).any()


def test_negatives_come_from_other_videos_at_rate_neg(tmp_path):
    _write_json(str(tmp_path / "a.json"), {f"a{i}": _video(5) for i in range(3)})
    _write_json(str(tmp_path / "b.json"), {f"b{i}": _video(5) for i in range(2)})
    cfg = _cfg(names=("GOT10K", "LASOT"), per_epoch=3000, NEG=0.3)
    cfg.DATASET.GOT10K.ROOT, cfg.DATASET.GOT10K.ANNO = "ca", "a.json"
    cfg.DATASET.LASOT.ROOT, cfg.DATASET.LASOT.ANNO = "cb", "b.json"
    ds = TrainingSet(cfg, data_root=str(tmp_path), seed=0)
    plans = [ds.plan(i) for i in range(len(ds))]
    neg = [p for p in plans if p.neg]
    assert abs(len(neg) / len(plans) - 0.3) < 0.03
    assert all(p.template.video != p.search.video for p in neg)
    # the search of a negative comes from any sub-dataset (uniformly), the template from the sampled one
    from_b = np.mean([os.sep + "cb" + os.sep in p.search.path for p in neg])
    assert 0.4 < from_b < 0.6


def test_zero_and_negative_size_boxes_are_never_sampled(tmp_path):
    data = {
        "good": {"00": {"000000": [0, 0, 10, 10], "000001": [5, 5, 5, 20], "000002": [0, 0, 8, 9],
                        "000003": [9, 9, 3, 30]},
                 "01": {"000000": [0, 0, 0, 0]}},
        "empty": {"00": {"000000": [3, 3, 3, 9]}},
    }
    _write_json(str(tmp_path / "train.json"), data)
    ds = TrainingSet(_cfg(per_epoch=200, NEG=0.5), data_root=str(tmp_path), seed=0)
    sub = ds.subsets[0]
    assert sub.videos == ["good"] and [t.name for t in sub.tracks[0]] == ["00"]
    assert sub.tracks[0][0].frames == [0, 2]
    frames = {(p.frame, p.track) for i in range(len(ds)) for p in ds.plan(i)[:2]}
    assert frames == {(0, "00"), (2, "00")}


def test_num_use_videos_per_epoch_and_epochs(tmp_path):
    _write_json(str(tmp_path / "a.json"), {f"a{i}": _video(3) for i in range(3)})
    _write_json(str(tmp_path / "b.json"), {f"b{i}": _video(3) for i in range(5)})
    cfg = _cfg(names=("GOT10K", "LASOT"), per_epoch=0, epochs=3)
    cfg.DATASET.GOT10K.ROOT, cfg.DATASET.GOT10K.ANNO, cfg.DATASET.GOT10K.NUM_USE = "ca", "a.json", 7
    cfg.DATASET.LASOT.ROOT, cfg.DATASET.LASOT.ANNO, cfg.DATASET.LASOT.NUM_USE = "cb", "b.json", -1
    ds = TrainingSet(cfg, data_root=str(tmp_path), seed=1)
    assert ds.total_use == 12 and ds.videos_per_epoch == 12 and len(ds) == 36
    assert list(ds.epoch_indices(2)) == list(range(24, 36))
    for epoch in range(3):
        counts = np.bincount([ds.video_of(i) for i in ds.epoch_indices(epoch)], minlength=8)
        # 7 draws from 3 videos: whole passes (2 each) plus one more; every LASOT video once
        assert sorted(counts[:3]) == [2, 2, 3] and list(counts[3:]) == [1] * 5
    orders = [[ds.video_of(i) for i in ds.epoch_indices(e)] for e in range(3)]
    assert orders[0] != orders[1]  # reshuffled every pass
    cfg.DATASET.VIDEOS_PER_EPOCH = 5
    assert len(TrainingSet(cfg, data_root=str(tmp_path), seed=1)) == 15


# ---------------------------------------------------------------- items, from crops of a rendered target mask

@pytest.fixture(scope="module")
def mask_set(tmp_path_factory):
    """Prepared set whose images are the targets' masks (white on black), cropped as the prepare scripts do."""
    root = tmp_path_factory.mktemp("maskset")
    scene = SceneConfig(width=200, height=150)
    anno = {}
    for v in range(3):
        video = render_video(np.random.default_rng(100 + v), 12, scene)
        # the rendered look of the target, pasted alone on black: its pixels are the ground truth
        for t, box in enumerate(video.boxes):
            frame = np.zeros((scene.height, scene.width, 3), np.float32)
            paste(frame, (np.full((96, 96, 3), 255, np.float32), np.ones((96, 96), np.float32)), box)
            corners = train_box(box)
            os.makedirs(root / "crop511" / f"v{v}", exist_ok=True)
            cv2.imwrite(crop_path(str(root / "crop511"), f"v{v}", t, "00"),
                        crop_like_siamfc(frame.astype(np.uint8), corners))
            anno.setdefault(f"v{v}", {}).setdefault("00", {})[f"{t:06d}"] = corners
    _write_json(str(root / "train.json"), anno)
    return root


def test_search_box_and_label_peak_are_on_the_object(mask_set):
    cfg = _cfg(per_epoch=40, NEG=0.0)
    cfg.DATASET.SEARCH.COLOR = cfg.DATASET.TEMPLATE.COLOR = 0.0  # keep the mask binary
    ds = TrainingSet(cfg, data_root=str(mask_set), seed=5)
    stride, out = cfg.TRAIN.STRIDE, cfg.TRAIN.OUTPUT_SIZE
    for i in range(len(ds)):
        item = ds[i]
        box = item["bbox"]
        ys, xs = np.nonzero(item["search"][0] > 127)
        # corners are the first and last object pixel (pixel-index coordinates); a frame pixel becomes k
        # search-crop pixels, so the object's pixels reach half a frame pixel (k/2) beyond the corners
        frame_box = ds.plan(i).search.box
        kx = (box[2] - box[0]) / (frame_box[2] - frame_box[0])
        ky = (box[3] - box[1]) / (frame_box[3] - frame_box[1])
        expected = [box[0] - kx / 2, box[1] - ky / 2, box[2] + kx / 2, box[3] + ky / 2]
        np.testing.assert_allclose([xs.min(), ys.min(), xs.max(), ys.max()], expected, atol=1.2)
        cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        peak = np.unravel_index(np.argmax(item["label_heatmap"][0, 0]), (out, out))
        hx = out // 2 + (cx - (cfg.TRAIN.SEARCH_SIZE - 1) / 2) / stride
        hy = out // 2 + (cy - (cfg.TRAIN.SEARCH_SIZE - 1) / 2) / stride
        assert abs(peak[1] - hx) <= 0.5 + 1.6 / stride and abs(peak[0] - hy) <= 0.5 + 1.6 / stride
        assert item["label_heatmap"].max() == 1.0
        # the template is centred on its object (small template jitter: SHIFT 4, SCALE 0.05)
        tys, txs = np.nonzero(item["template"][0] > 127)
        assert abs((txs.min() + txs.max()) / 2 - 63) <= 4 / 0.95 + 1.5
        assert abs((tys.min() + tys.max()) / 2 - 63) <= 4 / 0.95 + 1.5


def test_item_contract_and_dataloader(mask_set):
    cfg = _cfg(per_epoch=8, NEG=0.5)
    cfg.TRAIN.STACK, cfg.TRAIN.INTER_SUPER, cfg.TRAIN.DIF_STD = 3, True, True
    ds = TrainingSet(cfg, data_root=str(mask_set), seed=2)
    item = ds[0]
    expect = {"template": (3, 127, 127), "search": (3, 255, 255), "label_heatmap": (3, 1, 31, 31),
              "label_offsets": (2, 31, 31), "label_objsize": (2, 31, 31), "neg": (), "bbox": (4,)}
    assert {k: v.shape for k, v in item.items()} == expect
    assert all(v.dtype == np.float32 for v in item.values())
    assert item["search"].min() >= 0 and item["search"].max() <= 255
    negs = [ds[i] for i in range(len(ds)) if ds.plan(i).neg]
    assert negs and all(n["neg"] == 1.0 and not n["label_heatmap"].any() for n in negs)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["search"].shape == (4, 3, 255, 255) and batch["neg"].shape == (4,)


def test_deterministic_by_seed_and_index_across_workers(mask_set):
    cfg = _cfg(per_epoch=6, epochs=2, NEG=0.3, GRAY=0.3)
    a, b = TrainingSet(cfg, data_root=str(mask_set), seed=7), TrainingSet(cfg, data_root=str(mask_set), seed=7)
    order = [5, 0, 11, 3]
    first = {i: a[i] for i in order}
    for i in reversed(order):  # another object, another access order
        for key, value in b[i].items():
            np.testing.assert_array_equal(value, first[i][key])
    other = TrainingSet(cfg, data_root=str(mask_set), seed=8)[5]
    assert not np.array_equal(other["search"], first[5]["search"])
    assert not np.array_equal(first[0]["search"], first[3]["search"])
    loader = torch.utils.data.DataLoader(a, batch_size=3, num_workers=2)
    batches = list(loader)
    serial = [a[i]["search"] for i in range(len(a))]
    np.testing.assert_array_equal(torch.cat([x["search"] for x in batches]).numpy(), np.stack(serial))


def test_gray_pairs_have_equal_channels(mask_set):
    cfg = _cfg(per_epoch=3, GRAY=1.0, NEG=0.0)
    cfg.DATASET.SEARCH.COLOR = cfg.DATASET.TEMPLATE.COLOR = 0.0
    item = TrainingSet(cfg, data_root=str(mask_set), seed=0)[1]
    for key in ("template", "search"):
        np.testing.assert_array_equal(item[key][0], item[key][2])


def test_corrupt_and_missing_crops_are_replaced_and_counted(mask_set, tmp_path, caplog):
    root = tmp_path / "broken"
    os.makedirs(root / "crop511" / "v0")
    os.makedirs(root / "crop511" / "v1")
    anno = json.load(open(mask_set / "train.json"))
    good = {"v0": anno["v0"], "v1": anno["v1"]}
    for name in good:
        for frame in good[name]["00"]:
            src = crop_path(str(mask_set / "crop511"), name, int(frame), "00")
            if name == "v1":
                with open(crop_path(str(root / "crop511"), name, int(frame), "00"), "wb") as f:
                    f.write(b"not a jpeg at all" * 10)  # corrupt
            else:
                os.symlink(src, crop_path(str(root / "crop511"), name, int(frame), "00"))
    good["v2"] = anno["v2"]  # listed, but no crop folder at all
    _write_json(str(root / "train.json"), good)
    cfg = _cfg(per_epoch=12, NEG=0.0)
    ds = TrainingSet(cfg, data_root=str(root), seed=4)
    with caplog.at_level(logging.WARNING):
        items = [ds[i] for i in range(len(ds))]
    bad = sum(ds.plan(i).template.video != 0 for i in range(len(ds)))
    assert bad >= 4 and ds.skipped >= bad
    assert any("v1" in r.getMessage() and "corrupt" in r.getMessage() for r in caplog.records)
    assert any(os.sep.join(["v2", ""]) in r.getMessage() for r in caplog.records)
    assert all(item["search"].shape == (3, 255, 255) for item in items)
    again = TrainingSet(cfg, data_root=str(root), seed=4)
    for i in range(len(ds)):
        np.testing.assert_array_equal(again[i]["search"], items[i]["search"])


def test_truncated_crops_are_replaced_counted_and_named(mask_set, tmp_path, caplog):
    root = tmp_path / "cut"
    anno = json.load(open(mask_set / "train.json"))
    cut = {}
    for name in ("v0", "v1"):
        os.makedirs(root / "crop511" / name)
        for frame in anno[name]["00"]:
            data = open(crop_path(str(mask_set / "crop511"), name, int(frame), "00"), "rb").read()
            path = crop_path(str(root / "crop511"), name, int(frame), "00")
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2] if name == "v1" else data)  # v1: every crop cut in half
            if name == "v1":
                cut[path] = cv2.imread(path, cv2.IMREAD_COLOR)
    # OpenCV alone reads each cut crop as a full 511x511 image (grey below the cut): it would be trained on
    assert all(img is not None and img.shape == (511, 511, 3) for img in cut.values())
    _write_json(str(root / "train.json"), {"v0": anno["v0"], "v1": anno["v1"]})
    ds = TrainingSet(_cfg(per_epoch=10, NEG=0.0), data_root=str(root), seed=3)
    with caplog.at_level(logging.WARNING):
        items = [ds[i] for i in range(len(ds))]
    planned_cut = sum(ds.plan(i).template.video == 1 for i in range(len(ds)))
    assert planned_cut >= 2 and ds.skipped >= planned_cut
    messages = [r.getMessage() for r in caplog.records]
    assert any("truncated JPEG" in m and any(p in m for p in cut) for m in messages)
    assert len(items) == len(ds)


@pytest.mark.parametrize("content, fragment", [
    ('{"v": {"00": {"000000": [1, 2, 3]}}}', "video 'v' track '00' frame '000000'"),
    ('{"v": {"00": {"000000": [1, "a", 3, 4]}}}', "frame '000000'"),
    ('{"v": {"00": [1, 2]}}', "video 'v' track '00'"),
    ('{"v": [1]}', "video 'v'"),
    ('{"v": {"00": {"000000": [1, 2, 3, 4]}}', "line 1"),
    ('[]', "expected an object"),
])
def test_malformed_json_names_file_and_key(tmp_path, content, fragment):
    (tmp_path / "train.json").write_text(content)
    with pytest.raises(ValueError) as err:
        TrainingSet(_cfg(), data_root=str(tmp_path))
    assert str(tmp_path / "train.json") in str(err.value) and fragment in str(err.value)


def test_missing_annotation_and_unknown_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.json"):
        TrainingSet(_cfg(), data_root=str(tmp_path))
    cfg = _cfg(names=("NOPE",))
    with pytest.raises(ValueError, match="NOPE"):
        TrainingSet(cfg, data_root=str(tmp_path))


def test_data_root_resolution_order(tmp_path, monkeypatch):
    cfg = get_cfg()
    monkeypatch.delenv("SIAMKPN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root(cfg) == str(tmp_path)
    monkeypatch.setenv("SIAMKPN_DATA", str(tmp_path / "env"))
    assert resolve_data_root(cfg) == str(tmp_path / "env")
    cfg.DATASET.DATA_ROOT = str(tmp_path / "cfg")
    assert resolve_data_root(cfg) == str(tmp_path / "cfg")
    assert resolve_data_root(cfg, str(tmp_path / "arg")) == str(tmp_path / "arg")
    # relative ROOT/ANNO resolve against it; absolute ones are kept
    _write_json(str(tmp_path / "env" / "train.json"), {"v": _video(3)})
    cfg.DATASET.DATA_ROOT = ""
    ds = TrainingSet(_cfg(), seed=0)
    assert ds.subsets[0].anno == str(tmp_path / "env" / "train.json")
    cfg2 = _cfg()
    cfg2.DATASET.SYNTH.ANNO = str(tmp_path / "env" / "train.json")
    assert TrainingSet(cfg2, data_root=str(tmp_path / "elsewhere")).subsets[0].anno == cfg2.DATASET.SYNTH.ANNO


FORK_SCRIPT = """
import sys
import cv2, numpy as np
from torch.utils.data import DataLoader, Dataset
from siamkpn.datasets.training_set import before_worker_fork, worker_init_fn

class Crops(Dataset):
    def __len__(self):
        return 8
    def __getitem__(self, i):
        return cv2.resize(np.full((400, 400, 3), i, np.uint8), (127, 127)).astype(np.float32)

image = np.random.default_rng(0).random((1500, 1500, 3), dtype=np.float32)
for _ in range(10):  # the parent uses OpenCV's thread pool, as a benchmark generating its data does
    cv2.GaussianBlur(image, (9, 9), 3)
    cv2.resize(image, (1200, 1200))
before_worker_fork()
total = sum(float(b.sum()) for b in DataLoader(Crops(), batch_size=4, num_workers=2, worker_init_fn=worker_init_fn))
print("done", total)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="DataLoader workers fork on Linux only")
def test_workers_forked_after_the_parent_used_opencv_threads_do_not_hang():
    """Regression: cv2.setNumThreads in a forked worker hung when the parent had used OpenCV's pool."""
    from conftest import REPO

    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("done"), proc.stderr[-2000:]
