"""Trace size and view time: bytes per event of a full gpt2-small decode step (int8, tsp-v1)
and the time `lpu trace view` takes on a 1M-event trace. Targets: <= 16 B/event, <= 2 s.
Run: python benchmarks/trace_size_and_view.py
"""

from __future__ import annotations

import io
import os
import sys
import time

import numpy as np
from rich.console import Console

sys.path.insert(0, os.path.dirname(__file__))
from _machine import machine


def main() -> None:
    print(f"machine: {machine()}")
    from lpu.kernels.runtime import LpuDecoder
    from lpu.kernels.weights import load_weights
    from lpu.traces.format import from_bytes
    from lpu.traces.record import lpu_trace
    from lpu.traces.view import render

    w = load_weights("gpt2-small", seed=0)
    dec = LpuDecoder(w, "tsp-v1", "int8", max_context=1)
    rec, _ = dec.run_step(1, 0)
    tr = lpu_trace(rec.result, rec.compiled.program, rec.compiled.spans)
    t = time.perf_counter()
    data = tr.to_bytes()
    t_write = time.perf_counter() - t
    n = tr.n_events()
    print(f"gpt2-small int8 step: {n:,} events, {len(data):,} bytes = {len(data) / n:.2f} B per "
          f"event (target <= 16), encoded in {t_write:.2f} s")
    big = from_bytes(data)
    reps = -(-1_000_000 // len(big.tables["inst"]["start"]))
    inst = big.tables["inst"]
    span = int(big.meta["cycles"])
    big.tables["inst"] = {k: np.concatenate([v + (i * span if k in ("start", "end") else 0)
                                             for i in range(reps)]) for k, v in inst.items()}
    big.meta["cycles"] = span * reps
    t = time.perf_counter()
    Console(width=120, file=io.StringIO(), color_system=None).print(render(big, width=120))
    print(f"view of {len(big.tables['inst']['start']):,} events: {time.perf_counter() - t:.2f} s "
          "(target <= 2 s)")


if __name__ == "__main__":
    main()
