"""Vector kernels for int8 MXM weights that Numba's loop vectorizer cannot produce on its own:
rows stored 8 to a group, transposed, and in-order products over 8 rows per vector operation.

A plane's int8 weights are kept as groups of 8 rows: group g holds rows 8g..8g+7 with
o[8c + j] = W[8g + j, c], so one 8-lane vector load gives column c of 8 rows. Each row's sum
still runs over c = 0..L-1 in order, one fp32 multiply and one fp32 add per term (no fused
multiply-add, no reassociation): the same bits as a row-at-a-time loop, 8 rows per instruction.
With the JIT disabled, plain Python loops compute the same.
"""

from __future__ import annotations

import numpy as np
from numba import config as numba_config


def _network() -> tuple[list, list[int]]:
    """Three stages of two-source shuffles taking 8 vectors (row j: 16 consecutive columns) to
    8 vectors each holding 2 columns of all 8 rows (e = 8 * (column & 1) + row). Each stage
    swaps one bit of the vector index with one bit of the element index (a butterfly); the last
    also puts each vector's elements in their final order. Returns the stages, each a list of
    (output, source a, source b, mask), and which output vector holds columns 2k, 2k+1."""
    lab = [[(j, c) for c in range(16)] for j in range(8)]  # vector j, element c: (row, column)
    stages = []
    for v, p in ((0, 1), (1, 2), (2, 3)):
        new: list = [None] * 8
        ops = []
        for a in range(8):
            if a >> v & 1:
                continue
            b = a | (1 << v)
            for nb, out in ((0, a), (1, b)):
                tgt = [lab[a if (e >> p) & 1 == 0 else b][(e & ~(1 << p)) | (nb << p)]
                       for e in range(16)]
                if v == 2:
                    cols = sorted({c for _, c in tgt})
                    tgt = [(j, cols[h]) for h in range(2) for j in range(8)]
                new[out] = tgt
                ops.append((out, a, b, [(lab[a] + lab[b]).index(t) for t in tgt]))
        stages.append(ops)
        lab = new
    order = [0] * 8
    for i in range(8):
        order[lab[i][0][1] // 2] = i
    return stages, order


def _intrinsics():
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    i8, i32, i64, f32 = ir.IntType(8), ir.IntType(32), ir.IntType(64), ir.FloatType()
    stages, order = _network()

    def data(context, builder, ty, val):
        return context.make_array(ty)(context, builder, val)

    def const(n):
        return ir.Constant(i64, n)

    @intrinsic
    def transpose_rows8(typingctx, r0, r1, r2, r3, r4, r5, r6, r7, out):
        """out[8c + j] = rj[c] for c < len(r0) (a multiple of 16): 16 columns per step."""
        def codegen(context, builder, sig, args):
            rows = [data(context, builder, t, v) for t, v in zip(sig.args[:8], args[:8],
                                                                 strict=True)]
            n = builder.extract_value(rows[0].shape, 0)
            op = data(context, builder, sig.args[8], args[8]).data
            v16 = ir.VectorType(i8, 16)
            with cgutils.for_range(builder, builder.udiv(n, const(16))) as loop:
                c0 = builder.mul(loop.index, const(16))
                vecs = [builder.load(builder.bitcast(builder.gep(r.data, [c0]), v16.as_pointer()),
                                     align=1) for r in rows]
                for ops in stages:
                    new = [None] * 8
                    for o, a, b, mask in ops:
                        new[o] = builder.shuffle_vector(vecs[a], vecs[b],
                                                        ir.Constant(ir.VectorType(i32, 16), mask))
                    vecs = new
                for k in range(8):
                    q = builder.gep(op, [builder.mul(builder.add(c0, const(2 * k)), const(8))])
                    builder.store(vecs[order[k]], builder.bitcast(q, v16.as_pointer()), align=1)
            return context.get_dummy_value()

        return types.void(r0, r1, r2, r3, r4, r5, r6, r7, out), codegen

    def make_matvec(ng: int):
        @intrinsic
        def matvec_groups(typingctx, o, g0, x, y):
            """y[8g + j] = sum over c in order of int8(o[g, 8c + j]) * x[c], for the ng groups
            g0..g0+ng-1 side by side (independent sums hide the add latency)."""
            def codegen(context, builder, sig, args):
                oa = data(context, builder, sig.args[0], args[0])
                stride = builder.extract_value(oa.shape, 1)
                xa = data(context, builder, sig.args[2], args[2])
                n = builder.extract_value(xa.shape, 0)
                yp = data(context, builder, sig.args[3], args[3]).data
                v8f, v8b = ir.VectorType(f32, 8), ir.VectorType(i8, 8)
                bases = [builder.gep(oa.data, [builder.mul(builder.add(args[1], const(k)), stride)])
                         for k in range(ng)]
                accs = [cgutils.alloca_once_value(builder, ir.Constant(v8f, [0.0] * 8))
                        for _ in range(ng)]
                with cgutils.for_range(builder, n) as loop:
                    c = loop.index
                    xc = builder.load(builder.gep(xa.data, [c]))
                    xv = builder.insert_element(ir.Constant(v8f, ir.Undefined), xc,
                                                ir.Constant(i32, 0))
                    xv = builder.shuffle_vector(xv, ir.Constant(v8f, ir.Undefined),
                                                ir.Constant(ir.VectorType(i32, 8), [0] * 8))
                    c8 = builder.mul(c, const(8))
                    for k in range(ng):
                        wb = builder.load(builder.bitcast(builder.gep(bases[k], [c8]),
                                                          v8b.as_pointer()), align=1)
                        prod = builder.fmul(builder.sitofp(wb, v8f), xv)
                        builder.store(builder.fadd(builder.load(accs[k]), prod), accs[k])
                for k in range(ng):
                    q = builder.gep(yp, [builder.mul(builder.add(args[1], const(k)), const(8))])
                    builder.store(builder.load(accs[k]), builder.bitcast(q, v8f.as_pointer()),
                                  align=4)
                return context.get_dummy_value()

            return types.void(o, g0, x, y), codegen

        return matvec_groups

    return transpose_rows8, make_matvec(4), make_matvec(1)


def _transpose_rows8_python(r0, r1, r2, r3, r4, r5, r6, r7, out) -> None:
    n = r0.shape[0] // 16 * 16
    for j, r in enumerate((r0, r1, r2, r3, r4, r5, r6, r7)):
        out[j:8 * n:8] = r[:n]


def _matvec_groups_python(ng: int):
    def matvec_groups(o, g0, x, y) -> None:
        w = o.view(np.int8).astype(np.float32)
        with np.errstate(all="ignore"):  # 0 * inf is nan here as on the chip, silently
            for g in range(g0, g0 + ng):
                for j in range(8):
                    acc = np.float32(0.0)
                    for c in range(x.shape[0]):
                        acc = np.float32(acc + np.float32(w[g, 8 * c + j] * x[c]))
                    y[8 * g + j] = acc
    return matvec_groups


if numba_config.DISABLE_JIT:
    transpose_rows8 = _transpose_rows8_python
    matvec_groups4, matvec_groups1 = _matvec_groups_python(4), _matvec_groups_python(1)
else:
    transpose_rows8, matvec_groups4, matvec_groups1 = _intrinsics()
