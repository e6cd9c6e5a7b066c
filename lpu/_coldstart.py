"""A cold start on two CPUs: compile the emulator's two kernels side by side.

On a cold numba cache the first run compiles `_run` (~15 s here) and then `_work` (~3 s); numba
compiles one function at a time per process, so a helper process compiles `_work` into the
cache while this one compiles `_run`, and this one then loads `_work` from the cache.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
from numba import config as numba_config
from numba import typeof

from lpu import _engine as E
from lpu._jit import BOUNDSCHECK

_TRIED: list[bool] = []  # at most once per process


def _cached(disp) -> bool:
    """Does numba's cache hold a current entry for this kernel? (True when unsure.)"""
    try:
        return bool(disp._cache._cache_file._load_index())
    except (AttributeError, TypeError, ValueError, OSError, EOFError, pickle.PickleError):
        return True  # numba's internals moved, or an unreadable index: compile here as before


def compile_in_parallel(run_args: tuple, cpus: int) -> None:
    """Before a process's first run: when neither kernel is compiled or cached, and there
    are two CPUs, have a helper process compile `_work` while this one compiles `_run`. Any
    failure of the helper only means `_work` compiles here afterwards, as it would have; the
    caller's first `_work` call loads what the helper cached."""
    if _TRIED:
        return
    _TRIED.append(True)
    if (numba_config.DISABLE_JIT or BOUNDSCHECK or cpus < 2 or E._run.overloads
            or E._work.overloads or _cached(E._work) or _cached(E._run)):
        return
    sig = tuple(typeof(a) for a in run_args)
    try:
        helper = subprocess.Popen([sys.executable, "-c",
                                   "from lpu._coldstart import compile_work; compile_work()"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=os.environ.copy())
    except OSError:
        return
    try:
        E._run.compile(sig)
    except BaseException:  # an error or Ctrl-C here: do not wait for the helper
        helper.kill()
        helper.wait()
        raise
    try:
        helper.wait(timeout=120)  # it takes ~5 s; past this, compile here
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()


def compile_work() -> None:
    """(The helper process.) Compile `_work` for the argument types every run passes it, on a
    small workspace; with need = 0 the call returns at once."""
    from lpu.isa.chips import get_chip
    from lpu.machine import _f16_table

    chip = get_chip("mini")
    ws = E.workspace(chip.streams, 64, chip.n_stages, chip.lanes, chip.mem_slices,
                     chip.mem_slices * chip.mem_words, 2 * chip.mxm_planes_per_hemisphere,
                     chip.mxm_acc_slots)
    mem2 = np.zeros((chip.mem_slices * chip.mem_words, chip.lanes), np.uint8)
    E._work(*E.work_args(ws, mem2, _f16_table(), 0))
