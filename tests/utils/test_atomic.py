"""siamkpn.utils.atomic: a failed write (disk full, quota, file too large) names the file and leaves the old one."""
from __future__ import annotations

import errno
import os

import pytest

from siamkpn.tracker.provenance import RECORD_NAME, prepare_result_folder
from siamkpn.utils.atomic import atomic_write, atomic_write_json, temp_files


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
        atomic_write(path, broken, binary=True, what="model")
    def wrong(f):
        raise ValueError("not serialisable")

    with pytest.raises(ValueError, match="^not serialisable$"):  # not an OSError: passed on as it is
        atomic_write(path, wrong)
    assert os.listdir(tmp_path) == []


def test_disk_full_while_recording_provenance_names_the_record(tmp_path, monkeypatch):
    _fail_fsync(monkeypatch, errno.ENOSPC)
    with pytest.raises(OSError, match=rf"cannot write {tmp_path / RECORD_NAME}: No space left on device"):
        prepare_result_folder(str(tmp_path), {"snapshot": "x"}, [], False, {"tool": "test"})
    assert os.listdir(tmp_path) == []
