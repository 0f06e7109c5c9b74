"""toolkit.atomic: a failed write (disk full, quota, file too large) names the file and leaves the old one."""
from __future__ import annotations

import errno
import os

import pytest

from toolkit.atomic import atomic_write, atomic_write_json, atomic_write_stream, temp_files


def _fail_fsync(monkeypatch, code):
    def fail(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fail)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_failed_write_names_the_file_keeps_the_errno_and_the_old_content(tmp_path, monkeypatch, code):
    path = tmp_path / "summary.json"
    atomic_write_json(str(path), {"old": 1})
    _fail_fsync(monkeypatch, code)
    with pytest.raises(OSError) as err:
        atomic_write_json(str(path), {"new": 2})
    assert err.value.errno == code and str(err.value).endswith(f"cannot write {path}: {os.strerror(code)}")
    assert path.read_text() == '{\n  "old": 1\n}\n' and temp_files(str(tmp_path)) == []


def test_the_caller_may_say_what_the_file_is_and_errors_without_errno_still_name_it(tmp_path, monkeypatch):
    path = str(tmp_path / "model.bin")

    def broken(f):
        raise OSError("device went away")

    with pytest.raises(OSError, match=rf"^cannot write model {path}: device went away$"):
        atomic_write_stream(path, broken, binary=True, what="model")
    def wrong(f):
        raise ValueError("not serialisable")

    with pytest.raises(ValueError, match="^not serialisable$"):  # not an OSError: passed on as it is
        atomic_write_stream(path, wrong)
    assert os.listdir(tmp_path) == []



def test_text_and_bytes_land_whole_with_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        text, data = tmp_path / "a" / "lines.txt", tmp_path / "crop.jpg"
        assert atomic_write(text, "x\ny\n") == str(text) and atomic_write(data, b"\xff\xd8") == str(data)
    finally:
        os.umask(old)
    assert text.read_bytes() == b"x\ny\n" and data.read_bytes() == b"\xff\xd8"
    assert os.stat(text).st_mode & 0o777 == 0o640 and temp_files(str(tmp_path)) == []
