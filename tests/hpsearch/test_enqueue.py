"""The worker's cost and its faults: the grid is enumerated, never listed; enqueueing many shows progress; a full
disk is reported as the write that met it."""
from __future__ import annotations

import errno
import sqlite3

import optuna
import pytest

import siamkpn.hpsearch.study as st
import siamkpn.hpsearch.worker as worker
from siamkpn.hpsearch.grid import SearchSpace
from siamkpn.hpsearch.worker import WorkerOptions, run_worker


def _open(tmp_path):
    storage = st.open_storage(f"sqlite:///{tmp_path / 'hp.db'}")
    return storage, st.open_study(storage, "s", {"metric": "eao"})


def _scores(points):
    return {p.name: {"eao": 0.5 - p.penalty_k} for p in points}


def test_the_worker_enqueues_the_grid_one_point_at_a_time_and_shows_it(tmp_path, monkeypatch, capsys):
    def listed(self):
        raise AssertionError("the search listed its whole grid")

    monkeypatch.setattr(SearchSpace, "level1", listed)  # the worker used to make the grid a list
    monkeypatch.setattr(st, "ENQUEUE_BAR_MIN", 2)
    storage, study = _open(tmp_path)
    heartbeat = st.Heartbeat(storage, 60)
    try:
        stats = run_worker(study, SearchSpace([1, 2], [0.1, 0.2], [0.5], [0.4]), _scores,
                           WorkerOptions("eao", batch=4, refine_top=1, poll=0.05, progress=True), heartbeat)
    finally:
        heartbeat.close()
    assert stats.enqueued == {1: 4, 2: 2} and len(stats.evaluated) == 6
    err = capsys.readouterr().err
    assert "enqueueing level 1:   0%| " in err and "0/4" in err and "enqueueing level 2" in err  # totals known


def test_enqueueing_a_few_points_shows_no_bar(tmp_path, capsys):
    _, study = _open(tmp_path)
    assert st.enqueue_missing(study, SearchSpace([1], [0.1, 0.2], [0.5], [0.4]).iter_level1(), 1, total=2,
                              progress=True) == 2
    assert "enqueueing" not in capsys.readouterr().err


def test_a_result_file_on_a_full_disk_is_the_error_reported_not_the_database_after_it(tmp_path, monkeypatch):
    def database_full(*args, **kwargs):
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as err:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit. This typically "
                                                         "happens due to invalid data in the commit, e.g. exceeding "
                                                         "max length.") from err

    def evaluate(points):
        monkeypatch.setattr(worker, "tell_failure", database_full)  # the same disk holds the study database
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "res" / "video.txt"))

    storage, study = _open(tmp_path)
    heartbeat = st.Heartbeat(storage, 60)
    try:
        with pytest.raises(OSError) as err:
            run_worker(study, SearchSpace([1], [0.1], [0.5], [0.4]), evaluate,
                       WorkerOptions("eao", levels=(1,), poll=0.05, progress=False), heartbeat)
    finally:
        heartbeat.close()
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "res" / "video.txt")
