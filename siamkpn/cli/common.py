"""What every command line shares: the top-level error policy.

Policy (one for every tool): a problem with the input or the command line prints one line
``<tool>: error: <what, which file/line/key>`` on stderr and exits 2; a failure while running
(divergence, disk full, a bug) prints one line and exits 1; ``--debug`` or ``SIAMKPN_DEBUG=1`` shows the
traceback instead. Bad input is a :class:`toolkit.errors.BadInput` (raised by any layer) or a path the OS refused;
everything else is a failure. The handler sits at the tool's top level only, never around single calls.

This module imports neither torch nor the model code, so ``siamkpn-eval`` stays torch-free.
"""
from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Callable, Optional, Sequence

from toolkit.errors import BadInput

__all__ = ["EXIT_FAILURE", "EXIT_INPUT", "UsageError", "add_debug_flag", "debug_requested", "exit_code_for", "one_line",
           "run_tool"]

EXIT_FAILURE = 1
EXIT_INPUT = 2

# OS errors that mean "the path you gave is wrong", not "the machine failed"
_INPUT_OS_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError)
_INPUT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EROFS}


class UsageError(BadInput):
    """Bad input or usage detected by a tool itself (exit 2)."""


def add_debug_flag(parser) -> None:
    """``--debug``: show the traceback of an error (also ``SIAMKPN_DEBUG=1``)."""
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error (or SIAMKPN_DEBUG=1)")


def debug_requested(argv: Optional[Sequence[str]]) -> bool:
    """True when the traceback was asked for: ``--debug`` on the command line or ``SIAMKPN_DEBUG`` set."""
    args = sys.argv[1:] if argv is None else argv
    return "--debug" in args or os.environ.get("SIAMKPN_DEBUG", "") not in ("", "0")


def exit_code_for(err: BaseException) -> int:
    """2 for bad input (a BadInput, a path the OS refused), 1 for anything else (a plain ValueError included)."""
    if isinstance(err, BadInput):
        return EXIT_INPUT
    if isinstance(err, _INPUT_OS_ERRORS) or (isinstance(err, OSError) and err.errno in _INPUT_ERRNOS):
        return EXIT_INPUT
    return EXIT_FAILURE


def one_line(err: BaseException) -> str:
    """The exception's message on one line (KeyError's quotes dropped; the type named when it says nothing)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return text or type(err).__name__


def run_tool(main: Callable[[Optional[Sequence[str]]], Optional[int]], argv: Optional[Sequence[str]], prog: str) -> int:
    """Run a tool's ``main(argv)`` under the error policy and return its exit status.

    ``prog`` is the console-script name (``siamkpn-test``), the same whether the tool was started as a console
    script, as ``python tools/test.py`` or from Python.
    """
    try:
        return int(main(argv) or 0)
    except SystemExit:
        raise  # argparse usage errors (2) and explicit exits keep their own status and message
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one top-level handler of this tool
        if debug_requested(argv):
            traceback.print_exc()
        code = exit_code_for(err)
        hint = "" if code == EXIT_INPUT or debug_requested(argv) else " (run with --debug for the traceback)"
        kind = "" if code == EXIT_INPUT else f"{type(err).__name__}: "
        print(f"{prog}: error: {kind}{one_line(err)}{hint}", file=sys.stderr)
        return code
