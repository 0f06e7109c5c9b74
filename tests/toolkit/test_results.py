"""Result files: pysot's layouts and number formats, atomic writes, strict readers."""
from __future__ import annotations

import errno
import math
import os
import re

import numpy as np
import pytest

from toolkit import results as R
from toolkit.names import UnsafeNameError
from toolkit.results import ResultFileError


def test_paths_follow_pysot_layout(tmp_path):
    assert R.result_kind("VOT2018") == "vot" and R.result_kind("VOT2016") == "vot"
    assert R.result_kind("VOT2018-LT") == "longterm" and R.result_kind("GOT-10k") == "got10k"
    assert R.result_kind("OTB100") == R.result_kind("LaSOT") == "ope"
    p = R.result_path(tmp_path, "OTB100", "T", "Basketball")
    assert p == tmp_path / "OTB100" / "T" / "Basketball.txt"
    assert R.result_path(tmp_path, "VOT2018", "T", "ants1") == tmp_path / "VOT2018/T/baseline/ants1/ants1_001.txt"
    assert R.result_path(tmp_path, "VOT2018-LT", "T", "car1") == tmp_path / "VOT2018-LT/T/longterm/car1/car1_001.txt"
    assert R.result_path(tmp_path, "GOT-10k", "T", "v1") == tmp_path / "GOT-10k/T/v1/v1_001.txt"
    assert R.result_path(tmp_path, "Custom", "T", "v", kind="vot").parts[-3:] == ("baseline", "v", "v_001.txt")
    with pytest.raises(ValueError, match="valid kinds"):
        R.result_path(tmp_path, "OTB100", "T", "v", kind="bogus")


def test_ope_write_read_roundtrip_uses_repr_floats(tmp_path):
    boxes = [[134.5, 106.5, 56.0, 55.0], [np.float64(0.1) + 0.2, 1, np.float32(2.5), 3.25]]
    path = R.write_video_result(tmp_path, "OTB100", "T", "Seq", boxes)
    assert path.read_text() == "134.5,106.5,56.0,55.0\n0.30000000000000004,1.0,2.5,3.25\n"
    assert R.read_ope(path, expected_len=2) == [[134.5, 106.5, 56.0, 55.0], [0.30000000000000004, 1.0, 2.5, 3.25]]
    assert R.format_ope_line(np.array([0.1, 2], np.float32)) == "0.1,2.0"  # not 0.10000000149011612


def test_vot_format_matches_published_file(reference_dir):
    """%.4f after a float32 cast: the published short file from the full-precision one, line by line."""
    full = (reference_dir / "tracker_vot_full.txt").read_text().split()
    short = (reference_dir / "tracker_vot.txt").read_text().split()
    lines = [int(s) if "," not in s else [float(v) for v in s.split(",")] for s in full]
    assert [R.format_vot_line(x) for x in lines] == short


def test_vot_markers_and_float32_rounding():
    # A value of the r18 fixture run: plain %.4f gives 37.1741, the published writer (C float) 37.1740.
    assert R.format_vot_line([37.174051122725345, 1, 2.5, 3]) == "37.1740,1.0000,2.5000,3.0000"
    assert R.format_vot_line(2) == "2" and R.format_vot_line(np.int64(0)) == "0"
    with pytest.raises(ValueError, match="marker"):
        R.format_vot_line(3)
    with pytest.raises(ValueError, match="non-finite"):
        R.format_vot_line([math.nan, 1, 2, 3])


def test_vot_read_fixture_results(eval_fixture_dir):
    path = eval_fixture_dir / "results/VOT2018/TrkPoly/baseline/vseq1/vseq1_001.txt"
    lines = R.read_vot(path, expected_len=130)
    assert lines[0] == [1.0] and {len(x) for x in lines} <= {1, 8} and any(len(x) == 8 for x in lines)


