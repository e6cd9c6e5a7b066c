"""Vector kernels for MXM weights that Numba's loop vectorizer cannot produce on its own: rows
stored 8 to a group, transposed, and in-order products over 8 rows per vector operation.

A plane's weights are kept as groups of 8 rows in their own encoding (int8 bytes, fp16 bits):
group g holds rows 8g..8g+7 with o[8c + j] = W[8g + j, c], so one 8-lane vector load gives
column c of 8 rows. Each row's sum still runs over c = 0..L-1 in order, one exact widening to
fp32, one fp32 multiply and one fp32 add per term (no fused multiply-add, no reassociation): the
same bits as a row-at-a-time loop, 8 rows per instruction. Which NaN a sum of NaNs keeps is the
CPU's choice; the MXM's read-out (`acc`) gives one NaN for all. With the JIT disabled, plain
Python loops compute the same.
"""

from __future__ import annotations

import numpy as np
from numba import config as numba_config

from lpu._jit import njit

GROUP = 8  # rows per group (the transposes and products below are written for 8)


@njit(inline="always")
def group_len(row: int, left: int, lanes: int) -> int:
    """Rows an lw moves together from `row` with `left` rows to go: an aligned group of GROUP,
    transposed 16 lanes a step, or else one row, lane by lane. The interpreter's and the
    worker's halves of lw both split rows this way."""
    return GROUP if row % GROUP == 0 and left >= GROUP and lanes % 16 == 0 else 1


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

    i8, i16, i32, i64, f32 = (ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64),
                              ir.FloatType())
    stages, order = _network()

    def data(context, builder, ty, val):
        return context.make_array(ty)(context, builder, val)

    def const(n):
        return ir.Constant(i64, n)

    def transpose(context, builder, sig, args, per_row: int, elem):
        """Codegen of both transposes: rows idx[0..] of a 2-D byte array hold the 8 rows' byte
        planes, per_row each (int8: one; fp16: its low byte, then its high byte), so they are
        read where they lie (SRAM words, stream entries). Their next 16 columns as <16 x elem>
        vectors go through the network and out as 8 vectors of 2 columns."""
        rows = data(context, builder, sig.args[0], args[0])
        n = builder.extract_value(rows.shape, 1)
        ip = data(context, builder, sig.args[1], args[1]).data
        op = data(context, builder, sig.args[2], args[2]).data
        starts = [builder.gep(rows.data, [builder.mul(builder.load(builder.gep(ip, [const(i)])),
                                                      n)])
                  for i in range(8 * per_row)]
        v16b, v16 = ir.VectorType(i8, 16), ir.VectorType(elem, 16)
        with cgutils.for_range(builder, builder.udiv(n, const(16))) as loop:
            c0 = builder.mul(loop.index, const(16))
            loads = [builder.load(builder.bitcast(builder.gep(p, [c0]), v16b.as_pointer()),
                                  align=1) for p in starts]
            if per_row == 1:
                vecs = loads
            else:  # fp16: low byte | high byte << 8
                vecs = [builder.or_(builder.zext(loads[2 * j], v16),
                                    builder.shl(builder.zext(loads[2 * j + 1], v16),
                                                ir.Constant(v16, [8] * 16)))
                        for j in range(8)]
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

    @intrinsic
    def transpose_i8(typingctx, rows, idx, out):
        """out[8c + j] = rows[idx[j], c] (bytes) for c < rows.shape[1], a multiple of 16."""
        def codegen(context, builder, sig, args):
            return transpose(context, builder, sig, args, 1, i8)

        return types.void(rows, idx, out), codegen

    @intrinsic
    def transpose_f16(typingctx, rows, idx, out):
        """out[8c + j] = rows[idx[2j], c] | rows[idx[2j + 1], c] << 8 (uint16: fp16 bits from
        their two byte planes)."""
        def codegen(context, builder, sig, args):
            return transpose(context, builder, sig, args, 2, i16)

        return types.void(rows, idx, out), codegen

    def make_matvec(ng: int, f16: bool):
        @intrinsic
        def matvec_groups(typingctx, o, gi, g0, x, y):
            """y[8g + j] = sum over c in order of W(o[gi[g], 8c + j]) * x[c], for the ng
            groups g0..g0+ng-1 side by side (independent sums hide the add latency); gi says
            which row of o holds each group (a plane's own, or a shared transposed copy)."""
            def codegen(context, builder, sig, args):
                oa = data(context, builder, sig.args[0], args[0])
                stride = builder.extract_value(oa.shape, 1)
                gp = data(context, builder, sig.args[1], args[1]).data
                xa = data(context, builder, sig.args[3], args[3])
                n = builder.extract_value(xa.shape, 0)
                yp = data(context, builder, sig.args[4], args[4]).data
                v8f, v8w = ir.VectorType(f32, 8), ir.VectorType(i16 if f16 else i8, 8)
                bases = [builder.gep(oa.data, [builder.mul(builder.load(builder.gep(
                    gp, [builder.add(args[2], const(k))])), stride)]) for k in range(ng)]
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
                                                          v8w.as_pointer()), align=1)
                        if f16:  # exact, as the table the kernel uses elsewhere
                            w = builder.fpext(builder.bitcast(wb, ir.VectorType(ir.HalfType(), 8)),
                                              v8f)
                        else:
                            w = builder.sitofp(wb, v8f)
                        prod = builder.fmul(w, xv)
                        builder.store(builder.fadd(builder.load(accs[k]), prod), accs[k])
                for k in range(ng):
                    q = builder.gep(yp, [builder.mul(builder.add(args[2], const(k)), const(8))])
                    builder.store(builder.load(accs[k]), builder.bitcast(q, v8f.as_pointer()),
                                  align=4)
                return context.get_dummy_value()

            return types.void(o, gi, g0, x, y), codegen

        return matvec_groups

    return (transpose_i8, transpose_f16, make_matvec(4, False), make_matvec(1, False),
            make_matvec(4, True), make_matvec(1, True))


def _transpose_i8_python(rows, idx, out) -> None:
    n = rows.shape[1] // 16 * 16
    for j in range(8):
        out[j:8 * n:8] = rows[idx[j], :n]


def _transpose_f16_python(rows, idx, out) -> None:
    n = rows.shape[1] // 16 * 16
    for j in range(8):
        lo, hi = rows[idx[2 * j], :n], rows[idx[2 * j + 1], :n]
        out[j:8 * n:8] = lo.astype(np.uint16) | (hi.astype(np.uint16) << 8)


def _matvec_groups_python(ng: int, f16: bool):
    def matvec_groups(o, gi, g0, x, y) -> None:
        with np.errstate(all="ignore"):  # 0 * inf is nan here as on the chip, silently
            for g in range(g0, g0 + ng):
                w = (o[gi[g]].view(np.float16) if f16 else o[gi[g]].view(np.int8)).astype(
                    np.float32)
                for j in range(8):
                    acc = np.float32(0.0)
                    for c in range(x.shape[0]):
                        acc = np.float32(acc + np.float32(w[8 * c + j] * x[c]))
                    y[8 * g + j] = acc
    return matvec_groups


if numba_config.DISABLE_JIT:
    transpose_i8, transpose_f16 = _transpose_i8_python, _transpose_f16_python
    matvec_i8x4, matvec_i8x1, matvec_f16x4, matvec_f16x1 = (
        _matvec_groups_python(4, False), _matvec_groups_python(1, False),
        _matvec_groups_python(4, True), _matvec_groups_python(1, True))
else:
    (transpose_i8, transpose_f16, matvec_i8x4, matvec_i8x1, matvec_f16x4,
     matvec_f16x1) = _intrinsics()
