"""Cross-check this project against the official VOT toolkit (the steps of scripts/vot_toolkit_check.sh).

    python scripts/vot_crosscheck.py untrained --config C --out S.pth
    python scripts/vot_crosscheck.py workspace --vot-root DATA/test/VOT2018 --ws WS --config C --snapshot S
    python scripts/vot_crosscheck.py compare --ws WS --results RESULTS --tracker NAME --vot-root ... [--lt-root ...]

``workspace`` turns the synthetic VOT2018-style set into a toolkit workspace (``sequences/list.txt``, a
``sequence`` file per sequence, ``color/%08d.jpg``, ground truth and tags; no download), with a stack holding
only VOT2018's ``baseline`` experiment (reset protocol, its analyses unchanged) and, with ``--longterm``, a
long-term workspace (VOT-LT2018's unsupervised ``longterm`` experiment) whose ground truth is the polygons'
bounds, also written as a VOT2018-LT set for tools/test.py. ``compare`` reads the toolkit's text trajectories
(``VOT_RESULTS_BINARY=0``) and ``vot analysis`` json next to this project's result files and scores, prints the
tables of docs/VOT.md and writes them as json; it exits 1 when the trajectories disagree.
Runs in the project's environment (not the toolkit's): it never imports ``vot``.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np

BOX_TOLERANCE = 1e-3  # px: %.4f result files vs the toolkit's float32 text; anything larger is a real difference
ST_STACK = """title: VOT2018 baseline (reset protocol) only, as in the toolkit's vot2018/shortterm stack
experiments:
  baseline:
    type: supervised
    repetitions: 15
    skip_initialize: 5
    analyses:
      - type: supervised_average_ar
        sensitivity: 30
      - type: supervised_eao_score
        low: 100
        high: 356
      - type: supervised_eao_curve
"""
LT_STACK = """title: VOT-LT2018 longterm experiment only, as in the toolkit's vot2018/longterm stack
experiments:
  longterm:
    type: unsupervised
    repetitions: 1
    analyses:
      - type: average_tpr
        name: average_tpr
"""


def untrained(args: argparse.Namespace) -> None:
    """The quick-start model's initial weights (torch seeded with TRAIN.SEED, as tools/train.py starts)."""
    import torch

    from siamkpn.config import load_cfg
    from siamkpn.models.model_builder import ModelBuilder

    cfg = load_cfg(args.config)
    torch.manual_seed(cfg.TRAIN.SEED)
    torch.save({"epoch": 0, "state_dict": ModelBuilder(cfg).state_dict()}, args.out)


def _sequences(vot_root: Path) -> list[str]:
    return [s.strip() for s in (vot_root / "list.txt").read_text().split() if s.strip()]


def _bounds_box(poly: list[float]) -> list[float]:
    xs, ys = poly[0::2], poly[1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def _write_workspace(ws: Path, stack: str, stack_text: str, sequences: dict[str, Path], gt_boxes: bool) -> None:
    seq_dir = ws / "sequences"
    seq_dir.mkdir(parents=True, exist_ok=True)
    for name, src in sequences.items():
        dst = seq_dir / name
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst)
        (dst / "sequence").write_text(f"channels.color=color/%08d.jpg\nformat=default\nfps=30\nname={name}\n")
        if gt_boxes:  # long-term: rectangles (the polygons' bounds), as VOT-LT ships them
            polys = [[float(v) for v in line.split(",")] for line in (src / "groundtruth.txt").read_text().split()]
            (dst / "groundtruth.txt").write_text("".join(",".join(f"{v:.2f}" for v in _bounds_box(p)) + "\n"
                                                         for p in polys))
    (seq_dir / "list.txt").write_text("".join(f"{n}\n" for n in sequences))
    (ws / stack).write_text(stack_text)
    (ws / "config.yaml").write_text(f"registry:\n- ./trackers.ini\nstack: {stack}\n")


def workspace(args: argparse.Namespace) -> None:
    """Build the short-term (and long-term) workspace and register the tracker in its trackers.ini."""
    from siamkpn.cli.vot_integration import main as integrate

    root = Path(args.vot_root)
    seqs = {s: root / s for s in _sequences(root)}
    targets = [(Path(args.ws), "siamkpn_vot2018_baseline.yaml", ST_STACK, False)]
    if args.longterm:
        targets.append((Path(args.longterm), "siamkpn_vot2018_longterm.yaml", LT_STACK, True))
    for ws, stack, text, boxes in targets:
        _write_workspace(ws, stack, text, seqs, boxes)
        flags = ["--config", args.config, "--snapshot", args.snapshot, "--out", str(ws / "trackers.ini"),
                 "--name", args.tracker, "--device", "cpu", "--threads", str(args.threads)]
        if integrate(flags) != 0:
            raise SystemExit("vot_crosscheck: writing trackers.ini failed")
    if args.longterm and args.lt_root_out:  # the same sequences as a VOT2018-LT set for tools/test.py
        lt, out = Path(args.longterm) / "sequences", Path(args.lt_root_out)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(lt / "list.txt", out / "list.txt")
        for name in seqs:
            if (out / name).exists():
                shutil.rmtree(out / name)
            shutil.copytree(lt / name, out / name, ignore=shutil.ignore_patterns("sequence", "*.tag"))


