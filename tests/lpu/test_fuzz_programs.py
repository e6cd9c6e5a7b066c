"""Mutated programs never crash the emulator: each ends in a result, an LpuError or a
HazardError. The loop runs in a child process so that a crash would show as a failure."""

import subprocess
import sys

SCRIPT = r"""
import numpy as np
from lpu.errors import LpuError
from lpu.kernels.examples.tsp_examples import gemv_320  # noqa: F401 (warms the cache)
from lpu.kernels.gemv import build_gemv
from lpu.machine import Machine
from lpu.isa.program import Program

base = build_gemv(320, 100, "f16", "tsp-v1", weights=np.ones((320, 100)),
                  x=np.ones(100)).program
rng = np.random.default_rng(int(__import__("sys").argv[1]))
outcomes = {"ok": 0, "error": 0}
for it in range(150):
    queues = {k: v.copy() for k, v in base.queues.items()}
    for _ in range(rng.integers(1, 4)):
        q = list(queues)[rng.integers(len(queues))]
        w = queues[q]
        i = rng.integers(len(w))
        w[i] ^= np.uint64(1) << np.uint64(rng.integers(64))
    prog = Program(base.chip, queues, {}, base.segments, base.maps, base.source)
    try:
        Machine(prog).run(max_cycles=100000)
        outcomes["ok"] += 1
    except LpuError:
        outcomes["error"] += 1
print(outcomes)
"""


def test_bit_flipped_programs_end_in_a_result_or_a_clear_error():
    for seed in (1, 2):
        p = subprocess.run([sys.executable, "-c", SCRIPT, str(seed)], check=False,
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-3000:]
        assert "'error'" in p.stdout
