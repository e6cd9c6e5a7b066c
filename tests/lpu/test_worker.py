"""The MXM worker thread kept between runs (lpu._worker): one thread serves run after run, a
second concurrent run gets a thread of its own, and a failure reaches the run that waited."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lpu import _worker
from lpu.kernels.gemv import build_gemv
from lpu.machine import Machine


def _thread_of_a_call() -> threading.Thread:
    seen = []
    join = _worker.start(lambda: seen.append(threading.current_thread()), ())
    join()
    return seen[0]


def test_one_thread_serves_call_after_call():
    first = _thread_of_a_call()
    assert first is not threading.current_thread()
    assert _thread_of_a_call() is first


def test_a_second_caller_meanwhile_gets_a_thread_of_its_own():
    gate = threading.Event()
    kept = _worker.start(gate.wait, ())  # holds the kept worker until the gate opens
    seen = []
    other = _worker.start(lambda: seen.append(threading.current_thread()), ())
    other()
    gate.set()
    kept()
    assert seen[0] is not _thread_of_a_call()


def test_a_failure_reaches_the_caller_and_the_worker_goes_on():
    def boom():
        raise ValueError("inside the worker")

    join = _worker.start(boom, ())
    with pytest.raises(ValueError, match="inside the worker"):
        join()
    assert _thread_of_a_call().is_alive()


def test_runs_from_two_threads_at_once_give_the_same_bits(monkeypatch):
    monkeypatch.setenv("LPU_THREADS", "2")  # every run uses a worker
    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    x = rng.standard_normal(64).astype(np.float32)
    g = build_gemv(64, 64, "f16", chip="mini", weights=w, x=x)
    m = Machine(g.program)
    m.run()
    want = m.dump("y").copy()
    out: dict[int, list] = {0: [], 1: []}

    def runs(k: int) -> None:
        mk = Machine(g.program)
        for _ in range(5):
            mk.run()
            out[k].append(mk.dump("y").copy())

    ts = [threading.Thread(target=runs, args=(k,)) for k in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for k in (0, 1):
        assert len(out[k]) == 5
        for y in out[k]:
            assert np.array_equal(y.view(np.uint32), want.view(np.uint32))