def _toolkit_lines(path: Path) -> list[list[float]]:
    return [[float(v) for v in s.split(",")] for s in path.read_text().split()]


def _kind(line: list[float]) -> str:
    return {1.0: "init", 2.0: "failure", 0.0: "skipped"}[line[0]] if len(line) == 1 else "box"


def _compare_runs(ours: list, theirs: list, gts: list, bounds: tuple) -> dict:
    """Frame-by-frame agreement up to the first frame where the two runs take another course.

    A divergence is *explained* when it is the failure rule's rasterisation: this project failed a frame whose box
    the toolkit kept, and that same (toolkit) box has region-library overlap 0 with the ground truth, i.e. this
    project's rule would fail it too; or the toolkit failed a box whose region-library overlap is below 0.02.
    """
    from toolkit.region import vot_overlap

    max_diff, boxes, divergence = 0.0, 0, None
    for i, (a, b) in enumerate(zip(ours, theirs)):
        ka, kb = _kind(a), _kind(b)
        if ka == kb == "box":
            max_diff = max(max_diff, float(np.max(np.abs(np.subtract(a, b)))))
            boxes += 1
        elif ka != kb:
            ov_theirs = vot_overlap(b, gts[i], bounds=bounds) if kb == "box" else None
            ov_ours = vot_overlap(a, gts[i], bounds=bounds) if ka == "box" else None
            explained = (ka == "failure" and ov_theirs == 0.0) or (kb == "failure" and ov_ours is not None
                                                                    and ov_ours < 0.02)
            divergence = {"frame": i, "ours": ka, "toolkit": kb, "region_overlap_toolkit_box": ov_theirs,
                          "region_overlap_our_box": ov_ours, "explained": bool(explained)}
            break
    if divergence is None and len(ours) != len(theirs):
        divergence = {"frame": min(len(ours), len(theirs)), "ours": "end", "toolkit": "end", "explained": False}
    return {"boxes": boxes, "max_box_diff": max_diff, "divergence": divergence}


def _st_trajectories(args, dataset, report: dict) -> bool:
    """(a): the toolkit's baseline repetitions against tools/test.py's result, sequence by sequence."""
    from toolkit.results import read_vot

    ok, rows = True, []
    tk_dir = Path(args.ws) / "results" / args.tracker / "baseline"
    for video in dataset:
        seq = video.name
        ours = read_vot(Path(args.results) / "VOT2018" / args.tracker / "baseline" / seq / f"{seq}_001.txt")
        theirs = [_toolkit_lines(p) for p in sorted(tk_dir.joinpath(seq).glob(f"{seq}_[0-9][0-9][0-9].txt"))]
        row = _compare_runs(ours, theirs[0], video.gt_traj, (video.width, video.height))
        row.update(sequence=seq, frames=len(ours), repetitions=len(theirs),
                   identical_repetitions=all(t == theirs[0] for t in theirs),
                   failures_ours=[i for i, v in enumerate(ours) if v == [2.0]],
                   failures_toolkit=[i for i, v in enumerate(theirs[0]) if v == [2.0]])
        div = row["divergence"]
        ok &= row["max_box_diff"] <= BOX_TOLERANCE and row["identical_repetitions"] and (div is None or
                                                                                          div["explained"])
        rows.append(row)
        # the toolkit's run in this project's layout, so this project's metrics can score the same trajectory
        dst = Path(args.results) / "VOT2018" / f"{args.tracker}-toolkit" / "baseline" / seq / f"{seq}_001.txt"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text((tk_dir / seq / f"{seq}_001.txt").read_text())
    report["baseline_trajectories"] = rows
    return ok


def _dataset(args, trackers: list):
    """The VOT2018 set with results attached (as tools/eval.py attaches them)."""
    from toolkit.datasets import DatasetFactory

    dataset = DatasetFactory.create_dataset("VOT2018", args.vot_root)
    dataset.set_tracker(str(Path(args.results) / "VOT2018"), trackers)
    return dataset


