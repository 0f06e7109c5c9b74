"""siamkpn-test with a crash injected into its worker processes only (for tests/tools/test_test_scale.py).

Worker processes are spawned: each imports this file as ``__mp_main__``, so the patch below runs in them too.
SIAMKPN_TEST_CRASH=raise:NAME makes a worker raise on video NAME, =kill:NAME makes it SIGKILL itself there;
=steal:NAME makes the process tracking NAME (worker or not) replace NAME's claim in the tracker folder
SIAMKPN_TEST_FOLDER, once, as a process that took it over and then died would (another pid on this host).
"""
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

from toolkit import protocols

_run_protocol = protocols.run_protocol


def _steal_claim(name: str) -> None:
    folder = os.environ["SIAMKPN_TEST_FOLDER"]
    marker = folder.rstrip(os.sep) + ".stolen"  # beside the tracker folder: once per run
    if os.path.exists(marker):
        return
    open(marker, "w").close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = os.path.join(folder, ".claims", f"{name}.claim")
    os.remove(path)  # a successor renames the stale file aside and creates its own
    now = time.time()
    with open(path, "w") as f:
        json.dump({"host": socket.gethostname(), "pid": dead.pid, "purpose": "siamkpn-test", "started": now,
                   "heartbeat": now, "token": "thief"}, f)


def _crashing(tracker, video, kind, progress=None):
    how, _, name = os.environ.get("SIAMKPN_TEST_CRASH", "").partition(":")
    if how == "steal" and video.name == name:
        result = _run_protocol(tracker, video, kind, progress=progress)
        _steal_claim(name)
        return result
    if multiprocessing.parent_process() is not None and video.name == name:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"injected failure on {name}")
    return _run_protocol(tracker, video, kind, progress=progress)


protocols.run_protocol = _crashing

if __name__ == "__main__":
    from siamkpn.cli.test import main

    sys.exit(main())
