"""Vector kernels built on the scheduler: RMSNorm, LayerNorm pieces, softmax, reductions.

Each takes vectors already in MEM and returns result vectors in MEM; the scheduler decides every
cycle. Cross-lane work (sums, maxima) goes through the SXM reduction; the rest is VXM lane math.
"""

from __future__ import annotations

import numpy as np

from lpu.kernels.builder import Builder
from lpu.kernels.sched import Scheduler, Vec

F16_F32 = {"from": "f16", "to": "f32"}  # cvt's fields widening fp16 to fp32


def tree(s: Scheduler, mnemonic: str, vecs: list[Vec], dt: str = "f32") -> Vec:
    """Combine vectors pairwise (add/max/min), log2(n) levels deep."""
    level = list(vecs)
    while len(level) > 1:
        nxt: list[Vec] = []
        for i in range(0, len(level) - 1, 2):
            # results paired at the next level apart: neither is copied first (_separate)
            avoid = nxt[-1].slices if len(nxt) % 2 else ()
            nxt.append(s.op(mnemonic, [level[i], level[i + 1]], dt, avoid=avoid))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def round16(s: Scheduler, v: Vec) -> Vec:
    """fp32 -> nearest fp16 value, kept as fp32 (a product's fp16-rounded input)."""
    h = s.op("cvt", [v], "f16", **{"from": "f32", "to": "f16"})
    return s.op("cvt", [h], "f32", **{"from": "f16", "to": "f32"}, dt=None)


def reduce_all(s: Scheduler, kind: str, v: Vec) -> Vec:
    """Every lane gets the sum/max/min of all lanes (SXM reduction)."""
    return s.op({"sum": "rsum", "max": "rmax", "min": "rmin"}[kind], [v], v.dtype,
                seg=s.chip.lanes)


def rmsnorm(s: Scheduler, xs: list[Vec], ws: list[Vec], n: int, eps: float) -> list[Vec]:
    """y = x * 1/sqrt(mean(x^2) + eps) * w over an n-element vector stored as len(xs) vectors
    (padding lanes hold zeros, so they add nothing to the sum)."""
    sq = [s.op("mul", [x, x], "f32") for x in xs]
    tot = reduce_all(s, "sum", tree(s, "add", sq))
    ms = s.op("muli", [tot], "f32", imm=float(np.float32(1.0 / n)))
    ms = s.op("addi", [ms], "f32", imm=float(eps))
    r = s.op("rsqrt", [ms], "f32")
    return [s.op("mul", [s.op("mul", [x, r], "f32"), w], "f32") for x, w in zip(xs, ws,
                                                                              strict=True)]


def softmax(s: Scheduler, x: Vec) -> Vec:
    """Softmax over all lanes of one f32 vector: exp(x - max) / sum."""
    m = reduce_all(s, "max", x)
    e = s.op("exp", [s.op("sub", [x, m], "f32")], "f32")
    r = s.op("recip", [reduce_all(s, "sum", e)], "f32")
    return s.op("mul", [e, r], "f32")


def build_rmsnorm(n: int = 4096, chip: str = "tsp-v1", eps: float = 1e-5,
                  x: np.ndarray | None = None, w: np.ndarray | None = None
                  ) -> tuple[Builder, Scheduler]:
    s = Scheduler(chip, source=f"<rmsnorm {n}>")
    xs = s.place("x", "f32", x, n)
    ws = s.place("w", "f32", w, n)
    ys = rmsnorm(s, xs, ws, n, eps)
    s.output("y", ys, n)
    return s.b, s


def build_softmax(chip: str = "tsp-v1", x: np.ndarray | None = None
                  ) -> tuple[Builder, Scheduler]:
    s = Scheduler(chip, source="<softmax>")
    L = s.chip.lanes
    (xv,) = s.place("x", "f32", x, L)
    s.output("y", [softmax(s, xv)], L)
    return s.b, s
