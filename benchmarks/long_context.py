"""Decode steps at longer contexts: cycles of the compiled step with the attention scores on the
VXM and on an MXM plane (kernels/attention.py), the path the compiler picks, and the bound.

Default: gpt2-small with int8 weights on tsp-v1, compiled for 64 positions, steps at positions
0, 15, 31 and 63 (each step ~3-20 s to compile per path on a 2-core host). Each step is also
run on the emulator (data-independent timing: any token will do), which must measure the
predicted cycles and break no timing rule; --no-run skips that.
Run: python benchmarks/long_context.py [--model gpt2-small] [--context 64] [--pos 0,15,31,63]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _machine import machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2-small")
    ap.add_argument("--weights-dtype", default="int8")
    ap.add_argument("--chip", default="tsp-v1")
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--pos", default="0,15,31,63")
    ap.add_argument("--no-run", action="store_true", help="compile only")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    from lpu.kernels.compiler import Compiler
    from lpu.kernels.runtime import embed
    from lpu.kernels.weights import load_weights
    from lpu.machine import Machine

    weights = load_weights(args.model, seed=0)
    c = Compiler(weights, args.chip, args.weights_dtype, args.context)
    picked = c.attention_mxm_from
    print(f"{args.model} ({args.weights_dtype}) on {args.chip}, compiled for {c.max_context} "
          f"positions; scores on the MXM from {picked} attended positions on")
    for pos in (int(p) for p in args.pos.split(",")):
        out = {}
        for path, frm in (("VXM", 10 ** 9), ("MXM", 1)):
            c.attention_mxm_from = frm
            t = time.perf_counter()
            st = c.compile_step(pos)
            dt = time.perf_counter() - t
            roof = c.roofline(st)  # its bound: the critical paths follow the dataflow
            out[path] = st.predicted_cycles
            ran = ""
            if not args.no_run:
                m = Machine(st.program)
                m.load("x0", embed(weights, 0, pos))
                cycles = m.run().cycles  # raises on a broken timing rule
                if cycles != st.predicted_cycles:
                    raise SystemExit(f"pos {pos} ({path}): the emulator measured {cycles:,} "
                                     f"cycles, the schedule said {st.predicted_cycles:,}")
                ran = ", the emulator measured the same"
            print(f"pos {pos}, scores on the {path}: {st.predicted_cycles:,} cycles (compiled in "
                  f"{dt:.1f} s{ran}) = {roof['ratio']:.2f} x its bound, "
                  + ", ".join(f"{k} {v:,.0f}" for k, v in roof["terms_cycles"].items()))
        c.attention_mxm_from = picked
        cyc = out["MXM" if pos + 1 >= picked else "VXM"]
        print(f"pos {pos}: the compiler picks {cyc:,} cycles, {cyc / c.chip.clock_ghz / 1e3:.1f} "
              "us per token")

if __name__ == "__main__":
    main()
