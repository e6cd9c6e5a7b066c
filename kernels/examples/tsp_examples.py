"""Generated example kernels on tsp-v1, each with its cycle count explained.

Run `python -m lpu.kernels.examples.tsp_examples` to build, run and check all four against numpy;
tests/kernels/test_tsp_examples.py pins their cycle counts.
"""

from __future__ import annotations

import numpy as np

from lpu.kernels.gemv import build_gemv
from lpu.kernels.vector_ops import build_rmsnorm, build_softmax
from lpu.machine import Machine


def _square_gemv(n: int, seed: int) -> dict:
    """Run an n x n fp16 GEMV on random data; the float64 product of the fp16 values beside."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)).astype(np.float32)
    x = rng.standard_normal(n).astype(np.float32)
    g = build_gemv(n, n, "f16", weights=W, x=x)
    m = Machine(g.program)
    r = m.run()
    ref = W.astype(np.float16).astype(np.float64) @ x.astype(np.float16).astype(np.float64)
    return {"cycles": r.cycles, "predicted": g.predicted_cycles, "y": m.dump("y"), "ref": ref}


def gemv_320() -> dict:
    """y = W @ x, W 320x320 fp16: 103 cycles.

    The farthest weight slices (mem.w12..w15) sit at stage 9, so the first row group reaches
    the MXM plane (stage 0) 9 hops + 1 read cycle after cycle 0: lw at 10..29 (16 fp16 rows per
    cycle over 32 streams = 20 cycles), iw at 30, mv at 31 (the activation rides streams w0-w1
    in its own cycle), mv latency 16 + 19 superlane skew = 35 -> the accumulator is ready at 66;
    acc takes 2 cycles, the fp32 result travels 14 hops east to mem.e0..e3 (82), lands at 83;
    the last superlane finishes 19 cycles later: 83 + 1 + 19 = 103.
    """
    return _square_gemv(320, seed=0)


def gemv_4096() -> dict:
    """y = W @ x, W 4096x4096 fp16 over all four planes: 1903 cycles.

    13 x 13 blocks of 320 rows (the last output block has 256); an fp16 row takes 2 of the 32
    streams, so 16 rows ride a cycle. The hemispheres split the 13 output blocks 7/6: the west
    one streams 6 x 320 + 256 = 2176 rows for each of the 13 k-blocks, 28,288 rows = 1768
    cycles at 16. The two planes of a hemisphere load one after the other (one installs while
    the other loads) and then multiply in one shared cycle, whose activation takes the top 2
    streams; weight rows ride the rest of that cycle, 8 of them (rows go in whole groups of 8,
    see ROW_GROUP in kernels/gemv.py): 51 such cycles, +25.5. At the end the 256-row block loads
    alone on plane 0, 13 times: its last 8 rows ride a cycle alone (+6.5) and the plane's queue
    is busy the cycle it installs (12 idle cycles). So the west hemisphere streams 1800 cycles
    of rows and idles 12, from cycle 10 (the fill before the first row reaches its plane) to
    1821. The last 82 cycles are the last product: install, the MXM's 35 cycles, the read-out
    and trip to MEM, and zeroing the 256-row block's unused lanes. The weight-feed bound is
    4096 * 4096 * 2 B / (64 streams * 320 B) = 1638 cycles: 1903 / 1638 = 1.16.
    """
    return _square_gemv(4096, seed=1)


def rmsnorm_4096() -> dict:
    """RMSNorm of a 4096-vector (13 vectors of 320 lanes, fp32): 159 cycles.

    13 squares (VXM, 16 ALUs in parallel, from cycle 2), a 4-level add tree (13 -> 7 -> 4 ->
    2 -> 1; its last add lands in MEM at 37: a VXM result is taken straight off its stream by
    the next op when the schedule allows, 3 cycles a link, otherwise it goes through MEM, ~6-8
    cycles), one SXM lane reduction at the hemisphere edge (read at 38, 11 hops out, issued at
    50, 8 + 19 skew cycles, back in MEM at 87), then 1/n, + eps and rsqrt (r at 104), and two
    multiplies per vector, 26 on 16 ALUs (the last lands at 139). The program ends when the
    last superlane's copy of that result lands: 139 + 1 + 19 = 159.
    """
    rng = np.random.default_rng(2)
    x = rng.standard_normal(4096).astype(np.float32)
    w = (1 + 0.1 * rng.standard_normal(4096)).astype(np.float32)
    _, s = build_rmsnorm(4096, x=x, w=w)
    m = Machine(s.build())
    r = m.run()
    ref = x / np.sqrt(np.mean(x.astype(np.float64) ** 2) + 1e-5) * w
    return {"cycles": r.cycles, "predicted": s.predicted_cycles(), "y": m.dump("y"), "ref": ref}


def softmax_320() -> dict:
    """Softmax of one 320-lane fp32 vector: 149 cycles: a max reduction (SXM), subtract, exp,
    a sum reduction (SXM), reciprocal and a multiply; two SXM round trips (each ~11 hops out,
    8 + 19 skew cycles, ~11 hops back) are most of it."""
    rng = np.random.default_rng(3)
    x = (3 * rng.standard_normal(320)).astype(np.float32)
    _, s = build_softmax(x=x)
    m = Machine(s.build())
    r = m.run()
    e = np.exp(x.astype(np.float64) - x.max())
    return {"cycles": r.cycles, "predicted": s.predicted_cycles(), "y": m.dump("y"),
            "ref": e / e.sum()}


EXAMPLES = {"gemv_320": gemv_320, "gemv_4096": gemv_4096, "rmsnorm_4096": rmsnorm_4096,
            "softmax_320": softmax_320}


def main() -> None:
    for name, fn in EXAMPLES.items():
        out = fn()
        err = float(np.max(np.abs(out["y"] - out["ref"])) / np.max(np.abs(out["ref"])))
        print(f"{name:14s} {out['cycles']:6d} cycles (predicted {out['predicted']}), "
              f"max relative error {err:.1e}")


if __name__ == "__main__":
    main()
