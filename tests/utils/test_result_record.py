"""The one record of what produced a result folder (siamkpn-test and the search share it): written before the first
result, compared on every rerun, refused without it when results are there, removed first on a reset."""
from __future__ import annotations

import errno
import json
import os

import pytest

from siamkpn.tracker.provenance import RECORD_NAME, prepare_result_folder
from siamkpn.utils.provenance import provenance_differences
from siamkpn.utils.result_record import ResultRecord
from toolkit.errors import BadInput


class FolderError(BadInput):
    pass


RECORD = ResultRecord("inputs.json", FolderError, "use another folder", section="inputs", shown=2)


def _claim(folder, inputs, files=()):
    RECORD.claim(str(folder), {"inputs": inputs}, [str(f) for f in files],
                 lambda recorded: provenance_differences(recorded["inputs"], inputs))


def test_an_empty_folder_gets_the_record_and_the_same_inputs_resume(tmp_path):
    _claim(tmp_path, {"a": 1, "b": [1, 2]})
    text = (tmp_path / "inputs.json").read_text()
    assert text == '{\n  "inputs": {\n    "a": 1,\n    "b": [\n      1,\n      2\n    ]\n  }\n}\n'
    _claim(tmp_path, {"a": 1, "b": [1, 2]})
    assert (tmp_path / "inputs.json").read_text() == text and RECORD.read(str(tmp_path)) == json.loads(text)


def test_other_inputs_are_refused_naming_the_first_differences_and_the_remedy(tmp_path):
    _claim(tmp_path, {"a": 1, "b": 2, "c": 3})
    with pytest.raises(FolderError, match=r"holds results of other inputs: a: recorded 1, now 9; b: recorded 2, "
                                          r"now 9; and 1 more; use another folder$"):
        _claim(tmp_path, {"a": 9, "b": 9, "c": 9})


def test_results_without_a_record_and_unreadable_records_are_refused(tmp_path):
    result = tmp_path / "v.txt"
    result.write_text("1,2,3,4\n")
    with pytest.raises(FolderError, match=r"holds result files \(e\.g\. .*v\.txt\) but no record of what produced "
                                          r"them \(inputs\.json; 1 result file\(s\) in all\); use another folder"):
        _claim(tmp_path, {"a": 1}, [result, tmp_path / "absent.txt"])
    for text, problem in (("{broken", "unreadable record"), ("[1]", "not a JSON object"),
                          ('{"inputs": 3}', "no 'inputs' mapping")):
        (tmp_path / "inputs.json").write_text(text)
        with pytest.raises(FolderError, match=problem):
            _claim(tmp_path, {"a": 1}, [result])


def test_reset_removes_the_record_first_then_the_results(tmp_path):
    _claim(tmp_path, {"a": 1})
    result, notes = tmp_path / "v.txt", tmp_path / "notes.md"
    result.write_text("x")
    notes.write_text("kept")
    RECORD.reset(str(tmp_path), [str(result)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md"]


def test_disk_full_while_recording_provenance_names_the_record(tmp_path, monkeypatch):
    lock, fsync = tmp_path / ".provenance.lock", os.fsync

    def fail(fd):
        if lock.exists() and os.path.samestat(os.fstat(fd), os.stat(lock)):
            return fsync(fd)  # the record lock's own write (a full disk there: tests/utils/test_claims.py)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match=rf"cannot write {tmp_path / RECORD_NAME}: No space left on device"):
        prepare_result_folder(str(tmp_path), {"snapshot": "x"}, [], False, {"tool": "test"})
    assert os.listdir(tmp_path) == []
