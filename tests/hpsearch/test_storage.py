"""The study database: a damaged or unusable one is one clear error naming it (exit 2), and a worker that waits
for SQLite's lock says so (at most once every N seconds) instead of hanging silently."""
from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest

from helpers import tool_error, torch_threads
from hp_bench import bench, tool_argv  # noqa: F401 - the shared session fixture (no conftest here: it would shadow tests/conftest.py)
from siamkpn.cli.hp_search import main
from siamkpn.hpsearch import storage as hs
from siamkpn.hpsearch import study as st
from siamkpn.hpsearch.notice import Notices
from toolkit.errors import BadInput

ONE = ["--penalty-k", "0.1", "--window-influence", "0.5", "--lr", "0.5", "--level", "1", "--end-epoch", "1"]


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def test_a_corrupt_database_is_one_line_naming_it(bench, tmp_path, capsys):
    db = tmp_path / "res" / "OTB100" / "hp_search.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(os.urandom(4096))
    with pytest.raises(hs.StorageError, match=f"{db} is not a SQLite database") as err:
        st.open_storage(f"sqlite:///{db}")
    assert isinstance(err.value, BadInput)
    line = tool_error(capsys, main, tool_argv(bench, tmp_path / "res", "OTB100", *ONE))
    assert line == (f"siamkpn-hp-search: error: {db} is not a SQLite database (damaged, or another kind of file); "
                    "move it away or choose another --storage or --results-dir")


def test_a_storage_path_under_a_file_is_one_line_naming_it(bench, tmp_path, capsys):
    (tmp_path / "plain").write_text("a file, not a folder")
    db = tmp_path / "plain" / "hp.db"
    tic = time.monotonic()
    line = tool_error(capsys, main, tool_argv(bench, tmp_path / "res", "OTB100", *ONE, "--storage", f"sqlite:///{db}"))
    assert line.endswith(f"cannot create or open the study database {db}: its folder is missing or not writable")
    assert time.monotonic() - tic < 30  # no retrying of an error that cannot go away


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the path-under-a-file test "
                                               "covers the same SQLite error")
def test_an_unwritable_storage_folder_is_one_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with pytest.raises(hs.StorageError, match=f"cannot create or open the study database {folder / 'hp.db'}"):
        st.open_storage(f"sqlite:///{folder / 'hp.db'}")


def test_lock_waits_are_announced_and_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(hs, "LOCK_STEP_S", 0.1)  # SQLite's own wait per attempt; the default is 2 s
    db = tmp_path / "hp.db"
    notes = []
    storage = st.open_storage(f"sqlite:///{db}", notices=Notices(every=0.4, write=notes.append), lock_timeout=30)
    study = st.open_study(storage, "s", {"metric": "eao"})
    holder = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock for 1.5 s
    release = threading.Timer(1.5, lambda: holder.execute("COMMIT"))
    release.start()
    tic = time.monotonic()
    assert st.keyed_trials(study) == []
    waited = time.monotonic() - tic
    release.join()
    assert waited >= 1.4
    expected = f"waiting for the database lock on {db} (another process holds it"
    assert notes and all(n.startswith(expected) for n in notes)
    assert len(notes) <= waited / 0.4 + 1  # at most one note every 0.4 s

    holder.execute("BEGIN IMMEDIATE")  # a lock that is never released: a clear error after lock_timeout
    with pytest.raises(TimeoutError, match=f"the database lock on {db} has been held by another process for more "
                                           "than 1 s"):
        stuck = st.open_storage(f"sqlite:///{db}", notices=Notices(every=60, write=notes.append), lock_timeout=1)
        st.keyed_trials(st.open_study(stuck, "s", {"metric": "eao"}))
    holder.execute("ROLLBACK")
    holder.close()


def test_notices_are_rate_limited_per_topic():
    now = [0.0]
    said = []
    notices = Notices(every=10, write=said.append, clock=lambda: now[0])
    assert notices.say("a", "a1") and not notices.say("a", "a2") and notices.say("b", "b1")
    now[0] = 10.0
    assert notices.say("a", "a3")
    assert said == ["a1", "b1", "a3"]
