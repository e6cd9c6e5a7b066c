"""Cold start of `lpu run`: the first run compiles the emulator's kernel, the second loads it
from numba's cache. Targets: <= 20 s and <= 2 s.

Clears this checkout's numba cache for lpu/_engine.py first (only that), then times two fresh
processes running the same small program. Run: python benchmarks/cold_start.py
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _machine import machine

PROG = """
import numpy as np
from lpu.kernels.gemv import build_gemv
from lpu.machine import Machine
g = build_gemv(320, 320, "f16", weights=np.ones((320, 320)), x=np.ones(320))
Machine(g.program).run()
"""


def main() -> None:
    print(f"machine: {machine()}")
    import lpu._engine as eng

    cache = os.path.join(os.path.dirname(eng.__file__), "__pycache__")
    for f in glob.glob(os.path.join(cache, "_engine.*.nb[ic]")):
        os.remove(f)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(PROG)
    for label in ("first run (JIT compile)", "second run (cache hit)"):
        t = time.perf_counter()
        subprocess.run([sys.executable, f.name], check=True)
        print(f"{label}: {time.perf_counter() - t:.2f} s (whole process, imports included)")
    os.unlink(f.name)


if __name__ == "__main__":
    main()
