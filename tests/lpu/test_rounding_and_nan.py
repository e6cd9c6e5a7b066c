"""Results rounded once and NaNs made canonical, checked bit for bit.

exp/tanh/rsqrt/sigmoid and int -> f16/bf16 conversions must equal the exact (binary64) value
rounded once to the element type; every arithmetic NaN is the type's one quiet NaN.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from test_semantics import L, run_op

from lpu import _engine as E


def bf16_of(x: float) -> float:
    """The binary64 value x rounded once to bf16 (nearest even), as a float: exact arithmetic."""
    if math.isnan(x) or math.isinf(x) or x == 0:
        return x
    _, e = math.frexp(x)  # |x| = m * 2^e, 0.5 <= m < 1: bf16 keeps 8 significant bits
    scale = Fraction(2) ** max(e - 8, -133)  # -133: bf16's smallest subnormal step
    q = round(Fraction(x) / scale)  # Fraction rounds halves to even
    v = q * scale
    return math.copysign(math.inf, x) if abs(v) >= 2**128 else float(v)


def once(x: np.ndarray, dt: str) -> np.ndarray:
    """binary64 values rounded once to dt, as float32 (every dt value is an fp32 value)."""
    if dt == "f16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float32)  # numpy rounds binary64 directly
    if dt == "bf16":
        return np.array([bf16_of(float(v)) for v in x], np.float32)
    return x.astype(np.float32)


LIBM = {"exp": math.exp, "tanh": math.tanh, "rsqrt": lambda v: 1 / math.sqrt(v),
        "sigmoid": lambda v: 1 / (1 + math.exp(-v))}


@pytest.mark.parametrize("dt", ["f16", "bf16", "f32"])
@pytest.mark.parametrize("op", list(LIBM))
def test_transcendentals_are_rounded_once(op, dt):
    rng = np.random.default_rng(7)
    a = (rng.standard_normal(L) * 4).astype(np.float32)
    if op == "rsqrt":
        a = np.abs(a) + np.float32(1e-3)
    a = once(a.astype(np.float64), dt)  # values the type holds
    got = run_op(op, dt, [a], dt)
    want = once(np.array([LIBM[op](float(v)) for v in a]), dt)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("dt", ["f16", "bf16", "f32"])
def test_int32_to_float_rounds_once(dt):
    rng = np.random.default_rng(8)
    v = rng.integers(-(2**31), 2**31, L, dtype=np.int64)
    # halfway cases that rounding through fp32 first would get wrong for bf16:
    # 2^24 + 2^16 + 1 rounds up to 2^24 + 2^17 (bf16), but fp32 first makes it 2^24 + 2^16
    v[:4] = [2**24 + 2**16 + 1, -(2**24 + 2**16 + 1), 65519, 65520]
    got = run_op("cvt", "i32", [v], dt, **{"from": "i32", "to": dt})
    want = once(v.astype(np.float64), dt)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_exp_and_sigmoid_far_out_need_no_jit_to_agree():
    # the kernel's Python body (what NUMBA_DISABLE_JIT=1 runs) must not raise OverflowError
    fa = np.array([800.0, 709.5, -800.0, -709.5, 88.0, -104.0], np.float32)
    n = len(fa)
    out = {}
    for op in (6, 9):  # exp, sigmoid
        for run in (E._vxm_unary, E._vxm_unary.py_func):
            fz = np.zeros(n, np.float32)
            bits = np.zeros(n, np.int64)
            run(op, E.DT_F32, fa, np.zeros(n, np.int64), fa.view(np.uint32).astype(np.int64),
                fz, bits)
            out.setdefault(op, []).append(bits.copy())
        np.testing.assert_array_equal(out[op][0], out[op][1])
    assert np.uint32(out[6][0][0]) == np.float32(np.inf).view(np.uint32)
    assert out[9][0][2] == 0  # sigmoid(-800) = +0


@pytest.mark.parametrize("dt,qnan", [("f32", 0x7FC00000), ("f16", 0x7E00), ("bf16", 0x7FC0)])
def test_arithmetic_nans_are_canonical_and_bit_ops_keep_payloads(dt, qnan):
    from lpu.isa.dtypes import from_bits, to_bits

    g = {"f32": 32, "f16": 16, "bf16": 16}[dt]
    raw = np.full(L, qnan, np.int64)
    # NaNs with other payloads and signs (f16/bf16 inputs arrive quieted by the fp32 load)
    raw[:3] = ([0xFFC00000, 0x7F800001, 0x7FC12345] if g == 32 else
               [0xFE00, 0x7E01, 0x7E35] if dt == "f16" else [0xFFC0, 0x7FC1, 0x7FC5])
    a = from_bits(raw, dt)
    b = np.ones(L, np.float32)
    for op, ins in (("add", [a, b]), ("mul", [b, a]), ("exp", [a]), ("max", [b, a])):
        got = to_bits(run_op(op, dt, ins, dt), dt).astype(np.int64)
        assert (got == qnan).all(), op
    sign = 1 << (g - 1)
    for op, want in (("mov", raw), ("neg", raw ^ sign), ("abs", raw & ~sign)):
        got = to_bits(run_op(op, dt, [a], dt), dt).astype(np.int64)
        np.testing.assert_array_equal(got, want, err_msg=op)
