"""The toolkit's one atomic write (result files, plots); dependency-free, as the toolkit never imports siamkpn.

The content goes to a private sibling file created by plain ``open`` (so the user's umask sets its permissions,
unlike mkstemp's 0600), is fsync'ed and renamed over the target: a reader sees the old file or the whole new
one. On any error the sibling is removed, and an OSError (disk full, quota) names the target file.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Union

__all__ = ["atomic_write", "write_error"]


def write_error(path: Union[str, os.PathLike], err: OSError) -> OSError:
    """``err`` as an OSError of the same errno whose message names ``path`` ("cannot write P: No space left ...")."""
    if err.errno is None:
        return OSError(f"cannot write {path}: {err}")
    return OSError(err.errno, f"cannot write {path}: {err.strerror or err}")


def atomic_write(path: Union[str, os.PathLike], data: Union[str, bytes]) -> Path:
    """Write ``data`` (text with ``\\n`` line ends, or bytes) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    binary = isinstance(data, bytes)
    try:
        with open(tmp, "xb" if binary else "x", **({} if binary else {"newline": "\n"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise write_error(path, err) from err
        raise
    return path
