"""Benchmark metrics: the published toolkit's numbers on the shared eval fixture, and each rule by hand."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from toolkit.datasets import DatasetFactory
from toolkit.evaluation import (
    EAO_TAGS,
    AccuracyRobustnessBenchmark,
    EAOBenchmark,
    MissingResultWarning,
    OPEBenchmark,
    accuracy_robustness,
    ao_sr,
    determine_thresholds,
    expected_overlap_curves,
    f1_curves,
    ope_curves,
)
from toolkit.evaluation.eao import eao_fragments, eao_from_curve, eao_interval, fragment_weights
from toolkit.evaluation.got10k import clipped_iou
from toolkit.evaluation.longterm import best_f1
from toolkit.evaluation.ope import precision_curve, success_curve
from toolkit.evaluation.runner import evaluate, format_tables
from toolkit.evaluation.trajectory import burnin_mask, failure_frames, marker_codes
from toolkit.results import ResultFileError, write_video_result

OTB_TRACKERS = ["TrkGood", "TrkMid", "TrkBad"]
VOT_TRACKERS = ["TrkGood", "TrkMid", "TrkPoly"]
TOL = 1e-6


def _nan_list(values):
    return np.array([np.nan if v is None else v for v in values], np.float64)


@pytest.fixture(scope="module")
def ref(eval_fixture_dir):
    return json.loads((eval_fixture_dir / "eval_ref.json").read_text())


def _dataset(eval_fixture_dir, kind, layout, results=None):
    name, folder, res = ("OTB100", "otb", "OTBSynth") if kind == "otb" else ("VOT2018", "vot", "VOT2018")
    dataset = DatasetFactory.create_dataset(name, eval_fixture_dir / folder, layout=layout)
    dataset.set_tracker(str(results or eval_fixture_dir / "results" / res),
                        OTB_TRACKERS if kind == "otb" else VOT_TRACKERS)
    return dataset


# ---------------------------------------------------------------- published numbers
@pytest.mark.parametrize("layout", ["json", "native"])
def test_ope_matches_published_toolkit(eval_fixture_dir, ref, layout):
    results = OPEBenchmark(_dataset(eval_fixture_dir, "otb", layout)).eval()
    for tracker, want in ref["otb"]["trackers"].items():
        got = results[tracker]
        assert got["success_auc"] == pytest.approx(want["success_auc"], abs=TOL)
        assert got["precision"] == pytest.approx(want["precision@20px"], abs=TOL)
        assert got["norm_precision"] == pytest.approx(want["norm_precision@0.20"], abs=TOL)
        for curve in ("success_curve", "precision_curve", "norm_precision_curve"):
            np.testing.assert_allclose(got[curve], want[curve], atol=TOL, err_msg=f"{tracker} {curve}")
        assert set(got["per_video"]) == set(want["per_video"])
        for video, pv in want["per_video"].items():
            assert got["per_video"][video]["success_auc"] == pytest.approx(pv["success_auc"], abs=TOL)
            for curve in ("success", "precision", "norm_precision"):
                np.testing.assert_allclose(got["per_video"][video][curve], pv[f"{curve}_curve"], atol=TOL,
                                           err_msg=f"{tracker} {video} {curve}")


@pytest.mark.parametrize("layout", ["json", "native"])
def test_vot_matches_published_toolkit(eval_fixture_dir, ref, layout):
    dataset = _dataset(eval_fixture_dir, "vot", layout)
    ar = AccuracyRobustnessBenchmark(dataset).eval()
    eao = EAOBenchmark(dataset, tags=EAO_TAGS)
    for tracker, want in ref["vot"]["trackers"].items():
        summary = accuracy_robustness(ar[tracker]["overlaps"], ar[tracker]["failures"])
        for key in ("accuracy", "robustness", "lost_number"):
            assert summary[key] == pytest.approx(want[key], abs=TOL), (tracker, key)
        for video, pv in want["per_video"].items():
            got = np.array(ar[tracker]["overlaps"][video])
            exp = _nan_list(pv["overlaps"])
            np.testing.assert_array_equal(np.isnan(got), np.isnan(exp), err_msg=f"{tracker} {video}")
            np.testing.assert_allclose(got[~np.isnan(got)], exp[~np.isnan(exp)], atol=TOL)
            assert ar[tracker]["failures"][video] == pv["failures"]  # per run
            assert np.nanmean(got) == pytest.approx(pv["accuracy"], abs=TOL)
        curves = eao.eval_curves(tracker)
        assert curves["all"]["eao"] == pytest.approx(want["eao"], abs=TOL)
        for tag in EAO_TAGS:
            assert curves[tag]["eao"] == pytest.approx(want["eao_per_tag"][tag], abs=TOL), (tracker, tag)
            got, exp = curves[tag]["curve"], _nan_list(want["eao_curve"][tag])
            assert got.dtype == np.float32
            np.testing.assert_array_equal(np.isnan(got), np.isnan(exp))
            np.testing.assert_allclose(got[~np.isnan(got)], exp[~np.isnan(exp)], atol=TOL, err_msg=f"{tracker} {tag}")
    assert (eao.low, eao.high) == tuple(ref["vot"]["eao_interval_1based"])


def test_pysot_style_calls_print_the_published_tables(eval_fixture_dir, capsys):
    bench = OPEBenchmark(_dataset(eval_fixture_dir, "otb", "json"))
    success, precision = bench.eval_success(), bench.eval_precision("TrkGood")
    assert set(success) == set(OTB_TRACKERS) and len(success["TrkMid"]["Seq3"]) == 21
    OPEBenchmark.show_result({"TrkGood": success["TrkGood"]}, precision, bench.eval_norm_precision(["TrkGood"]))
    assert "|  TrkGood   |  0.906  |     0.997      |   0.997   |" in capsys.readouterr().out
    dataset = _dataset(eval_fixture_dir, "vot", "json")
    AccuracyRobustnessBenchmark.show_result(AccuracyRobustnessBenchmark(dataset).eval(), EAOBenchmark(dataset).eval())
    assert "|   TrkMid   |  0.593   |   0.321    |     3.0     | 0.473 |" in capsys.readouterr().out


# ---------------------------------------------------------------- missing and broken result files
def _copy_vot_results(eval_fixture_dir, tmp_path):
    dst = tmp_path / "VOT2018"
    shutil.copytree(eval_fixture_dir / "results" / "VOT2018", dst)
    return dst


def test_missing_result_is_a_warning_and_the_video_is_left_out(eval_fixture_dir, tmp_path):
    results = _copy_vot_results(eval_fixture_dir, tmp_path)
    missing = results / "TrkMid" / "baseline" / "vseq3" / "vseq3_001.txt"
    missing.unlink()
    dataset = _dataset(eval_fixture_dir, "vot", "json", results)
    with pytest.warns(MissingResultWarning, match="vseq3"):
        ar = AccuracyRobustnessBenchmark(dataset).eval("TrkMid")["TrkMid"]
    assert sorted(ar["overlaps"]) == ["vseq1", "vseq2", "vseq4", "vseq5", "vseq6"]
    assert sum(f[0] for f in ar["failures"].values()) == 2  # vseq3 held one of TrkMid's 3 failures


def test_garbled_result_names_file_and_line(eval_fixture_dir, tmp_path):
    results = _copy_vot_results(eval_fixture_dir, tmp_path)
    bad = results / "TrkGood" / "baseline" / "vseq2" / "vseq2_001.txt"
    lines = bad.read_text().splitlines()
    lines[6] = "12.0,abc,3.0,4.0"
    bad.write_text("\n".join(lines) + "\n")
    dataset = _dataset(eval_fixture_dir, "vot", "json", results)
    with pytest.raises(ResultFileError, match=r"vseq2_001\.txt, line 7"):
        EAOBenchmark(dataset).eval("TrkGood")


# ---------------------------------------------------------------- one-pass rules
def test_success_is_strict_and_counts_every_frame():
    iou = np.array([0.5, 0.5, 1.0, -1.0])
    curve = success_curve(iou)
    assert curve[0] == 0.75          # IoU -1 (invalid ground truth) never counts
    assert curve[10] == 0.25         # IoU exactly 0.5 is not > 0.5
    assert curve[20] == 0.0          # nothing is > 1
    assert success_curve(iou, n_frames=8)[0] == 0.375


def test_precision_counts_invalid_ground_truth_as_hits():
    gt = np.array([[10, 10, 5, 5], [0, 0, 0, 0], [100, 100, 21, 21]], float)
    pred = np.array([[30, 10, 5, 5], [300, 300, 5, 5], [100, 100, 21, 21]], float)
    curves = ope_curves(pred, gt)
    assert curves["precision"][0] == pytest.approx(2 / 3)     # exact hit + the 0,0,0,0 frame
    assert curves["precision"][19] == pytest.approx(2 / 3)    # 20 px error is not <= 19
    assert curves["precision"][20] == 1.0
    np.testing.assert_allclose(precision_curve(np.array([-1.0, 0.2]), thresholds=np.array([0.0, 0.2])), [0.5, 1])


def test_absent_frames_are_dropped_but_stay_in_the_denominator():
    gt = np.tile([[50.0, 50, 20, 20]], (4, 1))
    pred = gt.copy()
    pred[1] = [0, 0, 1, 1]
    curves = ope_curves(pred, gt, absent=np.array([False, True, True, False]))
    assert curves["success"][0] == 0.5 and curves["precision"][0] == 0.5 and curves["norm_precision"][0] == 0.5


def test_nan_ground_truth_is_a_success_miss_but_a_precision_hit():
    gt = np.array([[10, 10, 5, 5], [np.nan] * 4, [10, 10, 5, 5]])
    pred = np.array([[10, 10, 5, 5], [0, 0, 5, 5], [40, 10, 5, 5]])
    curves = ope_curves(pred, gt)  # UAV123 marks frames without the target with NaN boxes
    assert curves["success"][0] == pytest.approx(1 / 3)
    assert curves["precision"][20] == pytest.approx(2 / 3) and curves["norm_precision"][20] == pytest.approx(2 / 3)


class _Video:
    def __init__(self, gt, pred, absent):
        self.name, self.gt_traj, self.absent, self.pred_trajs, self.result_kind = "v", gt, absent, {"T": pred}, "ope"


class _Dataset(list):
    def __init__(self, name, videos):
        super().__init__(videos)
        self.name, self.tracker_names = name, ["T"]


def test_absent_frames_are_dropped_for_lasot_only():
    gt = [[50.0, 50, 20, 20]] * 4
    video = _Video(gt, gt, np.array([False, True, True, False]))  # perfect, even while the target is away
    assert OPEBenchmark(_Dataset("LaSOT", [video])).eval("T")["T"]["success_auc"] == pytest.approx(0.5 * 20 / 21)
    assert OPEBenchmark(_Dataset("UAV123", [video])).eval("T")["T"]["success_auc"] == pytest.approx(20 / 21)
    assert OPEBenchmark(_Dataset("UAV123", [video]), drop_absent=True).eval()["T"]["precision"] == 0.5


# ---------------------------------------------------------------- reset-protocol rules
def test_markers_failures_and_burnin():
    traj = [[1]] + [[0, 0, 5, 5]] * 4 + [[2], [0], [0], [0], [0], [1]] + [[0, 0, 5, 5]] * 3
    codes = marker_codes(traj)
    np.testing.assert_array_equal(failure_frames(codes), [5])
    mask = burnin_mask(codes, 3)
    np.testing.assert_array_equal(np.flatnonzero(mask), [0, 1, 2, 10, 11, 12])
    assert not burnin_mask(codes, 0).any()


def test_accuracy_pools_frames_and_robustness_is_per_frame():
    overlaps = {"a": np.array([0.5, np.nan, 0.7]), "b": np.array([0.9])}
    failures = {"a": [1, 3], "b": [0, 2]}  # two runs
    s = accuracy_robustness(overlaps, failures)
    assert s["accuracy"] == pytest.approx(0.7)
    assert s["lost_number"] == pytest.approx(3.0)                  # runs total 1 and 5
    assert s["robustness"] == pytest.approx((1 / 4 + 5 / 4) / 2 * 100)


def test_eao_fragments_and_weights():
    ov = np.linspace(0.1, 0.9, 20)
    ov[3] = np.nan
    frags, meta = eao_fragments([ov], [np.array([3, 17])], skipping=5)  # 17 + 5 > 20: dropped
    assert [m[1] for m in meta] == [0, 8]
    np.testing.assert_allclose(frags[0, :9], np.nan_to_num(ov[:9]))          # runs to the next cut, inclusive
    assert (frags[0, 9:] == 0).all()                                          # then counts 0
    np.testing.assert_allclose(frags[1, :12], ov[8:])
    assert np.isnan(frags[1, 12:]).all()                                      # the last stops at its length
    tags = {"all": np.ones(20), "occlusion": np.r_[np.ones(4), np.zeros(16)], "empty": np.array([0, 1, 1])}
    w = fragment_weights(meta, [tags], [20], ["all", "occlusion", "empty"], run_weight=0.5)
    np.testing.assert_allclose(w[0], [0.5, 0.5 * 12 / (12 + 1e-16)])
    np.testing.assert_allclose(w[1], [0.5 * 4 / 9, 0.0])
    np.testing.assert_allclose(w[2], [0.5 * 2 / 9, 0.5 * 2 / 12])            # pysot's 'empty': whole flag list


def test_expected_overlap_curve_by_hand():
    frags = np.array([[9.0, 1.0, 1.0, 0.0, 0.0],              # ended in a failure: zeros after it
                      [9.0, 0.5, 0.5, np.nan, np.nan]])       # last fragment: undefined after its length
    curves = expected_overlap_curves(frags, np.array([[1.0, 1.0], [1.0, 3.0]]))
    np.testing.assert_allclose(curves[0], [1, 0.75, 0.75, 2 / 3, 0.5], rtol=1e-7)
    np.testing.assert_allclose(curves[1], [1, (1 + 1.5) / 4, (1 + 1.5) / 4, 2 / 3, 0.5], rtol=1e-7)
    assert curves.dtype == np.float32
    assert eao_from_curve(curves[0], 2, 3) == pytest.approx(0.75)
    assert eao_from_curve(curves[0], 4, 100) == pytest.approx((2 / 3 + 0.5) / 2)   # clipped to the curve
    assert eao_interval("VOT2016") == (108, 371) and eao_interval("VOT2019") == (46, 291)
    with pytest.raises(ValueError, match="VOT2018"):
        eao_interval("OTB100")


# ---------------------------------------------------------------- long-term and GOT-10k
def test_f1_curves_by_hand():
    overlaps = np.array([np.nan, 0.8, 0.6, 0.0, np.nan])
    scores = np.array([np.nan, 0.9, 0.5, 0.2, 0.1])
    f1, p, r = f1_curves(overlaps, scores, np.array([-np.inf, 0.5, 0.95, np.inf]), n_visible=3)
    np.testing.assert_allclose(p, [1.4 / 4, 0.7, 1.0, 1.0])
    np.testing.assert_allclose(r, [1.4 / 3, 1.4 / 3, 0.0, 0.0])
    np.testing.assert_allclose(f1[:2], [2 * p[0] * r[0] / (p[0] + r[0]), 2 * 0.7 * (1.4 / 3) / (0.7 + 1.4 / 3)])
    best = best_f1({"v": p}, {"v": r})
    assert best["f1"] == pytest.approx(f1[1]) and best["precision"] == pytest.approx(0.7)
    th = determine_thresholds(np.r_[np.nan, np.arange(1, 197, dtype=float)])
    assert th[0] == -np.inf and th[-1] == np.inf and len(th) == 100
    assert np.all(np.diff(th[1:-1]) > 0) and th[1] == 2.0 and th[-2] == 195.0


def test_got10k_clipped_iou_and_success_rates():
    pred = np.array([[-10, 0, 20, 10], [0, 0, 10, 10], [90, 0, 20, 10]], float)
    gt = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [90, 0, 10, 10]], float)
    iou = clipped_iou(pred, gt, (100, 50))
    # x, y are clipped into the image, then w, h to what is left of it (got10k keeps w when x moves)
    np.testing.assert_allclose(iou, [0.5, 50 / 150, 1.0], rtol=1e-12)
    s = ao_sr(iou)
    assert s["ao"] == pytest.approx((1.5 + 1 / 3) / 3)
    assert s["sr50"] == pytest.approx(1 / 3) and s["sr75"] == pytest.approx(1 / 3)
    assert len(s["success_curve"]) == 101 and s["success_curve"][0] == 1.0 and s["success_curve"][-1] == 0.0


# ---------------------------------------------------------------- long-term and GOT-10k, end to end on disk
def _write_sequence(seq_dir, boxes, frames_dir=None):
    frames_dir = frames_dir or seq_dir
    frames_dir.mkdir(parents=True)
    for i in range(len(boxes)):
        cv2.imwrite(str(frames_dir / f"{i + 1:08d}.jpg"), np.zeros((48, 64, 3), np.uint8))
    (seq_dir / "groundtruth.txt").write_text("".join(",".join(map(str, b)) + "\n" for b in boxes))


def test_longterm_f1_on_disk(tmp_path):
    absent = {"a": range(20, 30), "b": range(40, 45)}
    results = tmp_path / "results"
    for name, gone in absent.items():
        gt = [[10 + i % 5, 12, 20, 15] for i in range(60)]
        _write_sequence(tmp_path / "lt" / name, [[np.nan] * 4 if i in gone else b for i, b in enumerate(gt)],
                        tmp_path / "lt" / name / "color")
        # confident on the target, unconfident (and wrong) while it is away
        boxes = [[1]] + [[0, 0, 5, 5] if i in gone else gt[i] for i in range(1, 60)]
        scores = [None] + [0.1 if i in gone else 0.9 for i in range(1, 60)]
        write_video_result(results, "VOT2018-LT", "Trk", name, boxes, scores, [0.01] * 60)
    dataset = DatasetFactory.create_dataset("VOT2018-LT", tmp_path / "lt")
    dataset.set_tracker(str(results / "VOT2018-LT"), ["Trk"])
    report = evaluate(dataset, ["Trk"], progress=False)["Trk"]
    # at threshold 0.9 only the target frames are kept (precision 1); the init frame is never scored
    recall = np.mean([49 / 50, 54 / 55])
    assert report["metrics"] == pytest.approx({"precision": 1.0, "recall": recall, "f1": 2 * recall / (1 + recall)})
    assert "|    Trk     |   1.000   | 0.981  | 0.990 |" in format_tables({"Trk": report})


def test_got10k_ao_on_disk(tmp_path):
    results = tmp_path / "results"
    gt = [[10, 10, 20, 10]] * 12
    _write_sequence(tmp_path / "val" / "s1", gt)
    (tmp_path / "val" / "s1" / "absence.label").write_text("".join("1\n" if i in (3, 4) else "0\n" for i in range(12)))
    _write_sequence(tmp_path / "val" / "s2", gt)
    write_video_result(results, "GOT-10k", "Trk", "s1", gt, times=[0.01] * 12)
    write_video_result(results, "GOT-10k", "Trk", "s2", [gt[0]] + [[20, 10, 20, 10]] * 11, times=[0.01] * 12)
    dataset = DatasetFactory.create_dataset("GOT-10k", tmp_path / "val")
    dataset.set_tracker(str(results / "GOT-10k"), ["Trk"])
    report = evaluate(dataset, ["Trk"], progress=False)["Trk"]
    # s1: 9 visible frames after the first at IoU 1; s2: 11 frames half a box off, IoU 1/3
    assert report["metrics"] == pytest.approx({"ao": (9 + 11 / 3) / 20, "sr50": 9 / 20, "sr75": 9 / 20})


def test_eao_over_a_subset_of_videos_equals_eao_without_the_others_results(eval_fixture_dir, tmp_path):
    """eval_curves(videos=...) (the leave-one-out sets of benchmarks/fast_mode_accuracy.py's jackknife) scores
    exactly what a results folder holding only those videos scores."""
    full = _dataset(eval_fixture_dir, "vot", "json")
    videos = [video.name for video in full]
    dropped, kept = videos[0], videos[1:]
    shutil.copytree(eval_fixture_dir / "results" / "VOT2018", tmp_path / "VOT2018")
    shutil.rmtree(tmp_path / "VOT2018" / "TrkMid" / "baseline" / dropped)
    partial = _dataset(eval_fixture_dir, "vot", "json", results=tmp_path / "VOT2018")
    with pytest.warns(MissingResultWarning):
        want = EAOBenchmark(partial).eval_curves("TrkMid")["all"]
    got = EAOBenchmark(full).eval_curves("TrkMid", videos=kept)["all"]
    assert got["eao"] == pytest.approx(want["eao"], abs=1e-12)
    np.testing.assert_array_equal(got["curve"], want["curve"])
    assert got["eao"] != pytest.approx(EAOBenchmark(full).eval_curves("TrkMid")["all"]["eao"], abs=1e-6)
