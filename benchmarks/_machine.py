"""The machine a benchmark ran on, printed at the top of every benchmark's output.

These machines are shared and noisy: benchmarks compare ratios measured in one run.
"""

from __future__ import annotations

import os
import platform

import numba
import numpy as np


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{platform.platform()}; CPU {cpu} x{os.cpu_count()}; python "
            f"{platform.python_version()}; numpy {np.__version__}; numba {numba.__version__}")
