"""Name -> class tables behind the config's TYPE strings."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from toolkit.errors import UnknownName


class Registry:
    """A named table of constructors whose lookup error lists the valid names."""

    def __init__(self, kind: str, entries: Optional[Dict[str, Callable[..., Any]]] = None) -> None:
        self.kind = kind
        self._entries: Dict[str, Callable[..., Any]] = dict(entries or {})

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._entries:
            raise UnknownName(f"unknown {self.kind} type '{name}'; valid: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def build(self, name: str, *args, **kwargs) -> Any:
        return self.get(name)(*args, **kwargs)

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
