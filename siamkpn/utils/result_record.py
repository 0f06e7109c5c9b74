"""The record beside a result folder of what produced its files, checked before more results go in.

One rule for every tool that adds result files to a folder and may be run again into it (siamkpn-test's
``provenance.json``, the search's ``hp_search_inputs.json``): a folder with a record takes results of the same
inputs only; a folder with result files but no record is refused (their inputs are unknown); any other folder
gets the record before its first result. The check and the write are one step, :meth:`ResultRecord.claim`, so a
lock held around that call (:mod:`siamkpn.utils.lock`) makes it one step between processes too.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Type

from toolkit.atomic import atomic_write_json
from toolkit.errors import BadInput

__all__ = ["ResultRecord"]


@dataclass(frozen=True)
class ResultRecord:
    """How one tool records what produced a folder's results.

    Args:
        name: the record's file name inside the folder.
        error: the BadInput class raised for a folder that cannot take this run's results.
        remedy: what the user can do; every refusal ends with it.
        section: a key that must hold a mapping in a readable record (None: any JSON object).
        shown: differences named in one refusal (the rest are counted).
    """

    name: str
    error: Type[BadInput]
    remedy: str
    section: Optional[str] = None
    shown: int = 5

    def path(self, folder: str) -> str:
        """Where the record of ``folder`` is."""
        return os.path.join(folder, self.name)

    def refusal(self, message: str) -> BadInput:
        """``error`` for ``message``, ending with the remedy."""
        return self.error(f"{message}; {self.remedy}")

    def read(self, folder: str) -> Optional[Dict[str, Any]]:
        """The folder's record, or None when it has none; ``error`` for one that cannot be read."""
        path = self.path(folder)
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
            raise self.refusal(f"{path}: unreadable record of what produced these results ({err})") from None
        problem = ""
        if not isinstance(record, dict):
            problem = "not a JSON object"
        elif self.section is not None and not isinstance(record.get(self.section), dict):
            problem = f"no {self.section!r} mapping"
        if problem:
            raise self.refusal(f"{path}: not a record of what produced these results ({problem})")
        return record

    def mismatch(self, folder: str, differences: List[str], detail: str = "") -> BadInput:
        """The refusal of a folder whose record differs from this run's (the first ``shown`` differences named)."""
        shown = "; ".join(differences[:self.shown])
        more = f"; and {len(differences) - self.shown} more" if len(differences) > self.shown else ""
        return self.refusal(f"{folder} holds results of other inputs: {shown}{more}{detail}")

    def claim(self, folder: str, record: Mapping[str, Any], result_files: Iterable[str],
              differences: Callable[[Dict[str, Any]], List[str]],
              detail: Callable[[Dict[str, Any], List[str]], str] = lambda recorded, differences: "") -> None:
        """Make ``folder`` ready for results of ``record``'s inputs, or raise ``error`` saying why it is not.

        A recorded record is compared by ``differences(recorded)`` (a list of 'KEY: recorded X, now Y') and left
        as it is when there are none (``detail`` adds to a refusal's message). Without a record, any of
        ``result_files`` present is refused; else ``record`` is written. This is the check-then-write step that a
        lock between processes goes around.
        """
        recorded = self.read(folder)
        if recorded is not None:
            found = differences(recorded)
            if found:
                raise self.mismatch(folder, found, detail(recorded, found))
            return
        held = [str(p) for p in result_files if os.path.exists(p)]
        if held:
            raise self.refusal(f"{folder} holds result files (e.g. {held[0]}) but no record of what produced them "
                               f"({self.name}; {len(held)} result file(s) in all)")
        atomic_write_json(self.path(folder), dict(record))

    def reset(self, folder: str, result_files: Iterable[str]) -> None:
        """Remove the record, then ``result_files`` (a crash in between leaves results without a record: refused)."""
        for path in [self.path(folder), *(str(p) for p in result_files)]:
            if os.path.isfile(path):
                os.remove(path)
