"""The study database: opening a URL with a driver that is installed, errors that name the database, retries of
the races concurrent workers cause, and SQLite's write lock taken at the start of every transaction (waits for it
are announced, never silent).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import sqlite3
import time
import warnings
from typing import Any, Callable, Dict, Iterator, Optional, TypeVar

import optuna

from siamkpn.hpsearch.notice import Notices
from toolkit.errors import BadInput, BadValue

__all__ = ["StorageError", "StorageFullError", "LOCK_STEP_S", "NOTICES", "default_storage_url", "shown_url",
           "open_storage", "storage_errors", "disk_full_errors", "retry_storage", "retry_race"]

T = TypeVar("T")
LOCK_STEP_S = 2.0  # SQLite's own busy wait per attempt; between attempts the worker says what it waits for
NOTICES = Notices(every=30.0)  # the default: one note per wait topic every 30 s at most

try:  # optuna >= 4.9 renamed the callback
    from optuna.storages import RetryHeartbeatStaleTrialCallback as _Retry
    _CALLBACK_ARG = "heartbeat_stale_trial_callback"
except ImportError:  # pragma: no cover - older optuna
    from optuna.storages import RetryFailedTrialCallback as _Retry
    _CALLBACK_ARG = "failed_trial_callback"

# Driver modules per URL scheme without one, in order of preference. SQLAlchemy 2.1 maps a bare postgresql://
# to psycopg (3), while the `postgres` extra installs psycopg2: pick whichever is there.
_DRIVERS = {"postgresql": ("psycopg2", "psycopg"), "mysql": ("MySQLdb", "pymysql", "mysql.connector")}
_DRIVER_NAMES = {"MySQLdb": "mysqldb", "mysql.connector": "mysqlconnector"}
_EXTRAS = {"postgresql": "pip install psycopg2-binary (the 'postgres' extra)", "mysql": "pip install pymysql"}


class StorageError(BadInput, RuntimeError):
    """The study database cannot be opened or used (corrupt file, unwritable path, server unreachable)."""


class StorageFullError(RuntimeError):
    """The study database could not be written: its disk is full (a failure while running, not bad input)."""


def default_storage_url(results_dir: str, dataset: str) -> str:
    """``sqlite:///<results_dir>/<dataset>/hp_search.db`` (absolute), creating the folder."""
    folder = os.path.abspath(os.path.join(results_dir, dataset))
    os.makedirs(folder, exist_ok=True)
    return "sqlite:///" + os.path.join(folder, "hp_search.db")


def shown_url(url: str) -> str:
    """The URL as printed: the password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _sqlite_path(url: str) -> Optional[str]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.database if parsed.get_backend_name() == "sqlite" else None


def _with_driver(url: str) -> str:
    """The URL with an installed driver named where it names none (``postgresql://`` -> ``postgresql+psycopg2://``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"--storage {url!r} is not a database URL (sqlite:///file.db, "
                           "postgresql://user:password@host/database)") from None
    modules = _DRIVERS.get(parsed.drivername)
    if modules is None:
        return url
    for module in modules:
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            driver = _DRIVER_NAMES.get(module, module)
            return parsed.set(drivername=f"{parsed.drivername}+{driver}").render_as_string(hide_password=False)
    raise StorageError(f"--storage {shown_url(url)}: no {parsed.drivername} driver is installed; "
                       f"{_EXTRAS[parsed.drivername]}")


def _messages(err: BaseException) -> Iterator[str]:
    """The messages of an error and of what caused it (driver errors hide under SQLAlchemy's and optuna's)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        orig = getattr(err, "orig", None)
        yield str(orig if orig is not None else err)
        err = err.__cause__ or err.__context__


def _locked(err: BaseException) -> bool:
    return any("database is locked" in m or "database is busy" in m for m in _messages(err))


# SQLite's SQLITE_FULL, and ENOSPC as the OS (or a server database) words it. optuna wraps either in a
# StorageInternalError saying "This typically happens due to invalid data in the commit, e.g. exceeding max length".
_FULL = ("database or disk is full", "No space left on device")


def _disk_full(err: BaseException) -> bool:
    return any(f in m for m in _messages(err) for f in _FULL)


def _reason(err: BaseException, url: str) -> str:
    """One line on why the database at `url` cannot be used."""
    path = _sqlite_path(url)
    text = " | ".join(_messages(err))
    if _disk_full(err):
        return f"cannot write the study database {path or shown_url(url)}: No space left on device (database or " \
               "disk is full)"
    if path and "file is not a database" in text:
        return f"{path} is not a SQLite database (damaged, or another kind of file); move it away or choose " \
               "another --storage or --results-dir"
    if path and "unable to open database file" in text:
        return f"cannot create or open the study database {path}: its folder is missing or not writable"
    if path and "readonly database" in text:
        return f"the study database {path} is read-only"
    if isinstance(err, ImportError):
        return f"no driver for {shown_url(url)} is installed ({err})"
    first = next((m for m in _messages(err) if m and "exception is raised during the commit" not in m), repr(err))
    first = first.strip().splitlines()[0] if first.strip() else type(err).__name__
    return f"cannot use the study database {shown_url(url)}: {first}"


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn the database errors raised inside into one StorageError naming the database."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, sqlite3.Error, optuna.exceptions.StorageInternalError, ImportError) as err:
        raise (StorageFullError if _disk_full(err) else StorageError)(_reason(err, url)) from err


@contextlib.contextmanager
def disk_full_errors(url: str) -> Iterator[None]:
    """Turn a full disk met while writing the study database at `url` into one StorageFullError naming it (exit 1);
    every other error passes unchanged."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, sqlite3.Error, optuna.exceptions.StorageInternalError) as err:
        if not _disk_full(err):
            raise
        raise StorageFullError(_reason(err, url)) from err


