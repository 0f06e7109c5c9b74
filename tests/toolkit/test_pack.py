"""Submission archives (toolkit.submission, tools/pack_results.py) on synthetic GOT-10k / TrackingNet / VOT folders."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import tool_error
from siamkpn.cli.pack_results import main
from toolkit.names import UnsafeNameError
from toolkit.results import write_video_result
from toolkit.submission import submission_entries, zip_bytes

REPO = Path(__file__).resolve().parents[2]
LENGTHS = {"GOT-10k_Test_000001": 4, "GOT-10k_Test_000002": 3}
TN_LENGTHS = {"aBcD_1": 3, "zz-9_0": 2}


def _boxes(n: int, shift: float = 0.0) -> list:
    return [[10.5 + i + shift, 20.25, 30.0, 40.125] for i in range(n)]


@pytest.fixture()
def got10k(tmp_path):
    """GOT-10k test split (first-frame ground truth only) and tools/test.py-style results for it."""
    root = tmp_path / "GOT-10k" / "test"
    for seq, n in LENGTHS.items():
        (root / seq).mkdir(parents=True)
        for i in range(1, n + 1):
            (root / seq / f"{i:08d}.jpg").write_bytes(b"")  # only listed, never decoded
        (root / seq / "groundtruth.txt").write_text("10,20,30,40\n")
    (root / "list.txt").write_text("".join(f"{s}\n" for s in LENGTHS))
    results = tmp_path / "results"
    for seq, n in LENGTHS.items():
        write_video_result(results, "GOT-10k-test", "trk", seq, _boxes(n), times=[0.01 * (i + 1) for i in range(n)],
                           kind="got10k")
    return tmp_path


@pytest.fixture()
def trackingnet(tmp_path):
    base = tmp_path / "TrackingNet" / "TEST"
    for seq, n in TN_LENGTHS.items():
        (base / "frames" / seq).mkdir(parents=True)
        for i in range(n):
            (base / "frames" / seq / f"{i}.jpg").write_bytes(b"")
        (base / "anno").mkdir(exist_ok=True)
        (base / "anno" / f"{seq}.txt").write_text("10,20,30,40\n")
    for seq, n in TN_LENGTHS.items():
        write_video_result(tmp_path / "results", "TrackingNet", "trk", seq, _boxes(n, 1.0), kind="ope")
    return tmp_path


def _pack(tmp: Path, dataset: str, root: Path, out: str = "sub.zip") -> list:
    return ["--dataset", dataset, "--dataset-root", str(root), "--tracker_path", str(tmp / "results"),
            "--tracker", "trk", "--out", str(tmp / out)]


def _zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n).decode() for n in zf.namelist()}


def test_got10k_layout_and_contents(got10k):
    assert main(_pack(got10k, "GOT-10k-test", got10k / "GOT-10k")) == 0
    files = _zip(got10k / "sub.zip")
    assert sorted(files) == ["GOT-10k_Test_000001/GOT-10k_Test_000001_001.txt",
                             "GOT-10k_Test_000001/GOT-10k_Test_000001_time.txt",
                             "GOT-10k_Test_000002/GOT-10k_Test_000002_001.txt",
                             "GOT-10k_Test_000002/GOT-10k_Test_000002_time.txt"]
    assert files["GOT-10k_Test_000002/GOT-10k_Test_000002_001.txt"] == (
        "10.5,20.25,30,40.125\n11.5,20.25,30,40.125\n12.5,20.25,30,40.125\n")
    assert files["GOT-10k_Test_000002/GOT-10k_Test_000002_time.txt"] == "0.01\n0.02\n0.03\n"
    first = (got10k / "sub.zip").read_bytes()
    assert main(_pack(got10k, "GOT-10k-test", got10k / "GOT-10k", "again.zip")) == 0
    assert (got10k / "again.zip").read_bytes() == first  # same results, same archive


def test_trackingnet_layout_and_whitespace_rewritten_to_commas(trackingnet):
    res = trackingnet / "results" / "TrackingNet" / "trk" / "zz-9_0.txt"
    res.write_text("1 2 3 4\n5\t6\t7\t8\n")  # another tool's spacing: still parsed, sent with commas
    assert main(_pack(trackingnet, "TrackingNet", trackingnet / "TrackingNet")) == 0
    files = _zip(trackingnet / "sub.zip")
    assert sorted(files) == ["aBcD_1.txt", "zz-9_0.txt"]  # at the archive root
    assert files["zz-9_0.txt"] == "1,2,3,4\n5,6,7,8\n"
    assert files["aBcD_1.txt"].splitlines()[0] == "11.5,20.25,30,40.125"


def test_vot_layout(tmp_path):
    root = tmp_path / "VOT2018"
    (root / "s1" / "color").mkdir(parents=True)
    for i in range(1, 5):
        (root / "s1" / "color" / f"{i:08d}.jpg").write_bytes(b"")
    (root / "s1" / "groundtruth.txt").write_text("1,1,9,1,9,9,1,9\n" * 4)
    (root / "list.txt").write_text("s1\n")
    write_video_result(tmp_path / "results", "VOT2018", "trk", "s1", [1, [1.5, 2.0, 8.0, 7.0], 2, 0], kind="vot")
    assert main(_pack(tmp_path, "VOT2018", root)) == 0
    assert _zip(tmp_path / "sub.zip") == {"baseline/s1/s1_001.txt": "1\n1.5,2,8,7\n2\n0\n"}


def _edit(path: Path, line_no: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = text
    path.write_text("\n".join(lines) + "\n")


SEQ = "GOT-10k_Test_000001"


@pytest.mark.parametrize("damage, expected", [
    (lambda d: (d / SEQ / f"{SEQ}_001.txt").unlink(), "1 of 2 GOT-10k-test sequences have no result; first: "),
    (lambda d: (d / SEQ / f"{SEQ}_001.txt").write_text("1,2,3,4\n" * 3), f"{SEQ}_001.txt, line 3: 3 lines, expected 4"),
    (lambda d: _edit(d / SEQ / f"{SEQ}_001.txt", 2, "1,2,nan,4"), f"{SEQ}_001.txt, line 2: non-finite value"),
    (lambda d: _edit(d / SEQ / f"{SEQ}_001.txt", 3, "1,2,0,4"), f"{SEQ}_001.txt, line 3: width and height must be"),
    (lambda d: _edit(d / SEQ / f"{SEQ}_001.txt", 4, "1,2,3,-4"), f"{SEQ}_001.txt, line 4: width and height must be"),
    (lambda d: _edit(d / SEQ / f"{SEQ}_001.txt", 2, "1,2,3"), f"{SEQ}_001.txt, line 2: 3 values, expected 4"),
    (lambda d: (d / SEQ / f"{SEQ}_time.txt").unlink(), f"{SEQ}_time.txt: file not found"),
    (lambda d: _edit(d / SEQ / f"{SEQ}_time.txt", 2, "-0.5"), f"{SEQ}_time.txt, line 2: negative time"),
    (lambda d: _edit(d / SEQ / f"{SEQ}_time.txt", 1, "inf"), f"{SEQ}_time.txt, line 1: non-finite value"),
])
def test_validation_errors_name_the_first_bad_file_and_line(got10k, capsys, damage, expected):
    damage(got10k / "results" / "GOT-10k-test" / "trk")
    line = tool_error(capsys, main, _pack(got10k, "GOT-10k-test", got10k / "GOT-10k"), 2)
    assert line.startswith("siamkpn-pack: error: ") and expected in line, line
    assert not (got10k / "sub.zip").exists()  # nothing written when anything is wrong


def test_usage_errors(got10k, capsys):
    args = _pack(got10k, "GOT-10k-test", got10k / "GOT-10k")
    line = tool_error(capsys, main, args[:-1] + [str(got10k / "sub.tar")], 2)
    assert ".zip" in line
    line = tool_error(capsys, main, args[:-3] + ["nobody", "--out", str(got10k / "sub.zip")], 2)
    assert "results" in line and "nobody" in line


def test_shim_and_console_script_layout(trackingnet):
    run = subprocess.run([sys.executable, str(REPO / "tools" / "pack_results.py"),
                          *_pack(trackingnet, "TrackingNet", trackingnet / "TrackingNet")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "2 sequences" in run.stdout and (trackingnet / "sub.zip").is_file()


def test_toolkit_submission_never_imports_torch_or_siamkpn():
    code = ("import sys, toolkit.submission; bad = [m for m in ('torch', 'siamkpn') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_json_video_name_that_is_a_path_never_becomes_an_archive_member(tmp_path, capsys):
    """Before: member ``baseline/../../../x/../../../x_001.txt`` (zip-slip), exit 0."""
    tmp_path = tmp_path / "a" / "b" / "c"  # what the name reaches stays inside the test's folder
    root, name = tmp_path / "VOT2018", "../../../x"
    (root / "s1" / "color").mkdir(parents=True)
    (root / "s1" / "color" / "00000001.jpg").write_bytes(b"")
    meta = {name: {"video_dir": "s1", "img_names": ["s1/color/00000001.jpg"], "gt_rect": [[1, 1, 9, 9]]}}
    (root / "VOT2018.json").write_text(json.dumps(meta))
    trk = tmp_path / "results" / "VOT2018" / "trk"
    (trk / "baseline" / name).mkdir(parents=True)
    (trk / "baseline" / name / "../../../x_001.txt").write_text("1\n")  # where the old packer read it
    line = tool_error(capsys, main, _pack(tmp_path, "VOT2018", root), 2)
    assert line.startswith(f"siamkpn-pack: error: {root / 'VOT2018.json'}: video name {name!r} holds a path sep")
    assert not (tmp_path / "sub.zip").exists()


def test_sequence_and_tracker_names_must_be_plain(got10k, capsys):
    trk = got10k / "results" / "GOT-10k-test" / "trk"
    with pytest.raises(UnsafeNameError, match=r"GOT-10k-test: sequence name '\.\./x'"):
        submission_entries("GOT-10k-test", trk, [("GOT-10k_Test_000001", 4), ("../x", 1)])
    args = _pack(got10k, "GOT-10k-test", got10k / "GOT-10k")
    args[args.index("--tracker") + 1] = "../GOT-10k-test/trk"  # the same results, reached through a path
    line = tool_error(capsys, main, args, 2)
    assert "--tracker: tracker name '../GOT-10k-test/trk' holds a path separator" in line
    assert not (got10k / "sub.zip").exists()


@pytest.mark.parametrize("member", ["../x.txt", "baseline/../../x.txt", "/abs.txt", "a//b.txt", "a\\..\\b.txt",
                                    "./a.txt", "a/", "a\x00b"])
def test_archive_members_are_plain_relative_paths(member):
    with pytest.raises(UnsafeNameError, match="archive member"):
        zip_bytes({"ok/ok_001.txt": "1\n", member: "1\n"})
    assert zip_bytes({"baseline/s1/s1_001.txt": "1\n"})[:2] == b"PK"
