"""Emulator speed on the 4096x4096 fp16 GEMV (tsp-v1), against numpy's W @ x in one run.

Prints the machine, emulated cycles and time at the chip clock, emulated instructions per host
second, and host time of Machine.run() (JIT warm) divided by numpy float32 W @ x. Target: <= 4x.
The two alternate in rounds (a few back-to-back runs of each, the best kept), so a slow minute of
this shared machine slows both alike. Run: python benchmarks/emulator_gemv.py [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from lpu.kernels.gemv import build_gemv
from lpu.machine import Machine

sys.path.insert(0, os.path.dirname(__file__))
from _machine import machine

# OpenBLAS's threads spin ~0.1 s after numpy's last call and would take the emulator's worker
# core (measured: the next run took 87 ms instead of ~9), so each round's emulator runs start
# after a pause. After a pause the first two runs are slow again (caches, a waking VM: ~11-26
# ms, then ~9 in one measurement), hence a few runs per round, the best kept.
REST_S = 0.3
EMU_RUNS = 6
NUMPY_CALLS = 10


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4096, 4096)).astype(np.float32)
    x = rng.standard_normal(4096).astype(np.float32)
    t = time.perf_counter()
    g = build_gemv(4096, 4096, "f16", weights=W, x=x)
    print(f"build (schedule the program): {time.perf_counter() - t:.2f} s")
    m = Machine(g.program)
    r = m.run()  # JIT compile or cache load
    Wf = W.astype(np.float16).astype(np.float32)
    emu, ref = [], []
    for _ in range(args.rounds):
        time.sleep(REST_S)
        runs = []
        for _ in range(EMU_RUNS):
            t = time.perf_counter()
            m.run()
            runs.append(time.perf_counter() - t)
        emu.append(min(runs))
        calls = []
        for _ in range(NUMPY_CALLS):
            t = time.perf_counter()
            Wf @ x
            calls.append(time.perf_counter() - t)
        ref.append(min(calls))
    pairs = sorted(e / n for e, n in zip(emu, ref, strict=True))
    print(f"emulated: {r.cycles} cycles = {r.time_us:.2f} us at {r.chip.clock_ghz} GHz, "
          f"{r.instructions} instructions")
    print(f"emulator Machine.run(): best {min(emu) * 1e3:.1f} ms, median of the rounds' bests "
          f"{statistics.median(emu) * 1e3:.1f} ms "
          f"({r.instructions / min(emu) / 1e6:.2f} M emulated instructions per host second)")
    print(f"numpy float32 W @ x:    best {min(ref) * 1e3:.2f} ms, median of the rounds' bests "
          f"{statistics.median(ref) * 1e3:.2f} ms")
    print(f"ratio of bests {min(emu) / min(ref):.1f}x, median ratio of pairs "
          f"{pairs[len(pairs) // 2]:.1f}x over {args.rounds} alternating rounds of {EMU_RUNS} and "
          f"{NUMPY_CALLS} (target <= 4x)")


if __name__ == "__main__":
    main()