def test_longterm_three_files(tmp_path):
    boxes = [[1], [1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0]]
    R.write_video_result(tmp_path, "VOT2018-LT", "T", "car1", boxes, scores=[None, 0.5, 0.25], times=[0.1, 0.2, 0.3])
    d = tmp_path / "VOT2018-LT/T/longterm/car1"
    assert (d / "car1_001.txt").read_text() == "1\n1.0,2.0,3.0,4.0\n2.0,3.0,4.0,5.0\n"
    assert (d / "car1_001_confidence.value").read_text() == "\n0.500000\n0.250000\n"
    assert (d / "car1_time.txt").read_text() == "0.100000\n0.200000\n0.300000\n"
    got, scores, times = R.read_longterm(d, expected_len=3)
    assert got == [[1.0], [1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0]]
    assert math.isnan(scores[0]) and scores[1:] == [0.5, 0.25] and times == [0.1, 0.2, 0.3]
    with pytest.raises(ValueError, match="score per frame"):
        R.write_video_result(tmp_path, "VOT2018-LT", "T", "car2", boxes, times=[0.1, 0.2, 0.3])


def test_got10k_two_files(tmp_path):
    R.write_video_result(tmp_path, "GOT-10k", "T", "GOT-10k_Test_000001", [[1, 2, 3, 4]] * 2, times=[0.5, 0.25])
    d = tmp_path / "GOT-10k/T/GOT-10k_Test_000001"
    assert sorted(p.name for p in d.iterdir()) == ["GOT-10k_Test_000001_001.txt", "GOT-10k_Test_000001_time.txt"]
    assert R.read_got10k(d / "GOT-10k_Test_000001_001.txt") == [[1.0, 2.0, 3.0, 4.0]] * 2
    with pytest.raises(ValueError, match="time per frame"):
        R.write_video_result(tmp_path, "GOT-10k", "T", "v", [[1, 2, 3, 4]])


def test_is_finished_for_resume(tmp_path):
    assert not R.is_finished(tmp_path, "OTB100", "T", "Seq")
    R.write_video_result(tmp_path, "OTB100", "T", "Seq", [[1, 2, 3, 4]] * 3)
    assert R.is_finished(tmp_path, "OTB100", "T", "Seq")
    assert R.is_finished(tmp_path, "OTB100", "T", "Seq", num_frames=3)
    assert not R.is_finished(tmp_path, "OTB100", "T", "Seq", num_frames=4)
    R.write_video_result(tmp_path, "VOT2018-LT", "T", "v", [[1], [1, 2, 3, 4]], scores=[None, 1], times=[0, 0])
    assert R.is_finished(tmp_path, "VOT2018-LT", "T", "v", num_frames=2)
    (tmp_path / "VOT2018-LT/T/longterm/v/v_time.txt").unlink()
    assert not R.is_finished(tmp_path, "VOT2018-LT", "T", "v")
    bad = R.result_path(tmp_path, "VOT2018", "T", "w")
    bad.parent.mkdir(parents=True)
    bad.write_text("1\n1.0,2.0\n")
    assert not R.is_finished(tmp_path, "VOT2018", "T", "w")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = R.write_video_result(tmp_path, "OTB100", "T", "Seq", [[1, 2, 3, 4]])
    before = path.read_text()

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        R.write_video_result(tmp_path, "OTB100", "T", "Seq", [[5, 6, 7, 8]] * 100)
    with pytest.raises(OSError):
        R.write_video_result(tmp_path, "OTB100", "T", "New", [[5, 6, 7, 8]])
    assert path.read_text() == before  # the old result is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["Seq.txt"]  # no temp files, no half file


@pytest.mark.parametrize("kind, dataset", [("ope", "OTB100"), ("longterm", "VOT2018-LT")])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_disk_full_names_the_result_file_and_keeps_the_errno(tmp_path, monkeypatch, kind, dataset, code):
    old = R.write_video_result(tmp_path, dataset, "T", "Seq", [[1, 2, 3, 4]] * 3, scores=[None, 0.5, 0.5],
                               times=[0.1] * 3, kind=kind)
    before = {p: p.read_bytes() for p in old.parent.iterdir()}

    def disk_full(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError) as err:
        R.write_video_result(tmp_path, dataset, "T", "Seq", [[5, 6, 7, 8]] * 3, scores=[None, 0.1, 0.1],
                             times=[0.2] * 3, kind=kind)
    assert err.value.errno == code
    first = R.result_files(tmp_path / dataset / "T", "Seq", kind)["confidence" if kind == "longterm" else "boxes"]
    assert str(err.value).endswith(f"cannot write {first}: {os.strerror(code)}")
    assert {p: p.read_bytes() for p in old.parent.iterdir()} == before  # the old files whole, no temporary file


