"""A configuration's result folder record is checked and written under the folder's lock, as siamkpn-test's is:
of two search workers with different inputs started together on one folder, one records and the other is refused."""
from __future__ import annotations

import json
import os

from helpers import race
from siamkpn.hpsearch.inputs import RECORD_NAME, InputsError, check_result_folder


def _check(folder, sha, barrier, queue):
    barrier.wait()
    try:
        check_result_folder(folder, {"settings": {"mode": "exact"}, "snapshot": {"sha256": sha}}, [])
        queue.put((sha, "ok"))
    except InputsError as err:
        queue.put((sha, f"InputsError: {err}"))
    except BaseException as err:  # reported to the test rather than lost in the child
        queue.put((sha, f"{type(err).__name__}: {err}"))


def test_search_workers_with_different_inputs_never_both_record_one_folder(tmp_path):
    for attempt in range(5):
        folder = tmp_path / f"checkpoint_e1_try{attempt}"
        outcomes = race(_check, ("a", "b"), str(folder))
        winners = [sha for sha, outcome in outcomes if outcome == "ok"]
        assert len(winners) == 1, outcomes
        assert any(outcome.startswith("InputsError: ") and "holds results of other inputs" in outcome
                   for _, outcome in outcomes)
        assert json.loads((folder / RECORD_NAME).read_text())["snapshot"] == {"sha256": winners[0]}
        assert os.listdir(folder) == [RECORD_NAME]
