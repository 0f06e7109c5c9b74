"""ONNX export (template / track graphs, int8) and the onnx backend behind the unchanged tracker, on a tiny model."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'siamkpn[onnx]')")
pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'siamkpn[onnx]')")

from helpers import tiny_cfg, tool_error, torch_threads  # noqa: E402
from siamkpn.api import load_tracker  # noqa: E402
from siamkpn.datasets.calibration import calibration_pairs, check_pairs, synthetic_pairs  # noqa: E402
from siamkpn.datasets.synthetic import render_video  # noqa: E402
from siamkpn.models.backends import BACKENDS, backend_named  # noqa: E402
from siamkpn.models.inference import describe, prepare_for_inference  # noqa: E402
from siamkpn.models.model_builder import ModelBuilder  # noqa: E402
from siamkpn.models.onnx_export import compare_with_torch, export_onnx  # noqa: E402
from siamkpn.models.onnx_folder import SETTINGS_FILE, ExportFolderError  # noqa: E402
from siamkpn.models.onnx_runtime import OnnxInferenceModel  # noqa: E402
from siamkpn.tracker import BatchSiamKPNTracker, SiamKPNTracker  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _cfg():
    cfg = tiny_cfg(stack=2)
    cfg.TRAIN.NORMWH = True  # sizes exp(out) * 64: small outputs give sane boxes
    cfg.TRACK.INSTANCE_SIZE = 159  # a 19x19 output, as the quick-start config: quick to export and track
    cfg.TRAIN.SEARCH_SIZE = 159
    cfg.TRAIN.OUTPUT_SIZE = 19
    return cfg


def _model(cfg, seed=0):
    """Random weights with BatchNorm statistics of unit-scale activations and small head outputs, so that the
    tracker follows heat-map peaks with boxes of sane size instead of running into a corner."""
    torch.manual_seed(seed)
    model = ModelBuilder(cfg).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 4.0)
        scale = {"heatmap": 1e-2, "offsets": 1e-5, "objsize": 1e-3}  # outputs ~1, ~0.005 (0.3 px), ~0.1
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None and name.split(".")[-1] == "1":
                m.weight.mul_(scale[name.split(".")[-3]])  # the stage heads' output layers (<branch>.head{s}.1)
                m.bias.zero_()
    return model


def _crop511_set(root: Path, videos: int = 2, frames: int = 4) -> Path:
    """A tiny pysot crop511 training set: the target centred at the exemplar scale in 511x511 crops."""
    from siamkpn.tracker.subwindow import get_subwindow

    for v in range(videos):
        video = render_video(np.random.default_rng(100 + v), frames)
        folder = root / "crop511" / f"synth_{v:05d}"
        folder.mkdir(parents=True)
        for t in range(frames):
            x1, y1, x2, y2 = video.boxes[t]
            w, h = x2 - x1, y2 - y1
            s_z = np.sqrt((w + (w + h) / 2) * (h + (w + h) / 2))
            crop = get_subwindow(video.frames[t], np.array([(x1 + x2 - 1) / 2, (y1 + y2 - 1) / 2]), 511,
                                 round(s_z * 511 / 127), video.frames[t].mean(axis=(0, 1)))
            cv2.imwrite(str(folder / f"{t:06d}.00.x.jpg"), crop)
    return root


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(cfg, model, export folder with fp32 and int8 graphs, calibration root, snapshot path)."""
    base = tmp_path_factory.mktemp("onnx")
    cfg = _cfg()
    model = _model(cfg)
    calib = _crop511_set(base / "train")
    snapshot = base / "tiny.pth"
    torch.save({"state_dict": model.state_dict()}, snapshot)
    check, check_crops = check_pairs(str(calib), 127, 159, 2)
    result = export_onnx(model, cfg, str(base / "export"), check, check_crops,
                         calibration=calibration_pairs(str(calib), 127, 159, 4), calib_root=str(calib))
    return cfg, model, base / "export", calib, snapshot, result


