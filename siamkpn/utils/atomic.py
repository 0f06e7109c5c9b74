"""Atomic file writes for the siamkpn layer (snapshots, crops, summaries, reports).

The content goes to a temporary file in the target's folder, is flushed and fsync'ed, gets the
permissions a plain ``open()`` would give under the user's umask (``mkstemp`` alone makes 0600), and
is renamed over the target: a reader sees the old file or the whole new one, never a part. On any
error the temporary file is removed, and an OSError (disk full, quota) is re-raised naming the target
(the OS names none, or the temporary file). A process killed mid-write can still leave one behind; such
leftovers match :func:`temp_files` and are safe to delete.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import IO, Any, Callable, List

__all__ = ["TEMP_SUFFIX", "atomic_write", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "temp_files",
           "write_error"]

TEMP_SUFFIX = ".partial"


def _umask_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_error(path: str, err: OSError, what: str = "") -> OSError:
    """``err`` (disk full, quota, ...) as the same kind of OSError whose message names the file it was writing.

    The OS's own message often names no file (``[Errno 28] No space left on device``) or a temporary one.
    """
    target = f"{what} {path}" if what else str(path)
    if err.errno is None:
        return OSError(f"cannot write {target}: {err}")
    return OSError(err.errno, f"cannot write {target}: {err.strerror or err}")


def atomic_write(path: str, write: Callable[[IO], Any], binary: bool = False, what: str = "") -> str:
    """Call ``write(f)`` on a temporary file, then move it to ``path`` in one rename; returns ``path``.

    An OSError while writing (disk full, quota) names ``path`` (after ``what``, e.g. "checkpoint"), not the
    temporary file; the errno is kept.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=TEMP_SUFFIX, dir=folder)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": "\n"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise write_error(path, err, what) from err
        raise
    return path


def atomic_write_text(path: str, text: str) -> str:
    """Write ``text`` atomically."""
    return atomic_write(path, lambda f: f.write(text))


def atomic_write_bytes(path: str, data: bytes) -> str:
    """Write ``data`` atomically."""
    return atomic_write(path, lambda f: f.write(data), binary=True)


def atomic_write_json(path: str, obj: Any, indent: int = 2) -> str:
    """Write ``obj`` as JSON atomically (NaN/inf refused: they are not JSON)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def temp_files(folder: str) -> List[str]:
    """Leftover temporary files of interrupted atomic writes in ``folder`` (full paths, sorted)."""
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.startswith(".") and n.endswith(TEMP_SUFFIX))
