"""The MXM worker thread, kept from one run to the next (lpu.machine runs `_work` on it).

Starting a thread per run and joining it cost ~0.3 ms of a 4096^2 GEMV's ~6 ms (measured), so
one thread waits on a semaphore between runs instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class _Worker:
    """A daemon thread that runs one posted function call at a time."""

    def __init__(self) -> None:
        self._go = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._call: tuple[Callable, tuple] | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="lpu-mxm-worker", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            self._go.acquire()
            assert self._call is not None
            fn, args = self._call
            self._call = None
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 (handed to the run that waits for it)
                self._error = e
            self._done.release()

    def post(self, fn: Callable, args: tuple) -> None:
        self._call = (fn, args)
        self._go.release()

    def wait(self) -> None:
        try:
            self._done.acquire()
        except BaseException:  # interrupted: its `done` may come later, so never reuse it
            if _KEPT and _KEPT[0] is self:
                _KEPT.clear()
            raise
        err, self._error = self._error, None
        if err is not None:
            raise err


_LOCK = threading.Lock()  # held by the run that uses the kept worker
_KEPT: list[_Worker] = []


def _forget_after_fork() -> None:
    """A forked child has no worker thread, and the lock may have been held mid-run."""
    global _LOCK
    _KEPT.clear()
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def start(fn: Callable, args: tuple) -> Callable[[], None]:
    """Run fn(*args) on the kept worker thread, or on a thread of its own while another run
    holds the kept one; returns the function that waits for the call to finish (call it once,
    after telling fn to stop)."""
    lock = _LOCK
    if not lock.acquire(blocking=False):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        return t.join
    try:
        if not _KEPT or not _KEPT[0].thread.is_alive():
            _KEPT[:] = [_Worker()]
        w = _KEPT[0]
        w.post(fn, args)
    except BaseException:
        lock.release()
        raise

    def join() -> None:
        try:
            w.wait()
        finally:
            lock.release()

    return join
