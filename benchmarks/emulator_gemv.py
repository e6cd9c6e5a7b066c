"""Emulator speed on the 4096x4096 fp16 GEMV (tsp-v1), against numpy's W @ x in one run.

Prints the machine, emulated cycles and time at the chip clock, emulated instructions per host
second, and host time of Machine.run() (JIT warm) divided by numpy float32 W @ x. Target: <= 4x.
Run: python benchmarks/emulator_gemv.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

from lpu.kernels.gemv import build_gemv
from lpu.machine import Machine

sys.path.insert(0, os.path.dirname(__file__))
from _machine import machine


def best(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> None:
    print(f"machine: {machine()}")
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4096, 4096)).astype(np.float32)
    x = rng.standard_normal(4096).astype(np.float32)
    t = time.perf_counter()
    g = build_gemv(4096, 4096, "f16", weights=W, x=x)
    print(f"build (schedule the program): {time.perf_counter() - t:.2f} s")
    m = Machine(g.program)
    r = m.run()  # JIT compile or cache load
    emu_min, emu_med = best(lambda: m.run(), 15)  # the host is noisy: best of many
    Wf = W.astype(np.float16).astype(np.float32)
    np_min, np_med = best(lambda: Wf @ x, 50)
    print(f"emulated: {r.cycles} cycles = {r.time_us:.2f} us at {r.chip.clock_ghz} GHz, "
          f"{r.instructions} instructions")
    print(f"emulator Machine.run(): best {emu_min * 1e3:.1f} ms, median {emu_med * 1e3:.1f} ms "
          f"({r.instructions / emu_min / 1e6:.2f} M emulated instructions per host second)")
    print(f"numpy float32 W @ x:    best {np_min * 1e3:.2f} ms, median {np_med * 1e3:.2f} ms")
    print(f"ratio (best/best): {emu_min / np_min:.1f}x   (target <= 4x)")


if __name__ == "__main__":
    main()
