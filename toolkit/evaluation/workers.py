"""Run a function over items in worker processes; any worker failure ends the run with its message, never a hang.

multiprocessing.Pool waits forever when a worker dies (killed by a signal, out of memory, ``os._exit``) or when
a worker's exception cannot be rebuilt in the parent (its result thread dies). Here every worker has its own
pipes and holds one item at a time, so the parent always knows what a worker was doing:

- the worker catches everything its function raises and sends it back as data: the exception itself when it
  survives a pickle round trip, else a `WorkerError` with the worker's message (the parent raises either; a
  `WorkerInputError`, still a BadInput, when the worker's exception was one);
- a worker that dies shows up as the end of its result pipe: `WorkerError` naming the item and the signal;
- on any failure (or Ctrl-C) the other workers are terminated; nothing waits without a bound.
"""
from __future__ import annotations

import pickle
import signal
import traceback
from collections import deque
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple

from toolkit.errors import BadInput

__all__ = ["WorkerError", "WorkerInputError", "map_unordered"]

_STOP_GRACE_S = 5.0  # how long a worker told to stop may take before it is terminated


class WorkerError(RuntimeError):
    """A worker process failed and its own exception could not be sent back, or the worker died."""


class WorkerInputError(WorkerError, BadInput):
    """A worker's bad input (a BadInput) whose own exception could not be sent back: still bad input."""


class _RemoteTraceback(Exception):
    """The worker's traceback, chained under the re-raised exception (shown with --debug)."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0])


def _failure(item: Any, err: BaseException) -> Tuple[BaseException, str]:
    """What the parent raises for a worker's exception, and the worker's traceback text."""
    tb = traceback.format_exc()
    if isinstance(err, Exception):
        try:
            clone = pickle.loads(pickle.dumps(err))
            if type(clone) is type(err) and str(clone) == str(err):
                return err, tb
        except Exception:  # noqa: BLE001 - any pickling problem means: send the message instead
            pass
    kind = WorkerInputError if isinstance(err, BadInput) else WorkerError
    text = str(err).strip()
    return kind(f"worker evaluating {item!r} failed: {type(err).__name__}" + (f": {text}" if text else "")), tb


def _worker(func: Callable[[Any], Any], tasks: Connection, results: Connection,
            initializer: Optional[Callable[..., None]], initargs: Sequence[Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers
    if initializer is not None:
        initializer(*initargs)
    while True:
        item = tasks.recv()
        if item is None:
            return
        try:
            data = pickle.dumps((True, func(item), None))
        except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent as data
            exc, tb = _failure(item, err)
            data = pickle.dumps((False, exc, tb))
        results.send_bytes(data)


def _died(item: Any, exitcode: Optional[int]) -> WorkerError:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
        if exitcode == -signal.SIGKILL:
            how += ", e.g. by the out-of-memory killer"
    else:
        how = f"exit status {exitcode}"
    return WorkerError(f"the worker process evaluating {item!r} died ({how}) before returning a result")


def map_unordered(func: Callable[[Any], Any], items: Iterable[Any], num_workers: int,
                  initializer: Optional[Callable[..., None]] = None, initargs: Sequence[Any] = ()
                  ) -> Iterator[Tuple[Any, Any]]:
    """Yield ``(item, func(item))`` as workers finish; raise the first worker's failure (others are stopped).

    ``func`` and the items must be picklable (module-level functions); ``initializer(*initargs)`` runs once per
    worker (with fork, ``initargs`` are inherited, not pickled).
    """
    pending = deque(items)
    ctx = get_context()
    workers: Dict[Connection, Tuple[Any, Connection]] = {}  # result reader -> (process, task writer)
    busy: Dict[Connection, Any] = {}
    finished = False
    try:
        for _ in range(max(1, min(num_workers, len(pending)))):
            task_r, task_w = ctx.Pipe(duplex=False)
            result_r, result_w = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(func, task_r, result_w, initializer, initargs), daemon=True)
            proc.start()
            task_r.close()
            result_w.close()  # the worker holds the only writer: its death ends the pipe
            workers[result_r] = (proc, task_w)
        idle = list(workers)
        while pending or busy:
            while idle and pending:
                reader = idle.pop()
                busy[reader] = pending.popleft()
                workers[reader][1].send(busy[reader])
            for reader in wait(list(busy)):
                item = busy.pop(reader)
                try:
                    data = reader.recv_bytes()
                except EOFError:
                    proc = workers[reader][0]
                    proc.join(_STOP_GRACE_S)
                    raise _died(item, proc.exitcode) from None
                try:
                    ok, value, tb = pickle.loads(data)
                except Exception as err:  # noqa: BLE001 - a result the parent cannot rebuild
                    raise WorkerError(f"the result of {item!r} cannot be read back from its worker: "
                                      f"{type(err).__name__}: {err}") from err
                if not ok:
                    raise value from _RemoteTraceback(tb)
                idle.append(reader)
                yield item, value
        finished = True
    finally:
        _stop(workers, abort=not finished)


def _stop(workers: Dict[Connection, Tuple[Any, Connection]], abort: bool) -> None:
    """Tell the workers to stop (terminate them at once after a failure); wait for each only a bounded time."""
    for proc, task_w in workers.values():
        if abort:
            proc.terminate()  # the others' results are not wanted any more
            continue
        try:
            task_w.send(None)
        except OSError:
            pass  # already gone
    for reader, (proc, task_w) in workers.items():
        proc.join(_STOP_GRACE_S)
        if proc.is_alive():
            proc.terminate()
            proc.join(_STOP_GRACE_S)
        reader.close()
        task_w.close()