def test_export_writes_checked_graphs_within_1e4_relative(exported):
    cfg, model, folder, _, _, result = exported
    assert {p.name for p in folder.iterdir()} >= {"template.onnx", "track.onnx", "track_int8.onnx", SETTINGS_FILE}
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    assert settings["outputs"] == ["heatmap", "offsets", "objsize"] and settings["opset"] == 18
    assert settings["tracker"]["TRACK.INSTANCE_SIZE"] == 159 and settings["int8"]["pairs"] == 4
    assert set(settings["exporters"].values()) <= {"dynamo", "legacy"}
    # the tool's own check, and an independent one on crops of another video
    assert max(result.errors["track.onnx"].values()) <= 1e-4
    errors = compare_with_torch(prepare_for_inference(model), str(folder), synthetic_pairs(127, 159, 2, seed=7))
    assert set(errors) == {"kernel_1", "kernel_2", "heatmap", "offsets", "objsize"}
    assert max(errors.values()) <= 1e-4, errors
    assert oct(os.stat(folder / "track.onnx").st_mode & 0o077) != "0o0"  # not left private by the temp file


def _track(model, cfg, video, tracker_cls=SiamKPNTracker):
    tracker = tracker_cls(model, cfg)
    x1, y1, x2, y2 = video.boxes[0]
    tracker.init(video.frames[0], [x1, y1, x2 - x1, y2 - y1])
    return np.array([tracker.track(img)["bbox"] for img in video.frames[1:]])


def test_onnx_backend_tracks_with_the_boxes_of_pytorch(exported):
    cfg, model, folder, _, _, _ = exported
    video = render_video(np.random.default_rng(5), 12)
    torch_boxes = _track(prepare_for_inference(model), cfg, video)
    onnx_boxes = _track(OnnxInferenceModel(str(folder), cfg), cfg, video)
    assert np.ptp(torch_boxes[:, 0]) > 1 and (torch_boxes[:, 2:] > 10).all()  # a moving box, not stuck clipped
    assert np.abs(onnx_boxes - torch_boxes).max() <= 1e-2


def test_onnx_backend_batches_sample_by_sample_like_pytorch(exported):
    """Batches (hp-search lanes, BatchSiamKPNTracker) run the batch-1 graphs per sample: same numbers as PyTorch."""
    cfg, model, folder, _, _, _ = exported
    onnx = OnnxInferenceModel(str(folder), cfg)
    prepared = prepare_for_inference(model)
    pairs = synthetic_pairs(127, 159, 2, seed=3)
    z = torch.from_numpy(np.concatenate([p[0] for p in pairs]))
    x = torch.from_numpy(np.concatenate([p[1] for p in pairs]))
    zf = onnx.template(z)
    assert [k.shape[0] for k in zf] == [2, 2] and onnx.template_kernels(zf) == list(zf)
    out = onnx.track(zf, x, kernels=onnx.template_kernels(zf))
    ref = prepared.track(prepared.template(z), x)
    for name in ("heatmap", "offsets", "objsize"):
        got, want = out[name][-1], ref[name][-1]
        assert got.shape == want.shape and got.dtype == torch.float32
        assert (got - want).abs().max() <= 1e-4 * want.abs().max(), name
    batch = BatchSiamKPNTracker(onnx, [cfg, cfg])
    video = render_video(np.random.default_rng(6), 3)
    x1, y1, x2, y2 = video.boxes[0]
    batch.init_lanes(video.frames[0], {0: [x1, y1, x2 - x1, y2 - y1], 1: [x1 + 4, y1, x2 - x1, y2 - y1]})
    lanes = batch.track_lanes(video.frames[1], [0, 1])
    assert all(np.isfinite(lanes[k]["bbox"]).all() for k in (0, 1))
    # lanes on their own videos (siamkpn-test --batch): sample by sample, so exactly the single tracker's boxes
    box = [x1, y1, x2 - x1, y2 - y1]
    batch.init_lanes_images({0: (video.frames[0], box), 1: (video.frames[1], box)})
    singles = [SiamKPNTracker(onnx, cfg), SiamKPNTracker(onnx, cfg)]
    singles[0].init(video.frames[0], box)
    singles[1].init(video.frames[1], box)
    out = batch.track_lanes_images({0: video.frames[1], 1: video.frames[2]})
    assert out == {0: singles[0].track(video.frames[1]), 1: singles[1].track(video.frames[2])}


def test_int8_graph_runs_through_the_tracker(exported):
    cfg, _, folder, _, _, result = exported
    int8 = OnnxInferenceModel(str(folder), cfg, int8=True)
    assert "int8" in describe(int8)
    errors = result.errors["track_int8.onnx"]
    assert all(np.isfinite(v) for v in errors.values())
    assert errors["heatmap"] > result.errors["track.onnx"]["heatmap"]  # really a different (quantised) graph
    boxes = _track(int8, cfg, render_video(np.random.default_rng(5), 6))
    assert np.isfinite(boxes).all() and (boxes[:, 2:] > 0).all()


