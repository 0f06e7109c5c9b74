"""The one base class for bad input, in a module with no dependencies.

Every layer (toolkit, siamkpn's library, the search) raises a subclass of :class:`BadInput` for input the user gave
that cannot be used: a file, a line, a key, a flag, a name. Only the command line decides what that means for the
process (``siamkpn.cli.common``: exit 2 with one line; anything else is a failure, exit 1). It lives in toolkit,
the lower layer, because toolkit never imports siamkpn while siamkpn may import toolkit's dependency-free modules.
"""
from __future__ import annotations

__all__ = ["BadInput", "BadValue", "UnknownName"]


class BadInput(Exception):
    """Input given by the user (file, line, key, flag, name) that cannot be used; the message names it."""


class BadValue(BadInput, ValueError):
    """A value the user gave (a flag, a config value, a line of an annotation file) that cannot be used."""


class UnknownName(BadInput, KeyError):
    """A name the user gave (a dataset, a config TYPE) that no table knows; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""
