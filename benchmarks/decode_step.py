"""A compiled decode step: cycles against the chip's roofline bound, and host time against the
numpy reference for the same step, measured in one run.

Default: gpt2-small with int8 weights on tsp-v1 (targets: compiled cycles / bound <= 1.3; host
time of emulating one step / host time of the reference step <= 4x).
Run: python benchmarks/decode_step.py [--model gpt2-small] [--weights-dtype int8] [--pos 0]
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
    ap.add_argument("--pos", type=int, default=0)
    ap.add_argument("--chip", default="tsp-v1")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    from lpu.kernels.reference import Reference
    from lpu.kernels.runtime import LpuDecoder, embed
    from lpu.kernels.weights import load_weights

    t = time.perf_counter()
    w = load_weights(args.model, seed=0)
    print(f"weights ({args.model}, seeded random): {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    dec = LpuDecoder(w, args.chip, args.weights_dtype, max_context=args.pos + 1)
    st = dec.step_program(args.pos)
    print(f"compile one step (pos {args.pos}): {time.perf_counter() - t:.1f} s, "
          f"{st.program.n_instructions:,} instruction words")
    roof = dec.compiler.roofline(st)
    terms = ", ".join(f"{k} {v:,.0f}" for k, v in roof["terms_cycles"].items())
    bw = st.predicted_cycles / roof["ratio_to_bandwidth"]
    print(f"cycles: predicted {st.predicted_cycles:,}; bound terms: {terms}; binding "
          f"{roof['binding']}; compiled / bound = {roof['ratio']:.2f} (target <= 1.3); "
          f"compiled / bandwidth terms only = {roof['ratio_to_bandwidth']:.2f}; no schedule "
          f"can go below the buffered path, {roof['terms_cycles']['buffered_path'] / bw:.2f} "
          "x the bandwidth terms")
    print(f"latency at {dec.chip.clock_ghz} GHz: {st.predicted_cycles / dec.chip.clock_ghz / 1e3:.2f}"
          " us per token")
    # earlier positions fill the KV cache; time the last step only (its program is cached)
    for pos in range(args.pos + 1):
        rec, _ = dec.run_step(1 + pos, pos)
    assert rec.cycles == st.predicted_cycles
    ref = Reference(w, args.weights_dtype, folded=True)  # the recipe the LPU runs
    # the two alternate, so a slow minute of this shared machine slows both alike
    emu, refs = [], []
    for _ in range(9):
        dec.machine.swap_program(st.program)
        dec.machine.load("x0", embed(w, 1 + args.pos, args.pos))
        time.sleep(0.3)  # OpenBLAS's threads spin ~0.1 s after numpy's last call: let them rest
        t = time.perf_counter()
        dec.machine.run()
        emu.append(time.perf_counter() - t)
        cache = ref.new_cache()
        for pos in range(args.pos):
            ref.step(1 + pos, pos, cache)
        time.sleep(0.3)  # and the emulator's worker thread is gone: both start from an idle host
        t = time.perf_counter()
        ref.step(1 + args.pos, args.pos, cache)
        refs.append(time.perf_counter() - t)
    pairs = sorted(e / r for e, r in zip(emu, refs, strict=True))
    print(f"host time (9 alternating runs): emulated step best {min(emu) * 1e3:.1f} ms, numpy "
          f"reference step best {min(refs) * 1e3:.1f} ms, ratio of bests "
          f"{min(emu) / min(refs):.1f}x, median ratio of pairs {pairs[len(pairs) // 2]:.1f}x "
          "(target <= 4x)")


if __name__ == "__main__":
    main()