def test_backend_selection_by_config_and_argument(exported):
    cfg, _, folder, _, snapshot, _ = exported
    onnx_cfg = cfg.clone()
    onnx_cfg.TRACK.BACKEND = "onnx"
    exact = load_tracker(onnx_cfg, str(folder)).model
    assert isinstance(exact, OnnxInferenceModel) and not exact.int8 and "exact mode" in describe(exact)
    fast = load_tracker(onnx_cfg, str(folder), fast=True).model
    assert fast.int8 and "fast mode: int8" in describe(fast)
    torch_model = load_tracker(cfg, str(snapshot), device="cpu").model
    assert not isinstance(torch_model, OnnxInferenceModel) and "BatchNorm folded" in describe(torch_model)
    tracker = load_tracker(cfg, str(folder), "cpu", opts=["TRACK.BACKEND", "onnx"])
    assert isinstance(tracker.model, OnnxInferenceModel)
    onnx, torch_backend = BACKENDS["onnx"], BACKENDS["torch"]
    assert onnx.precision(fast) == "int8" and onnx.precision(exact) == "float32"
    assert torch_backend.precision(torch_model) == "float32"
    identity = onnx.identity(str(folder))
    assert set(identity) == {"template.onnx", "track.onnx", "track_int8.onnx", SETTINGS_FILE}
    assert torch_backend.identity(str(snapshot))["size"] == os.path.getsize(snapshot)
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'.*torch, onnx"):
        backend_named("tensorrt")
    with pytest.raises(ValueError, match="ONNX export folder: run it with --backend onnx"):
        load_tracker(cfg, str(folder), device="cpu")
    with pytest.raises(ExportFolderError, match="not an ONNX export folder"):
        onnx.load(onnx_cfg, str(snapshot))
    with pytest.raises(ValueError, match="runs on the CPU"):
        load_tracker(onnx_cfg, str(folder), device="cuda")


def test_fast_without_an_int8_graph_says_so(exported, tmp_path):
    cfg, _, folder, _, _, _ = exported
    copy = tmp_path / "fp32_only"
    copy.mkdir()
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    del settings["files"]["track_int8"]
    for name in ("template.onnx", "track.onnx"):
        os.link(folder / name, copy / name)
    (copy / SETTINGS_FILE).write_text(json.dumps(settings))
    model = load_tracker(cfg, str(copy), fast=True, opts=["TRACK.BACKEND", "onnx"]).model
    assert not model.int8 and "no int8 track graph" in describe(model)
    with pytest.raises(ExportFolderError, match="no int8 track graph"):
        OnnxInferenceModel(str(copy), cfg, int8=True)


def test_export_folder_problems_are_named(exported, tmp_path):
    cfg, _, folder, _, _, _ = exported
    other = cfg.clone()
    other.TRACK.INSTANCE_SIZE = 255
    with pytest.raises(ExportFolderError, match=r"TRACK.INSTANCE_SIZE = 159, the config has 255"):
        OnnxInferenceModel(str(folder), other)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "track.onnx").write_bytes(b"")
    with pytest.raises(ExportFolderError, match=f"{SETTINGS_FILE} is missing"):
        OnnxInferenceModel(str(unfinished), cfg)


def _copy_export(folder: Path, copy: Path, edit=None) -> Path:
    """A copy of an export folder (graphs hard-linked), its settings passed through `edit`."""
    copy.mkdir()
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    for name in set(settings["files"].values()):
        os.link(folder / name, copy / name)
    (copy / SETTINGS_FILE).write_text(json.dumps(edit(settings) if edit else settings))
    return copy


def test_a_graph_replaced_after_the_export_is_refused_naming_the_file(exported, tmp_path):
    """Every graph's sha256 is recorded at export and checked at load: another graph in track.onnx's place (here the
    fixture's int8 graph, as another export's would be) is refused before it tracks anything."""
    cfg, _, folder, calib, snapshot, _ = exported
    copy = _copy_export(folder, tmp_path / "replaced")
    os.unlink(copy / "track.onnx")
    os.link(folder / "track_int8.onnx", copy / "track.onnx")
    with pytest.raises(ExportFolderError) as err:
        OnnxInferenceModel(str(copy), cfg)
    line = str(err.value)
    assert line.startswith(f"{copy / 'track.onnx'}: sha256 ") and "differs from the" in line and "\n" not in line
    assert f"export again: siamkpn-export-onnx --config CONFIG.yaml --snapshot MODEL.pth --out {copy} --int8 " \
           f"--calib {calib} --calib-count 4" in line
    assert OnnxInferenceModel(str(copy), cfg, int8=True).int8  # the graphs that are intact still load
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    assert set(settings["sha256"]) == {"template.onnx", "track.onnx", "track_int8.onnx"}
    assert settings["sha256"]["track.onnx"] == BACKENDS["onnx"].identity(str(folder))["track.onnx"]["sha256"]


