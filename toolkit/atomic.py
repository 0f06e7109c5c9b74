"""The one atomic file write of every layer (result files, plots, snapshots, crops, records, reports).

The content goes to a temporary sibling file, is flushed and fsync'ed, gets the permissions a plain ``open()``
would give under the user's umask (``mkstemp`` alone makes 0600), and is renamed over the target: a reader sees
the old file or the whole new one, never a part. On any error the temporary file is removed, and an OSError (disk
full, quota) is re-raised naming the target (the OS names none, or the temporary file). A process killed
mid-write can still leave one behind; such leftovers match :func:`temp_files` and are safe to delete. Standard
library only: toolkit never imports siamkpn, and siamkpn uses this module for its own files.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import IO, Any, Callable, List, Union

__all__ = ["TEMP_SUFFIX", "atomic_write", "atomic_write_json", "atomic_write_stream", "temp_files", "write_error"]

PathLike = Union[str, "os.PathLike[str]"]
TEMP_SUFFIX = ".partial"


def _umask_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_error(path: PathLike, err: OSError, what: str = "") -> OSError:
    """``err`` (disk full, quota, ...) as the same kind of OSError whose message names the file it was writing.

    The OS's own message often names no file (``[Errno 28] No space left on device``) or a temporary one.
    """
    target = f"{what} {path}" if what else str(path)
    if err.errno is None:
        return OSError(f"cannot write {target}: {err}")
    return OSError(err.errno, f"cannot write {target}: {err.strerror or err}")


def atomic_write_stream(path: PathLike, write: Callable[[IO], Any], binary: bool = False, what: str = "") -> str:
    """Call ``write(f)`` on a temporary file, then move it to ``path`` in one rename; returns ``path`` as a str.

    Text files get ``\\n`` line ends. An OSError while writing (disk full, quota) names ``path`` (after ``what``,
    e.g. "checkpoint"), not the temporary file; the errno is kept.
    """
    path = os.fspath(path)
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


def atomic_write(path: PathLike, data: Union[str, bytes], what: str = "") -> str:
    """Write ``data`` (text with ``\\n`` line ends, or bytes) to ``path`` atomically; returns ``path`` as a str."""
    return atomic_write_stream(path, lambda f: f.write(data), binary=isinstance(data, bytes), what=what)


def atomic_write_json(path: PathLike, obj: Any, indent: int = 2) -> str:
    """Write ``obj`` as JSON (indented, one final newline) atomically; NaN and inf are refused: they are not JSON."""
    return atomic_write(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def temp_files(folder: PathLike) -> List[str]:
    """Leftover temporary files of interrupted atomic writes in ``folder`` (full paths, sorted)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.startswith(".") and n.endswith(TEMP_SUFFIX))
