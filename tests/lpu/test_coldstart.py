"""The cold-start helper (lpu._coldstart): it compiles `_run`'s callees and `_work` for exactly
the argument types a run gives them, so the main process finds them in numba's cache, and it
stays out of the way once the kernels are compiled."""

from __future__ import annotations

import subprocess

import numpy as np
from numba import typeof

import lpu._coldstart as C
import lpu.machine as M
from lpu import _engine as E
from lpu._callees import CALLEES
from lpu.kernels.gemv import build_gemv


def _work_types_of_a_run(monkeypatch) -> tuple:
    seen = {}
    run_kernel = M._run_kernel

    def spy(args, ws, mem2, f16tab, threaded):
        seen["types"] = tuple(typeof(a) for a in E.work_args(ws, mem2, f16tab, 0))
        return run_kernel(args, ws, mem2, f16tab, threaded)

    monkeypatch.setattr(M, "_run_kernel", spy)
    g = build_gemv(32, 32, "f16", chip="mini", weights=np.ones((32, 32)), x=np.ones(32))
    M.Machine(g.program).run()
    return seen["types"]


def test_the_helper_compiles_work_for_the_types_a_run_passes(monkeypatch):
    want = _work_types_of_a_run(monkeypatch)
    calls = []
    monkeypatch.setattr(E, "_work", lambda *a: calls.append(tuple(typeof(x) for x in a)))
    C.compile_work()
    assert calls == [want]


def test_no_helper_once_the_kernels_are_compiled(monkeypatch):
    _work_types_of_a_run(monkeypatch)  # compiles (or loads) both kernels in this process
    assert E._run.overloads and E._work.overloads

    def no_popen(*a, **k):
        raise AssertionError("a helper process was started")

    monkeypatch.setattr(subprocess, "Popen", no_popen)
    monkeypatch.setattr(C, "_TRIED", [])
    C.compile_in_parallel((np.zeros(1),), 2)
    assert C._TRIED == [True]


def test_the_recorded_callees_are_current():
    # a cold compile of _run in a fresh process (~15 s): its callees and their signatures
    assert C.record_callees() == [(n, list(sigs)) for n, sigs in CALLEES], (
        "lpu/_callees.py is stale: run `python -m lpu._coldstart`")


def test_the_helper_compiles_each_recorded_signature(monkeypatch):
    got = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def compile(self, sig):
            got.append((self.name, tuple(C._spelling(t) for t in sig)))

    for name, _ in CALLEES:
        monkeypatch.setattr(E, name, Recorder(name))
    C.compile_callees()
    assert got == [(n, sig) for n, sigs in CALLEES for sig in sigs]
