"""Host time of the GPU timing model: `lpu gpu --model llama-2-7b --tokens 128 --json`.

Prints the machine it ran on and three figures: the first call (JIT compile or cache load),
warm calls of simulate() in-process, and the whole command line as a fresh process (after the
numba cache is warm). Target: <= 2 s for the command once the JIT is warm.
Run: python benchmarks/gpu_host_time.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from lpu.gpu.api import simulate

sys.path.insert(0, os.path.dirname(__file__))
from _machine import machine


def main() -> int:
    print(f"machine: {machine()}")
    t = time.perf_counter()
    simulate("llama-2-7b", tokens=128)
    print(f"first simulate() (compile or cache load): {time.perf_counter() - t:.3f} s")
    warm = []
    for seed in range(5):
        t = time.perf_counter()
        r = simulate("llama-2-7b", tokens=128, seed=seed)
        warm.append(time.perf_counter() - t)
    kernels = sum(1 for k in r.kernels if k.dur_ns >= 0)
    print(f"warm simulate(llama-2-7b, 128 tokens, {kernels} kernels/token): median "
          f"{statistics.median(warm) * 1e3:.1f} ms")
    cmd = [sys.executable, "-m", "lpu.cli", "gpu", "--model", "llama-2-7b", "--tokens", "128",
           "--json"]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    print(f"`lpu gpu --model llama-2-7b --tokens 128 --json` as a fresh process: median "
          f"{statistics.median(times):.3f} s (target <= 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