def test_result_files_get_the_users_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = R.write_video_result(tmp_path, "OTB100", "T", "Seq", [[1, 2, 3, 4]])
        os.umask(0o002)
        shared = R.write_video_result(tmp_path, "OTB100", "T", "Shared", [[1, 2, 3, 4]])
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)  # mkstemp alone made these 0600
    assert oct(shared.stat().st_mode & 0o777) == oct(0o664)


def test_writer_refuses_non_finite_boxes(tmp_path):
    with pytest.raises(ValueError, match="non-finite"):
        R.write_video_result(tmp_path, "OTB100", "T", "Seq", [[1, 2, 3, 4], [math.inf, 0, 1, 1]])
    assert not (tmp_path / "OTB100/T/Seq.txt").exists()


@pytest.mark.parametrize("text, line, reason", [
    ("", 0, "empty file"),
    ("\n\n", 0, "empty file"),
    ("1,2,3,4\n\n5,6,7,8\n", 2, "blank line"),
    ("1,2,3,4\n1,2,x,4\n", 2, "not numbers"),
    ("1,2,3,4\n1,2,3\n", 2, "3 values"),
    ("1,2,3,4\nnan,2,3,4\n", 2, "non-finite"),
    ("1,2,3,4\n1,2,3,inf\n", 2, "non-finite"),
])
def test_ope_reader_errors_name_file_and_line(tmp_path, text, line, reason):
    path = tmp_path / "Seq.txt"
    path.write_text(text)
    with pytest.raises(ResultFileError, match=reason) as e:
        R.read_ope(path)
    assert isinstance(e.value, ValueError)
    assert e.value.path == str(path) and e.value.line_no == line and str(path) in str(e.value)


def test_readers_detect_truncation_and_bad_markers(tmp_path):
    path = tmp_path / "v_001.txt"
    path.write_text("1,2,3,4\n" * 5)
    with pytest.raises(ResultFileError, match="5 lines, expected 7"):
        R.read_ope(path, expected_len=7)
    path.write_text("1\n3\n")
    with pytest.raises(ResultFileError, match="marker must be 0, 1 or 2") as e:
        R.read_vot(path)
    assert e.value.line_no == 2
    path.write_text("1.0,2.0,3.0,4.0\n")
    with pytest.raises(ResultFileError, match="initialisation marker"):
        R.read_vot(path)
    with pytest.raises(ResultFileError, match="file not found"):
        R.read_ope(tmp_path / "missing.txt")
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ResultFileError, match="not a text file"):
        R.read_ope(path)


def test_reader_accepts_tabs_spaces_and_crlf(tmp_path):
    path = tmp_path / "Seq.txt"
    path.write_bytes(b"1\t2\t3\t4\r\n5 6 7 8\r\n")
    assert R.read_ope(path) == [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]


# ------------------------------------------------------------------ names are data; one rule for valid lines

UNSAFE = ("../../x", "/abs/victim", "a/b", "a\\b", "..", ".", "", "x\x00y")


@pytest.mark.parametrize("kind", R.KINDS)
@pytest.mark.parametrize("name", UNSAFE)
def test_result_paths_never_leave_the_tracker_folder(tmp_path, kind, name):
    with pytest.raises(UnsafeNameError, match=rf"video name {re.escape(repr(name))}"):
        R.result_files(tmp_path / "T", name, kind)
    with pytest.raises(UnsafeNameError, match=rf"tracker name {re.escape(repr(name))}"):
        R.write_video_result(tmp_path / "r", "OTB100", name, "v", [[1, 2, 3, 4]], times=[0.0], scores=[None],
                             kind=kind)
    with pytest.raises(UnsafeNameError):
        R.write_video_result(tmp_path / "r", "OTB100", "T", name, [[1, 2, 3, 4]], times=[0.0], scores=[None],
                             kind=kind)
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # nothing written, anywhere


