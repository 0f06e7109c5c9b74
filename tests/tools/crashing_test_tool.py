"""siamkpn-test with a crash injected into its worker processes only (for tests/tools/test_test_scale.py).

Worker processes are spawned: each imports this file as ``__mp_main__``, so the patch below runs in them too.
SIAMKPN_TEST_CRASH=raise:NAME makes a worker raise on video NAME, =kill:NAME makes it SIGKILL itself there.
"""
import multiprocessing
import os
import signal
import sys

from toolkit import protocols

_run_protocol = protocols.run_protocol


def _crashing(tracker, video, kind, progress=None):
    how, _, name = os.environ.get("SIAMKPN_TEST_CRASH", "").partition(":")
    if multiprocessing.parent_process() is not None and video.name == name:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"injected failure on {name}")
    return _run_protocol(tracker, video, kind, progress=progress)


protocols.run_protocol = _crashing

if __name__ == "__main__":
    from siamkpn.cli.test import main

    sys.exit(main())
