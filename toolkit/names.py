"""Names that come from data (video, sequence and tracker names) are data, never paths.

A benchmark json, a list file or a folder listing can hold any string: ``../../x``, ``/abs/file``, a NUL.
Every file path built from such a name goes through :func:`join_inside`, which refuses a name that is not one
plain path component and checks that the joined path, resolved, stays inside its folder. This module depends on
nothing but the standard library, so every layer (toolkit, the search, dataset preparation) shares the one rule.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from toolkit.errors import BadInput

__all__ = ["UnsafeNameError", "check_name", "join_inside", "join_relative"]

PathLike = Union[str, "os.PathLike[str]"]
_SEPARATORS = ("/", "\\")


class UnsafeNameError(BadInput, ValueError):
    """A name from data that would leave its folder as a path (a separator, ``..``, absolute, NUL)."""


def _problem(name: object) -> str:
    if not isinstance(name, str):
        return f"not a string ({type(name).__name__})"
    if not name.strip():
        return "is empty"
    if "\x00" in name:
        return "holds a NUL character"
    if name in (".", ".."):
        return f"is {name!r}"
    if os.path.isabs(name) or any(sep in name for sep in _SEPARATORS) or (os.altsep and os.altsep in name):
        return "holds a path separator" if not os.path.isabs(name) else "is an absolute path"
    return ""


def check_name(name: object, what: str = "name", source: PathLike = "") -> str:
    """``name`` itself when it is one plain path component; else :class:`UnsafeNameError` naming ``source``
    (the dataset file, folder or flag it came from), what it is (``video name``) and the name."""
    problem = _problem(name)
    if problem:
        where = f"{source}: " if str(source) else ""
        raise UnsafeNameError(f"{where}{what} {name!r} {problem}; names from data must be plain names, "
                              "never paths (no '/', '\\', '..', absolute path or NUL)")
    return name  # type: ignore[return-value]


def join_inside(folder: PathLike, name: object, what: str = "name", source: PathLike = "",
                suffix: str = "") -> Path:
    """``folder / (name + suffix)`` after :func:`check_name`, and only if the resolved result lies inside the
    resolved ``folder`` (a symlink named like the video that points elsewhere is refused too)."""
    check_name(name, what, source)
    path = Path(folder) / f"{name}{suffix}"
    base = os.path.realpath(folder)
    target = os.path.realpath(path)
    if os.path.commonpath([base, target]) != base or target == base:
        where = f"{source}: " if str(source) else ""
        raise UnsafeNameError(f"{where}{what} {name!r}: {path} resolves to {target}, outside {base}")
    return path


def join_relative(root: PathLike, relative: object, what: str = "path", source: PathLike = "") -> str:
    """``os.path.join(root, relative)`` for a path from data that may hold sub-folders (a pysot json's
    ``img_names`` such as ``Basketball/img/0001.jpg``), refused when it leaves ``root``: absolute elsewhere,
    ``..`` climbing out, or a NUL. Only the text is normalised, never resolved: dataset folders are often
    symlinked, and reading through a link the user made is fine."""
    where = f"{source}: " if str(source) else ""
    if not isinstance(relative, str) or not relative.strip() or "\x00" in relative:
        raise UnsafeNameError(f"{where}{what} {relative!r} is not a usable path (a non-empty string without NUL)")
    joined = os.path.join(root, relative)
    if ".." in relative or os.path.isabs(relative):  # only these can lead out; skip normpath for the rest
        base = os.path.normpath(os.path.abspath(root))
        target = os.path.normpath(os.path.abspath(joined))
        if os.path.commonpath([base, target]) != base:
            raise UnsafeNameError(f"{where}{what} {relative!r} leads to {target}, outside the dataset root {base}")
    return joined
