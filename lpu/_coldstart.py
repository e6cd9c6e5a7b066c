"""A cold start on two CPUs: compile the emulator's kernels side by side.

On a cold numba cache the first run compiles `_run` (~15 s here: ~5 s of it its callees) and
then `_work` (~4 s); numba compiles one function at a time per process. So a helper process
compiles `_run`'s callees into the cache, in the reverse of the order `_run`'s compile reaches
them (the two meet in the middle: this one loads the rest from the cache), and then `_work`,
while this one compiles `_run`; this one then loads `_work` from the cache. The callees and
their signatures are recorded from a real compile into lpu/_callees.py
(`python -m lpu._coldstart` rewrites it; a test fails when it is stale).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile

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
                                   "from lpu._coldstart import helper; helper()"],
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
        helper.wait(timeout=120)  # it takes ~7 s; past this, compile here
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()


def helper() -> None:
    """The helper process: `_run`'s callees, then `_work`."""
    compile_callees()
    compile_work()


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


def _type(spec: str):
    """A numba type from its lpu/_callees.py spelling: int64, int64[2d] (C-contiguous,
    writable), or =1 (an integer literal)."""
    from numba.core import types

    if spec.startswith("="):
        return types.literal(int(spec[1:]))
    if spec.endswith("d]"):
        name, nd = spec[:-2].split("[")
        return types.Array(getattr(types, name), int(nd), "C")
    return getattr(types, spec)


def _spelling(t) -> str:
    from numba.core import types

    if isinstance(t, types.IntegerLiteral):
        return f"={t.literal_value}"
    if isinstance(t, types.Array) and t.layout == "C" and t.mutable and t.aligned:
        return f"{t.dtype}[{t.ndim}d]"
    if isinstance(t, (types.Integer, types.Float)):
        return str(t)
    raise TypeError(f"no spelling for {t!r}: extend lpu._coldstart._type/_spelling")


def compile_callees() -> None:
    """(The helper process.) Compile `_run`'s callees for the signatures `_run` gives them, the
    last it reaches first. Any failure only means `_run`'s compile does that one itself."""
    from lpu._callees import CALLEES

    for name, sigs in CALLEES:
        for sig in sigs:
            try:
                getattr(E, name).compile(tuple(_type(t) for t in sig))
            except Exception:  # noqa: BLE001, S112 (a stale entry: _run compiles it)
                continue


def record_callees() -> list:
    """Compile `_run` on a cold cache, in a fresh process, and return its direct callees in
    lpu._engine with their signatures, the last compiled first: what lpu/_callees.py holds."""
    code = (
        "import json, numpy as np\n"
        "from numba.core import event as ev\n"
        "stack, order = [], []\n"
        "class L(ev.Listener):\n"
        "    def on_start(self, e):\n"
        "        f = e.data['dispatcher'].py_func\n"
        "        n = f.__module__ + ':' + f.__name__\n"
        "        if stack and stack[-1] == 'lpu._engine:_run' and n not in order:\n"
        "            order.append(n)\n"
        "        stack.append(n)\n"
        "    def on_end(self, e):\n"
        "        stack.pop()\n"
        "ev.register('numba:compile', L())\n"
        "import lpu._coldstart as C, lpu._engine as E\n"
        "from lpu.kernels.gemv import build_gemv\n"
        "from lpu.machine import Machine\n"
        "C._TRIED.append(True)\n"
        "g = build_gemv(32, 32, 'f16', chip='mini', weights=np.ones((32, 32)), x=np.ones(32))\n"
        "Machine(g.program).run()\n"
        "out = [(n.split(':')[1], [[C._spelling(t) for t in s] for s in\n"
        "        getattr(E, n.split(':')[1]).signatures]) for n in reversed(order)\n"
        "       if n.startswith('lpu._engine:')]\n"
        "print(json.dumps(out))\n")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "LPU_THREADS": "1"}
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           check=True)
    return [(n, [tuple(s) for s in sigs]) for n, sigs in json.loads(r.stdout.splitlines()[-1])]


def callees_source(callees: list) -> str:
    lines = ['"""Generated by `python -m lpu._coldstart` from a compile of lpu._engine._run: its',
             "callees in lpu._engine and their signatures, the last compiled first (the cold-start",
             'helper compiles them in this order; see lpu._coldstart). Do not edit."""', "",
             "CALLEES = ("]
    for name, sigs in callees:
        lines.append(f"    ({name!r}, (")
        for sig in sigs:
            lines.append(f"        {tuple(sig)!r},")
        lines.append("    )),")
    lines.append(")")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(__file__), "_callees.py")
    with open(path, "w") as f:
        f.write(callees_source(record_callees()))
    print(f"wrote {path}")