def wait_for_lock(fn: Callable[[], T], path: str, timeout: float, notices: Notices) -> T:
    """Call fn until it gets past SQLite's write lock, saying every so often what it waits for."""
    start = time.monotonic()
    while True:
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - only a held lock is waited for; the rest is re-raised
            if not _locked(err):
                raise
            waited = time.monotonic() - start
            if waited >= timeout:
                raise TimeoutError(f"the database lock on {path} has been held by another process for more than "
                                   f"{timeout:.0f} s; is a worker hung, or the file on a network disk?") from None
            notices.say(f"lock {path}", f"waiting for the database lock on {path} (another process holds it; "
                                        f"{waited:.0f} s so far)")


def _serialize_sqlite(engine: Any, path: str, lock_timeout: float, notices: Notices) -> None:
    """Start every SQLite transaction with BEGIN IMMEDIATE; use the write-ahead log.

    pysqlite only begins a transaction at the first write, so two processes can both read a trial as
    WAITING and both claim it; an immediate write lock makes the read-check-write of a claim atomic.
    WAL with synchronous=NORMAL makes a commit cheap (no fsync each time); it needs every process on
    one machine with the file on a local disk, which is what a SQLite study is for (several machines:
    use a server database URL).
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        wait_for_lock(lambda: dbapi_connection.execute("PRAGMA journal_mode=WAL"), path, lock_timeout, notices)
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        # on the driver's connection: a failed BEGIN leaves it outside any transaction, so it can simply be retried
        raw = connection.connection.driver_connection
        wait_for_lock(lambda: raw.execute("BEGIN IMMEDIATE"), path, lock_timeout, notices)

    engine.dispose()  # pooled connections were opened before the listeners


def open_storage(url: str, heartbeat_interval: int = 60, grace_period: Optional[int] = None, max_retry: int = 3,
                 lock_timeout: float = 600.0, notices: Optional[Notices] = None) -> optuna.storages.RDBStorage:
    """An RDBStorage with heartbeats (stale trials re-enqueued up to max_retry times); StorageError naming the
    database when it cannot be opened; SQLite lock waits announced through `notices` and given up after
    `lock_timeout` seconds."""
    if "://" not in url:
        raise BadValue(f"--storage must be a database URL (sqlite:///file.db, postgresql://...), got {url!r}")
    notices = notices or NOTICES
    with storage_errors(url):
        driver_url = _with_driver(url)
        path = _sqlite_path(driver_url)
        kwargs: Dict[str, Any] = {"connect_args": {"timeout": LOCK_STEP_S}} if path else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback = _Retry(max_retry=max_retry)

        def make() -> optuna.storages.RDBStorage:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(driver_url, engine_kwargs=kwargs,
                                                  heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                                  **{_CALLBACK_ARG: callback})

        if path:
            storage = retry_race(lambda: wait_for_lock(make, path, lock_timeout, notices))
            _serialize_sqlite(storage.engine, path, lock_timeout, notices)
        else:
            storage = retry_race(make)  # concurrent first use may race on creating the tables
    return storage


def retry_storage(fn: Callable[[], T], attempts: int = 8) -> T:
    """Call fn, retrying the transient errors a busy shared database gives (races between workers); a full disk is
    not transient and is raised at once."""
    for i in range(attempts):
        try:
            return fn()
        except optuna.exceptions.StorageInternalError as err:
            if i == attempts - 1 or _disk_full(err):
                raise
            time.sleep(0.05 * 2 ** i * (1 + random.random()))
    raise AssertionError("unreachable")


# What two processes creating the tables or the study at once run into; anything else is not retried.
_RACES = ("already exists", "duplicate", "unique constraint", "could not serialize", "deadlock")


def retry_race(fn: Callable[[], T], attempts: int = 6) -> T:
    """Call fn, retrying the errors concurrent first use gives (two processes creating the tables or the study)."""
    from sqlalchemy import exc

    for i in range(attempts):
        try:
            return fn()
        except (exc.IntegrityError, optuna.exceptions.DuplicatedStudyError):
            if i == attempts - 1:
                raise
        except (exc.OperationalError, exc.ProgrammingError, optuna.exceptions.StorageInternalError) as err:
            if i == attempts - 1 or not any(r in m.lower() for m in _messages(err) for r in _RACES):
                raise
        time.sleep(0.1 * (i + 1) * (1 + random.random()))
    raise AssertionError("unreachable")