def test_an_export_without_graph_hashes_or_with_unsafe_names_is_refused(exported, tmp_path):
    cfg, _, folder, _, _, _ = exported

    def older(settings):
        settings.pop("sha256", None)
        settings["source"] = {"config": "/x/config.yaml", "snapshot": "/x/e20.pth", "opts": ["TRACK.LR", "0.4"]}
        return settings

    old = _copy_export(folder, tmp_path / "old", older)
    command = (f"siamkpn-export-onnx --config /x/config.yaml --snapshot /x/e20.pth --out {old} --int8 --calib "
               r"\S+ --calib-count 4 --opts TRACK.LR 0.4$")
    with pytest.raises(ExportFolderError, match=r"records no sha256 of the graph files .*export again: " + command):
        load_tracker(cfg, str(old), opts=["TRACK.BACKEND", "onnx"])

    def unrecorded(settings):
        settings.get("sha256", {}).pop("template.onnx", None)
        return settings

    with pytest.raises(ExportFolderError, match=r"template.onnx: no sha256 recorded for it"):
        OnnxInferenceModel(str(_copy_export(folder, tmp_path / "unrecorded", unrecorded)), cfg)

    def escaping(settings):
        settings["files"]["track"] = "../track.onnx"
        return settings

    from toolkit.names import UnsafeNameError

    with pytest.raises(UnsafeNameError, match=r"siamkpn_onnx.json: files.track '../track.onnx' holds a path"):
        OnnxInferenceModel(str(_copy_export(folder, tmp_path / "escaping", escaping)), cfg)


