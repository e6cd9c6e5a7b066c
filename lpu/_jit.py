"""The one place for Numba settings: every compiled kernel in the project uses `njit` from here.

cache=True so the second process starts fast; no fastmath, so fp32 sums keep their documented
order and results are bit-reproducible; numpy's error model so 1/0 is inf, as on the hardware.
"""

from __future__ import annotations

import os

from numba import njit as _numba_njit

# LPU_JIT_DEBUG=1 turns on bounds checking inside kernels (slow; for debugging the emulator).
BOUNDSCHECK = os.environ.get("LPU_JIT_DEBUG") == "1"
SETTINGS = {"cache": True, "fastmath": False, "boundscheck": BOUNDSCHECK, "error_model": "numpy",
                "nogil": True}


def njit(fn=None, **overrides):
    """numba.njit with the project's settings (usable bare or with keyword overrides)."""
    opts = {**SETTINGS, **overrides}
    if fn is None:
        return lambda f: _numba_njit(**opts)(f)
    return _numba_njit(**opts)(fn)
