"""Our one-pass and GOT-10k scores against an independent implementation: the official `got10k` toolkit (PyPI).

A small synthetic result set (ground truth, noisy predictions, lost frames, boxes leaving the image, frames
where the target is absent) is written to disk in the benchmarks' native layouts and scored by our whole path
(loaders, result reader, `evaluate`), then by got10k's own functions: `rect_iou` / `center_error` with the curve
and score rules of its `ExperimentOTB` and `ExperimentGOT10k` (the experiments themselves need the downloaded
datasets). Tolerance 1e-9: both compute the same float64 formulas; only the order of a few sums differs.

Needs the `got10k` toolkit and shapely (in the dev extra, so `make test` installs them; skipped without them).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from toolkit.datasets import DatasetFactory
from toolkit.evaluation.runner import evaluate
from toolkit.results import write_video_result

got10k_metrics = pytest.importorskip("got10k.utils.metrics", reason="the got10k toolkit (pip install got10k shapely)")

TOL = 1e-9
W, H = 160, 120
VIDEOS, FRAMES = 5, 40


def _ground_truth(rng: np.random.Generator) -> np.ndarray:
    """[FRAMES, 4] x,y,w,h boxes drifting inside the frame (centres > 0, as every real benchmark's)."""
    size = rng.uniform(15, 40, 2)
    start = rng.uniform([5, 5], [W - size[0] - 5, H - size[1] - 5])
    steps = np.cumsum(rng.normal(0, 2, (FRAMES, 2)), axis=0)
    xy = np.clip(start + steps, 1, [W - size[0] - 1, H - size[1] - 1])
    wh = size * np.exp(np.cumsum(rng.normal(0, 0.02, (FRAMES, 2)), axis=0))
    return np.round(np.concatenate([xy, np.minimum(wh, [W, H] - xy)], axis=1), 2)


def _predictions(rng: np.random.Generator, gt: np.ndarray, quality: float) -> np.ndarray:
    """Noisy boxes: jitter, a lost stretch far away, and boxes that reach past the image border."""
    pred = gt + rng.normal(0, 6 * (1 - quality) + 0.5, gt.shape) * [1, 1, 0.5, 0.5]
    pred[:, 2:] = np.maximum(pred[:, 2:], 1.0)
    lost = slice(int(FRAMES * quality), int(FRAMES * quality) + 6)
    pred[lost, :2] += [W * 0.6, H * 0.5]  # partly outside the image: clipped by GOT-10k's rule
    pred[0] = gt[0]  # the init frame holds the given box, as every tracker writes it
    return np.round(pred, 3)


def _jpeg() -> bytes:
    return cv2.imencode(".jpg", np.full((H, W, 3), 90, np.uint8))[1].tobytes()


def _write_set(root, kind: str, trackers: dict):
    """Native benchmark folders + results of `trackers` ({name: quality}); returns (gt, absent, preds)."""
    rng = np.random.default_rng(7 if kind == "otb" else 8)
    frame = _jpeg()
    bench = root / ("OTB100" if kind == "otb" else "GOT-10k")
    gts, absents, preds = {}, {}, {t: {} for t in trackers}
    for v in range(VIDEOS):
        name = f"Seq{v + 1}"
        gt = _ground_truth(rng)
        absent = np.zeros(FRAMES, bool)
        if kind == "got10k" and v % 2:
            absent[rng.choice(np.arange(1, FRAMES), 5, replace=False)] = True
        img_dir = bench / name / "img" if kind == "otb" else bench / name
        img_dir.mkdir(parents=True)
        for i in range(FRAMES):
            (img_dir / (f"{i + 1:04d}.jpg" if kind == "otb" else f"{i + 1:08d}.jpg")).write_bytes(frame)
        text = "".join(",".join(f"{x:g}" for x in b) + "\n" for b in gt)
        if kind == "otb":
            (bench / name / "groundtruth_rect.txt").write_text(text)
        else:
            (bench / name / "groundtruth.txt").write_text(text)
            (bench / name / "absence.label").write_text("".join(f"{int(a)}\n" for a in absent))
        gts[name], absents[name] = gt, absent
        for t, quality in trackers.items():
            boxes = _predictions(rng, gt, quality)
            preds[t][name] = boxes
            write_video_result(root / "results", bench.name, t, name, boxes.tolist(),
                               times=[0.01] * FRAMES if kind == "got10k" else None)
    if kind == "got10k":
        (bench / "list.txt").write_text("".join(f"Seq{v + 1}\n" for v in range(VIDEOS)))
    return bench, gts, absents, preds


def _ours(root, bench, trackers):
    dataset = DatasetFactory.create_dataset(bench.name, str(bench), layout="native")
    dataset.set_tracker(str(root / "results" / bench.name), list(trackers))
    return evaluate(dataset, list(trackers), progress=False)


TRACKERS = {"Good": 0.9, "Mid": 0.6, "Poor": 0.25}


def test_otb_success_and_precision_match_got10k(tmp_path):
    bench, gts, _, preds = _write_set(tmp_path, "otb", TRACKERS)
    ours = _ours(tmp_path, bench, TRACKERS)
    for t in TRACKERS:
        # got10k's ExperimentOTB.report: per-video curves (21 IoU bins, 51 px bins), mean over videos
        succ, prec = [], []
        for name, gt in gts.items():
            boxes = preds[t][name].copy()
            boxes[0] = gt[0]
            ious = got10k_metrics.rect_iou(boxes, gt.copy())
            errors = got10k_metrics.center_error(boxes, gt)
            succ.append(np.mean(ious[:, None] > np.linspace(0, 1, 21)[None, :], axis=0))
            prec.append(np.mean(errors[:, None] <= np.arange(0, 51)[None, :], axis=0))
        succ_curve, prec_curve = np.mean(succ, axis=0), np.mean(prec, axis=0)
        got = ours[t]["metrics"]
        assert got["success_auc"] == pytest.approx(np.mean(succ_curve), abs=TOL), t
        assert got["precision"] == pytest.approx(prec_curve[20], abs=TOL), t
        np.testing.assert_allclose(ours[t]["details"]["success_curve"], succ_curve, atol=TOL)
        np.testing.assert_allclose(ours[t]["details"]["precision_curve"], prec_curve, atol=TOL)
    # the set spans a real range of scores, so the comparison is not of three equal numbers
    aucs = [ours[t]["metrics"]["success_auc"] for t in TRACKERS]
    assert aucs[0] > aucs[1] > aucs[2] and aucs[0] - aucs[2] > 0.2


def test_got10k_ao_and_success_rates_match_got10k(tmp_path):
    bench, gts, absents, preds = _write_set(tmp_path, "got10k", TRACKERS)
    ours = _ours(tmp_path, bench, TRACKERS)
    assert any(a.any() for a in absents.values())
    for t in TRACKERS:
        # got10k's ExperimentOTB.report for GOT-10k: frames after the first, clipped to the resolution, visible
        pooled = []
        for name, gt in gts.items():
            ious = got10k_metrics.rect_iou(preds[t][name][1:].copy(), gt[1:].copy(), bound=(W, H))
            pooled.append(ious[~absents[name][1:]])
        ious = np.concatenate(pooled)
        succ_curve = np.mean(ious[:, None] > np.linspace(0, 1, 101)[None, :], axis=0)
        got = ours[t]["metrics"]
        assert got["ao"] == pytest.approx(np.mean(ious), abs=TOL), t
        assert got["sr50"] == pytest.approx(np.mean(ious > 0.5), abs=TOL), t
        assert got["sr75"] == pytest.approx(succ_curve[75], abs=TOL), t
        np.testing.assert_allclose(ours[t]["details"]["success_curve"], succ_curve, atol=TOL)
    assert ours["Good"]["metrics"]["ao"] - ours["Poor"]["metrics"]["ao"] > 0.2