def test_a_result_path_resolving_outside_its_folder_is_refused(tmp_path):
    (tmp_path / "r/OTB100/T").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    (tmp_path / "r/OTB100/T/Seq.txt").symlink_to(victim)
    with pytest.raises(UnsafeNameError, match=r"video name 'Seq': .* resolves to .*victim.txt, outside"):
        R.write_video_result(tmp_path / "r", "OTB100", "T", "Seq", [[1, 2, 3, 4]])
    assert victim.read_text() == "the user's file\n"
    (tmp_path / "elsewhere").mkdir()  # a tracker folder may be a symlink (results on another disk): still written
    (tmp_path / "r/OTB100/L").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    R.write_video_result(tmp_path / "r", "OTB100", "L", "Seq", [[1, 2, 3, 4]])
    assert (tmp_path / "elsewhere/Seq.txt").read_text() == "1.0,2.0,3.0,4.0\n"


@pytest.mark.parametrize("reader, name, text, line", [
    (R.read_ope, "v.txt", "1,2,3,4\n1,2,-3,4\n", 2),
    (R.read_got10k, "v_001.txt", "1,2,3,4\n1,2,3,-0.5\n", 2),
    (R.read_vot, "v_001.txt", "1\n1,2,3,4\n2\n0\n1\n-1,2,-3,4\n", 6),
])
def test_every_reader_refuses_a_negative_size_naming_file_and_line(tmp_path, reader, name, text, line):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ResultFileError, match="width and height must be >= 0") as e:
        reader(path)
    assert e.value.path == str(path) and e.value.line_no == line
    path.write_text(text.replace("-", ""))
    assert reader(path)  # the same lines with sizes >= 0 read
    path.write_text(text.replace("-0.5", "0").replace("-3", "0"))
    assert reader(path)  # zero size: a box that overlaps nothing, scored as a miss


def test_longterm_reader_refuses_a_negative_size(tmp_path):
    folder = R.write_video_result(tmp_path, "VOT2018-LT", "T", "car", [[1], [1, 2, 3, 4], [1, 2, 0, 0]],
                                  scores=[None, 0.5, 0.1], times=[0.1] * 3).parent
    assert R.read_longterm(folder)[0][2] == [1.0, 2.0, 0.0, 0.0]
    (folder / "car_001.txt").write_text("1\n1,2,3,4\n1,2,-1,4\n")
    with pytest.raises(ResultFileError, match=r"car_001.txt, line 3: width and height must be >= 0: 1,2,-1,4"):
        R.read_longterm(folder)


def test_writer_refuses_negative_sizes_it_could_not_read_back(tmp_path):
    for kind, boxes in (("ope", [[1, 2, 3, 4], [1, 2, -3, 4]]), ("vot", [1, [1, 2, 3, -4]])):
        with pytest.raises(ValueError, match="negative width or height"):
            R.write_video_result(tmp_path, "X", "T", "Seq", boxes, kind=kind)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    R.write_video_result(tmp_path, "X", "T", "Seq", [[1, 2, 3, 4], [1, 2, 0, 0]], kind="ope")  # zero is fine


def test_eval_refuses_a_negative_size_the_packer_refuses(tmp_path, capsys):
    from helpers import tool_error
    from siamkpn.cli.eval import main

    (tmp_path / "OTB100/Seq/img").mkdir(parents=True)
    for i in range(1, 4):
        (tmp_path / f"OTB100/Seq/img/{i:04d}.jpg").write_bytes(b"")  # listed, never decoded
    (tmp_path / "OTB100/Seq/groundtruth_rect.txt").write_text("1,2,3,4\n" * 3)
    path = R.write_video_result(tmp_path / "results", "OTB100", "T", "Seq", [[1, 2, 3, 4]] * 3)
    path.write_text("1,2,3,4\n1,2,-3,4\n1,2,3,4\n")
    line = tool_error(capsys, main, ["--tracker-path", str(tmp_path / "results"), "--dataset", "OTB100",
                                     "--dataset-root", str(tmp_path / "OTB100"), "--no-progress"], 2)
    assert line == f"siamkpn-eval: error: {path}, line 2: width and height must be >= 0: 1,2,-3,4"