def _our_metrics(dataset, tracker: str) -> dict:
    """This project's A/R/lost/EAO (tools/eval.py's numbers) and the same trajectories under the toolkit's rules."""
    from toolkit.evaluation.ar import AccuracyRobustnessBenchmark
    from toolkit.evaluation.eao import EAOBenchmark

    res = AccuracyRobustnessBenchmark(dataset).eval(tracker)[tracker]
    out = dict(AccuracyRobustnessBenchmark.summarize(res))
    out["eao"] = EAOBenchmark(dataset).eval(tracker)[tracker]["all"]
    lengths, acc, fails = [], [], []
    for name, overlaps in res["overlaps"].items():
        ov = np.asarray(overlaps, np.float64)
        lengths.append(len(ov))
        acc.append(float(np.nanmean(ov)) if np.any(~np.isnan(ov)) else 0.0)  # the toolkit's 0 for no frame
        fails.append(float(np.mean(res["failures"][name])))
    w = np.asarray(lengths, np.float64)
    out["accuracy_per_sequence_weighted"] = float(np.dot(acc, w) / w.sum())
    out["failures_per_sequence"] = float(np.dot(fails, w) / w.sum())
    # the toolkit averages curve[low..high] with 0-based lengths: 1-based lengths low+1..high+1 here
    out["eao_interval_101_357"] = EAOBenchmark(dataset, interval=(101, 357)).eval(tracker)[tracker]["all"]
    return out


def _st_scores(args, dataset, report: dict) -> None:
    """(b): vot analysis against this project's metrics on the toolkit's and on tools/test.py's trajectories."""
    analysis = json.loads(Path(args.analysis).read_text())["results"]["baseline"]["results"]
    acc, failures, _, _ = analysis[0][0]
    report["baseline_scores"] = {
        "vot_analysis": {"accuracy": acc, "failures_per_sequence": failures, "eao": analysis[1][0][0],
                         "eao_curve_length": len(analysis[2][0][0])},
        "ours_on_toolkit_trajectories": _our_metrics(dataset, f"{args.tracker}-toolkit"),
        "ours_on_test_py_trajectories": _our_metrics(dataset, args.tracker),
        "tools_eval_json": json.loads(Path(args.eval_json).read_text())[args.tracker]}


def _lt_compare(args, report: dict) -> bool:
    """(c): the long-term run, boxes and confidences, and precision/recall/F1 both ways."""
    from toolkit.datasets import DatasetFactory
    from toolkit.results import read_longterm

    ok, rows = True, []
    tk_dir = Path(args.lt_ws) / "results" / args.tracker / "longterm"
    for video in DatasetFactory.create_dataset("VOT2018-LT", args.lt_root):
        seq = video.name
        boxes, scores, _ = read_longterm(Path(args.results) / "VOT2018-LT" / args.tracker / "longterm" / seq)
        theirs = _toolkit_lines(tk_dir / seq / f"{seq}_001.txt")
        conf = [float(s) if s.strip() else float("nan")
                for s in (tk_dir / seq / f"{seq}_001_confidence.value").read_text().split("\n")[:len(theirs)]]
        diffs = [float(np.max(np.abs(np.subtract(a, b)))) for a, b in zip(boxes[1:], theirs[1:])]
        both = [abs(a - b) for a, b in zip(scores[1:], conf[1:]) if not (math.isnan(a) or math.isnan(b))]
        rows.append({"sequence": seq, "frames": len(boxes), "box_diff_frame_1": diffs[0] if diffs else 0.0,
                     "max_box_diff": max(diffs, default=0.0), "max_confidence_diff": max(both, default=0.0),
                     "same_length": len(boxes) == len(theirs)})
        ok &= len(boxes) == len(theirs) and rows[-1]["max_box_diff"] <= BOX_TOLERANCE
    analysis = json.loads(Path(args.lt_analysis).read_text())["results"]["longterm"]["results"]
    pr, re, f = analysis[0][0][:3]
    report["longterm"] = {"trajectories": rows, "vot_analysis": {"precision": pr, "recall": re, "f1": f},
                          "tools_eval_json": json.loads(Path(args.lt_eval_json).read_text())[args.tracker]}
    return ok


def compare(args: argparse.Namespace) -> int:
    """Print and save the cross-check tables; 1 when a trajectory differs in a way no documented rule explains."""
    report: dict = {"box_tolerance": BOX_TOLERANCE}
    dataset = _dataset(args, [args.tracker])
    ok = _st_trajectories(args, dataset, report)
    _st_scores(args, _dataset(args, [args.tracker, f"{args.tracker}-toolkit"]), report)
    if args.lt_root:
        ok &= _lt_compare(args, report)
    report["agree"] = bool(ok)
    Path(args.report).write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    _print(report)
    return 0 if ok else 1