@pytest.mark.slow
def test_export_tool_end_to_end_and_its_usage_errors(exported, tmp_path, capsys):
    from siamkpn.cli.export_onnx import main

    cfg, _, _, _, snapshot, _ = exported
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(cfg.dump())
    out = tmp_path / "export"
    assert main(["--config", str(cfg_path), "--snapshot", str(snapshot), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "largest relative difference from PyTorch" in printed and "CPU " in printed
    assert (out / SETTINGS_FILE).is_file() and not (out / "track_int8.onnx").exists()
    line = tool_error(capsys, main, ["--config", str(cfg_path), "--snapshot", str(snapshot), "--out", str(out),
                                     "--int8"])
    assert "--int8 needs --calib" in line
    line = tool_error(capsys, main, ["--config", str(cfg_path), "--snapshot", str(tmp_path / "nope.pth"),
                                     "--out", str(out)])
    assert "nope.pth" in line


@pytest.mark.slow
def test_onnx_backend_gives_the_published_boxes_on_the_fixture_sequences(reference_dir, tmp_path):
    """Both reference fixtures exported and tracked over their whole Synth1 sequence: within 1e-2 px of the exact
    PyTorch tracker everywhere, and within the fixture's tolerance of the published boxes before a watch frame."""
    from siamkpn.config import load_cfg
    from siamkpn.models.checkpoint import load_checkpoint

    cfg = load_cfg(str(reference_dir / "config.yaml"))
    model = ModelBuilder(cfg).eval()
    load_checkpoint(model, str(reference_dir / "weights_fp16.pth"), strict=True)
    export_onnx(model, cfg, str(tmp_path / "export"),
                synthetic_pairs(cfg.TRACK.EXEMPLAR_SIZE, cfg.TRACK.INSTANCE_SIZE, 1))
    meta = json.loads((reference_dir / "meta.json").read_text())
    watch = min([w["frame"] for w in meta["decision_margins"]["watch_frames"]["ope"]], default=None)
    expected = np.array([[float(v) for v in line.split(",")]
                         for line in (reference_dir / "tracker_ope.txt").read_text().split()])
    frames = [cv2.imread(str(p)) for p in sorted((reference_dir / "seqs" / "Synth1" / "img").glob("*.png"))]
    boxes = {}
    for name, m in (("exact", prepare_for_inference(model)), ("onnx", OnnxInferenceModel(str(tmp_path / "export"),
                                                                                            cfg))):
        tracker = SiamKPNTracker(m, cfg)
        tracker.init(frames[0], expected[0].tolist())
        boxes[name] = np.array([tracker.track(img)["bbox"] for img in frames[1:]])
    assert np.abs(boxes["onnx"] - boxes["exact"]).max() <= 1e-2
    upto = (watch or len(frames)) - 1  # tracked frames 1 .. watch-1
    np.testing.assert_allclose(boxes["onnx"][:upto], expected[1:upto + 1], rtol=0,
                               atol=meta["tolerances"]["tracker_box_px"])


def test_a_graph_that_disagrees_with_pytorch_is_refused_and_left_unchecked(exported, tmp_path, monkeypatch):
    """The export checks its graphs before writing siamkpn_onnx.json: a disagreement is an ExportError, and the
    folder (its old JSON removed) cannot be loaded as a finished export."""
    from siamkpn.models import onnx_export, onnx_folder

    cfg, model, folder, _, _, _ = exported
    out = tmp_path / "export"
    out.mkdir()
    (out / SETTINGS_FILE).write_text((folder / SETTINGS_FILE).read_text())  # a previous, finished export
    monkeypatch.setattr(onnx_export, "FP32_TOLERANCE", 0.0)
    with pytest.raises(onnx_folder.ExportError, match="differ from PyTorch beyond 0 relative"):
        export_onnx(model, cfg, str(out), synthetic_pairs(127, 159, 1))
    assert not (out / SETTINGS_FILE).exists()
    with pytest.raises(ExportFolderError, match="not a finished, checked ONNX export"):
        OnnxInferenceModel(str(out), cfg)


def test_siamkpn_test_tracks_with_the_onnx_backend_like_torch(exported, tmp_path, capsys):
    """`siamkpn-test --backend onnx --snapshot EXPORT_DIR`: the same boxes as the torch backend (1e-2 px), its own
    result folder named after the export folder, and a provenance record of the export's files."""
    import importlib.util

    from siamkpn.cli.test import main
    from toolkit.results import read_ope

    spec = importlib.util.spec_from_file_location("tiny_bench", Path(__file__).parents[1] / "tools" / "tiny_bench.py")
    tiny_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny_bench)
    write_otb_video = tiny_bench.write_otb_video

    cfg, _, folder, _, snapshot, _ = exported
    (tmp_path / "config.yaml").write_text(cfg.dump())
    write_otb_video(tmp_path / "OTB100", "Walk", seed=3)
    base = ["--config", str(tmp_path / "config.yaml"), "--dataset", "OTB100", "--dataset-root",
            str(tmp_path / "OTB100"), "--results-dir", str(tmp_path / "results"), "--no-progress"]
    assert main(base + ["--snapshot", str(snapshot), "--device", "cpu"]) == 0
    assert main(base + ["--snapshot", str(folder) + "/", "--backend", "onnx"]) == 0
    torch_boxes = np.array(read_ope(tmp_path / "results/OTB100/tiny/Walk.txt"))
    onnx_boxes = np.array(read_ope(tmp_path / f"results/OTB100/{folder.name}/Walk.txt"))
    assert np.abs(torch_boxes - onnx_boxes).max() <= 1e-2
    record = json.loads((tmp_path / f"results/OTB100/{folder.name}/provenance.json").read_text())
    assert "track.onnx" in json.dumps(record)
    # --batch 2: the lanes run sample by sample, said once; the boxes of the unbatched run
    write_otb_video(tmp_path / "OTB100", "Jump", seed=4)
    capsys.readouterr()
    assert main(base + ["--snapshot", str(folder) + "/", "--backend", "onnx", "--batch", "2", "--tracker-name",
                        "batched"]) == 0
    assert capsys.readouterr().out.count("note: --batch 2: backend onnx runs the lanes of a batch sample by "
                                         "sample") == 1
    assert main(base + ["--snapshot", str(folder) + "/", "--backend", "onnx"]) == 0  # Jump, unbatched
    for video in ("Walk", "Jump"):
        assert (tmp_path / f"results/OTB100/batched/{video}.txt").read_bytes() == \
            (tmp_path / f"results/OTB100/{folder.name}/{video}.txt").read_bytes()
