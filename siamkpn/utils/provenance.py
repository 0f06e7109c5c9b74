"""What produced a result: content identities of input files and a comparison that names differences.

A resumable step (tools/test.py result folders, the hyper-parameter search study) records a
``provenance`` dict beside its output and, when it is run again, compares the new one with the
recorded one; any difference is an error naming the key, never a silent reuse of other inputs' work.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Mapping

__all__ = ["file_identity", "provenance_differences"]

_CHUNK = 1 << 20


def file_identity(path: str) -> Dict[str, Any]:
    """{'sha256', 'size'} of a file's content (the name and the time stamps do not count)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
            size += len(block)
    return {"sha256": digest.hexdigest(), "size": size}


def provenance_differences(recorded: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "") -> List[str]:
    """Human-readable differences between two provenance dicts ('KEY: recorded X, now Y'), nested keys dotted."""
    out: List[str] = []
    for key in sorted(set(recorded) | set(current)):
        name = f"{prefix}{key}"
        old, new = recorded.get(key, "<absent>"), current.get(key, "<absent>")
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            out.extend(provenance_differences(old, new, name + "."))
        elif old != new:
            out.append(f"{name}: recorded {_short(old)}, now {_short(new)}")
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 or not isinstance(value, str) else text[:13] + "...'"