def _json_default(value):
    raise TypeError(type(value).__name__)


def _fmt(v) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def _print(report: dict) -> None:
    print("(a) trajectories: the toolkit's baseline run vs tools/test.py --dataset VOT2018")
    print("| sequence | frames | boxes compared | max box diff (px) | failures: this project / toolkit "
          "| first divergence | toolkit repetitions |")
    print("|:--|--:|--:|--:|:--|:--|:--|")
    for r in report["baseline_trajectories"]:
        fails = f"{r['failures_ours']}" + ("" if r["failures_ours"] == r["failures_toolkit"]
                                           else f" / {r['failures_toolkit']}")
        d = r["divergence"]
        div = "none" if d is None else (f"frame {d['frame']}: {d['ours']} / {d['toolkit']} ("
                                        f"{'explained' if d['explained'] else 'UNEXPLAINED'})")
        print(f"| {r['sequence']} | {r['frames']} | {r['boxes']} | {r['max_box_diff']:.1e} | {fails} | {div} | "
              f"{r['repetitions']}, identical: {r['identical_repetitions']} |")
    s = report["baseline_scores"]
    tk, on_tk, ours = s["vot_analysis"], s["ours_on_toolkit_trajectories"], s["ours_on_test_py_trajectories"]
    print("\n(b) scores: vot analysis | this project's metrics on the toolkit's trajectories | tools/eval.py "
          "(tools/test.py's trajectories)")
    print("| metric | vot analysis | ours on toolkit's run | ours on test.py's run |\n|:--|--:|--:|--:|")
    rows = [("accuracy (ours: pooled frames)", tk["accuracy"], "accuracy"),
            ("accuracy per sequence, length-weighted", tk["accuracy"], "accuracy_per_sequence_weighted"),
            ("failures per sequence (toolkit's R)", tk["failures_per_sequence"], "failures_per_sequence"),
            ("robustness (pysot: failures x 100 / frames)", None, "robustness"),
            ("lost number", None, "lost_number"),
            ("EAO (100, 356)", tk["eao"], "eao"),
            ("EAO, lengths 101..357 (toolkit's indexing)", tk["eao"], "eao_interval_101_357")]
    for label, theirs, key in rows:
        print(f"| {label} | {_fmt(theirs) if theirs is not None else '-'} | {_fmt(on_tk[key])} | {_fmt(ours[key])} |")
    print(f"(toolkit EAO curve length: {tk['eao_curve_length']})")
    if "longterm" in report:
        lt = report["longterm"]
        print("\n(c) long-term (VOT-LT2018 longterm experiment vs tools/test.py --dataset VOT2018-LT)")
        for r in lt["trajectories"]:
            print(f"  {r['sequence']}: frames {r['frames']}, box diff on frame 1 {r['box_diff_frame_1']:.3f} px, "
                  f"max {r['max_box_diff']:.3f} px, max confidence diff {r['max_confidence_diff']:.2e}")
        print("| metric | vot analysis | tools/eval.py |\n|:--|--:|--:|")
        for key in ("precision", "recall", "f1"):
            print(f"| {key} | {_fmt(lt['vot_analysis'][key])} | {_fmt(lt['tools_eval_json'].get(key))} |")
    print(f"\nagree: {report['agree']}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("untrained")
    u.add_argument("--config", required=True)
    u.add_argument("--out", required=True)
    w = sub.add_parser("workspace")
    w.add_argument("--vot-root", required=True)
    w.add_argument("--ws", required=True)
    w.add_argument("--longterm", default=None, help="also build this long-term workspace")
    w.add_argument("--lt-root-out", default=None, help="write the long-term sequences as a VOT2018-LT set here")
    w.add_argument("--config", required=True)
    w.add_argument("--snapshot", required=True)
    w.add_argument("--tracker", default="SiamKPN")
    w.add_argument("--threads", type=int, default=1)
    c = sub.add_parser("compare")
    for flag in ("--ws", "--results", "--vot-root", "--analysis", "--eval-json", "--report"):
        c.add_argument(flag, required=True)
    c.add_argument("--tracker", default="SiamKPN")
    for flag in ("--lt-ws", "--lt-root", "--lt-analysis", "--lt-eval-json"):
        c.add_argument(flag, default=None)
    args = p.parse_args(argv)
    if args.cmd == "untrained":
        untrained(args)
        return 0
    if args.cmd == "workspace":
        workspace(args)
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
