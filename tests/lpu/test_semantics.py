"""Every VXM and SXM operation against an independent numpy model, for every type it takes.

Floats are computed in fp32 and rounded once to the element type (numpy for fp16, torch for
bf16); integers wrap at their width; compares give an i32 mask; and/or/xor act on raw bits.
"""

import numpy as np
import pytest

from lpu.kernels.sched import Scheduler
from lpu.machine import Machine

L = 320
FLOATS = ("f32", "f16", "bf16")
INTS = ("i32", "i8")
RNG = np.random.default_rng(1234)


def round_to(x: np.ndarray, dt: str) -> np.ndarray:
    """fp32 values rounded to dt (nearest even) and back to fp32."""
    x = np.asarray(x, np.float32)
    if dt == "f16":
        with np.errstate(over="ignore"):  # beyond 65504 rounds to inf, as it should
            return x.astype(np.float16).astype(np.float32)
    if dt == "bf16":
        torch = pytest.importorskip("torch")
        return torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy()
    return x


def sample(dt: str, nonneg: bool = False) -> np.ndarray:
    if dt in FLOATS:
        v = (RNG.standard_normal(L) * 3).astype(np.float32)
        v[:4] = [0.0, -0.0, 1.5, -2.25]
        v = np.abs(v) if nonneg else v
        return round_to(v, dt)
    lo, hi = (-128, 128) if dt == "i8" else (-(2**31), 2**31)
    v = RNG.integers(lo, hi, L, dtype=np.int64)
    v[:3] = [0, lo, hi - 1]
    return v


def run_op(mnemonic, dt, ins, out_dt, **kw):
    s = Scheduler("tsp-v1")
    vecs = [s.place(f"in{i}", dt, v, L)[0] for i, v in enumerate(ins)]
    out = s.op(mnemonic, vecs, out_dt, dt=dt if "from" not in kw else None, **kw)
    s.output("out", [out], L)
    m = Machine(s.build())
    r = m.run()
    assert r.cycles == s.predicted_cycles()
    return m.dump("out")


def bits(v: np.ndarray, dt: str) -> np.ndarray:
    from lpu.isa.dtypes import to_bits

    return to_bits(v, dt).astype(np.int64)


def wrap(v: np.ndarray, dt: str) -> np.ndarray:
    w = 8 if dt == "i8" else 32
    v = np.asarray(v, np.int64) & ((1 << w) - 1)
    return np.where(v >= 1 << (w - 1), v - (1 << w), v)


def expect_binary(op, dt, a, b):
    if op in ("cmpeq", "cmplt", "cmple"):
        f = {"cmpeq": np.equal, "cmplt": np.less, "cmple": np.less_equal}[op]
        return np.where(f(a, b), -1, 0)
    if op in ("and", "or", "xor"):
        f = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op]
        r = f(bits(a, dt), bits(b, dt))
        from lpu.isa.dtypes import from_bits

        return from_bits(r, dt)
    if dt in FLOATS:
        a32, b32 = np.float32(a), np.float32(b)
        f = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum,
             "min": np.minimum}[op]
        with np.errstate(all="ignore"):
            return round_to(f(a32, b32), dt)
    a64, b64 = np.int64(a), np.int64(b)
    r = {"add": lambda: a64 + b64, "sub": lambda: a64 - b64, "mul": lambda: a64 * b64,
         "max": lambda: np.maximum(a64, b64), "min": lambda: np.minimum(a64, b64),
         "shl": lambda: a64 << (b64 & 31), "shr": lambda: a64 >> (b64 & 31)}[op]()
    return wrap(r, dt)


BINARY = ["add", "sub", "mul", "max", "min", "and", "or", "xor", "cmpeq", "cmplt", "cmple"]


# shifts are integer-only (on floats they are a static error, tested in tests/isa)
BINARY_CASES = [(op, dt) for op in BINARY for dt in FLOATS + INTS] + [
    (op, dt) for op in ("shl", "shr") for dt in INTS]


@pytest.mark.parametrize("op,dt", BINARY_CASES)
def test_binary_op_matches_numpy(op, dt):
    a, b = sample(dt), sample(dt)
    b[:8] = a[:8]  # some equal lanes for the compares
    out_dt = "i32" if op.startswith("cmp") else dt
    got = run_op(op, dt, [a, b], out_dt)
    np.testing.assert_array_equal(got, expect_binary(op, dt, a, b))


@pytest.mark.parametrize("dt", ["f32", "f16", "i32"])
@pytest.mark.parametrize("op", ["add", "mul", "max", "sub"])
def test_immediate_form_matches_numpy(op, dt):
    a = sample(dt)
    imm = 1.25 if dt in FLOATS else -7
    got = run_op(op + "i", dt, [a], dt, imm=imm)
    b = np.full(L, imm, np.float32 if dt in FLOATS else np.int64)
    np.testing.assert_array_equal(got, expect_binary(op, dt, a, b))


UNARY_F = {"mov": lambda x: x, "neg": lambda x: -x, "abs": np.abs,
           "relu": lambda x: np.maximum(x, np.float32(0)),
           "recip": lambda x: np.float32(1) / x, "sqrt": np.sqrt}
UNARY_T = {"exp": np.exp, "tanh": np.tanh, "rsqrt": lambda x: 1 / np.sqrt(x),
           "sigmoid": lambda x: 1 / (1 + np.exp(-x))}


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("op", list(UNARY_F) + list(UNARY_T))
def test_unary_float_op_matches_numpy(op, dt):
    nonneg = op in ("sqrt", "rsqrt")
    a = sample(dt, nonneg=nonneg)
    a[np.abs(a) < 1e-3] = 0.5  # keep 1/x and 1/sqrt(x) finite
    got = run_op(op, dt, [a], dt)
    with np.errstate(all="ignore"):
        if op in UNARY_F:
            exp = round_to(UNARY_F[op](np.float32(a)), dt)
            np.testing.assert_array_equal(got, exp)
        else:
            # computed in float64 and rounded once: within one ulp of the dtype
            ref = round_to(UNARY_T[op](a.astype(np.float64)).astype(np.float32), dt)
            ulp = {"f32": 2**-23, "f16": 2**-10, "bf16": 2**-7}[dt]
            np.testing.assert_allclose(got, ref, rtol=ulp, atol=1e-30)


@pytest.mark.parametrize("dt", INTS)
@pytest.mark.parametrize("op", ["mov", "neg", "abs", "relu"])
def test_unary_int_op_wraps_like_twos_complement(op, dt):
    a = sample(dt)
    got = run_op(op, dt, [a], dt)
    f = {"mov": lambda x: x, "neg": lambda x: -x, "abs": np.abs,
         "relu": lambda x: np.maximum(x, 0)}[op]
    np.testing.assert_array_equal(got, wrap(f(np.int64(a)), dt))


@pytest.mark.parametrize("src", FLOATS + INTS)
@pytest.mark.parametrize("dst", FLOATS + INTS)
def test_conversion_rounds_to_nearest_even_and_saturates(src, dst):
    a = sample(src)
    if src in FLOATS:
        a[4:8] = [2.5, -3.5, 1e12, -1e12]  # halves go to even; huge values saturate
        a = round_to(a, src)  # what the source type can hold (fp16: +-inf)
    got = run_op("cvt", src, [a], dst, **{"from": src, "to": dst})
    if dst in FLOATS:
        exp = round_to(np.float32(a), dst)
    else:
        lo, hi = (-128, 127) if dst == "i8" else (-(2**31), 2**31 - 1)
        with np.errstate(invalid="ignore"):
            v = np.rint(a.astype(np.float64)) if src in FLOATS else np.int64(a)
            v = np.where(np.isnan(v), 0, np.clip(v, lo, hi))  # NaN -> 0
        exp = v.astype(np.int64)
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("seg", [320, 64, 7])
@pytest.mark.parametrize("op", ["rsum", "rmax", "rmin"])
def test_lane_reductions_broadcast_within_each_segment(op, seg):
    a = sample("f32")
    got = run_op(op, "f32", [a], "f32", seg=seg)
    exp = np.empty(L, np.float32)
    for s0 in range(0, L, seg):  # the last segment is shorter when seg does not divide L
        part = a[s0:s0 + seg]
        if op == "rsum":
            acc = np.float32(0)
            for v in part:  # fp32, in lane order
                acc = np.float32(acc + v)
            exp[s0:s0 + seg] = acc
        else:
            exp[s0:s0 + seg] = part.max() if op == "rmax" else part.min()
    np.testing.assert_array_equal(got, exp)


def test_integer_sums_wrap():
    a = np.full(L, 2**31 - 1, np.int64)
    got = run_op("rsum", "i32", [a], "i32", seg=2)
    np.testing.assert_array_equal(got, wrap(2 * a, "i32"))


@pytest.mark.parametrize("n", [1, -5, 17])
def test_shift_and_rotate_move_lanes(n):
    a = sample("f32")
    got = run_op("shift", "f32", [a], "f32", sg=4, n=n)
    exp = np.zeros(L, np.float32)
    idx = np.arange(L) - n
    ok = (idx >= 0) & (idx < L)
    exp[ok] = a[idx[ok]]
    np.testing.assert_array_equal(got, exp)
    got = run_op("rotate", "f32", [a], "f32", sg=4, n=n)
    np.testing.assert_array_equal(got, a[(np.arange(L) - n) % L])


def test_permute_and_distribute_follow_their_maps():
    a = sample("f32")
    s = Scheduler("tsp-v1")
    (av,) = s.place("a", "f32", a, L)
    perm = np.roll(np.arange(L), 3)
    perm[5] = -1
    dist = (np.arange(L) // 16) * 16 + (15 - np.arange(L) % 16)  # reverse inside superlanes
    p = s.op("permute", [av], "f32", sg=4, map=s.b.lane_map(perm))
    d = s.op("distribute", [av], "f32", sg=4, map=s.b.lane_map(dist))
    s.output("p", [p], L)
    s.output("d", [d], L)
    m = Machine(s.build())
    m.run()
    exp = np.where(perm >= 0, a[np.maximum(perm, 0)], 0)
    np.testing.assert_array_equal(m.dump("p"), exp)
    np.testing.assert_array_equal(m.dump("d"), a[dist])


def test_gather_reads_the_row_lane_0_of_the_index_names_and_repeats_step_addresses():
    # mini, hand-timed: mem.w0 (stage 9) holds rows 0..7 of a table at addresses 0..7 and an
    # i32 index vector in mem.w3..w0 at 100; plane j of the index (slice mem.w(3-j), stage
    # 6+j) is read at cycle j, is on the stream at j+1, and passes stage 9 at cycle 4.
    from lpu.kernels.builder import Builder

    b = Builder("mini")
    table = np.arange(8 * 16, dtype=np.int64).reshape(8, 16) % 100
    b.data("table", "i8", (8, 16), [("mem.w0", 0, 8)], table)
    b.data("idx", "i32", (16,), [(f"mem.w{3 - j}", 100, 1) for j in range(4)], np.full(16, 5))
    b.data("row", "i8", (16,), [("mem.e0", 200, 1)])
    b.data("copy", "i8", (4, 16), [("mem.e1", 300, 4)])
    for j in range(4):
        b.at(f"mem.w{3 - j}", j, "read", addr=100, z=f"e{j}")
    # gather at cycle 4 in mem.w0: address = 0 + 1 * idx[lane 0] = 5 -> row 5 on e4 at 5
    b.at("mem.w0", 4, "gather", base=0, z="e4", i="e0", stride=1)
    b.at("mem.e0", 7, "write", addr=200, a="e4")  # stage 9 -> 11: two hops
    # a repeated read with step 2 copies rows 0, 2, 4, 6 to mem.e1 (stage 12) via e5: read
    # at 10..13, on the stream at 11..14 at stage 9, at stage 12 at 14..17
    b.at("mem.w0", 10, "read", addr=0, z="e5", step=2, repeat=(3, 1))
    b.at("mem.e1", 14, "write", addr=300, a="e5", step=1, repeat=(3, 1))
    m = Machine(b.build())
    m.run()
    np.testing.assert_array_equal(m.dump("row"), table[5])
    np.testing.assert_array_equal(m.dump("copy"), table[[0, 2, 4, 6]])


def test_the_mxm_sums_each_row_in_fp32_in_lane_order_bit_for_bit():
    # the documented order: y[r] = (((0 + W[r,0] x[0]) + W[r,1] x[1]) + ...) in fp32; fp16
    # products are exact in fp32, so only the order of the additions can change the bits
    from lpu.kernels.gemv import build_gemv

    W = (RNG.standard_normal((320, 320)) * 3).astype(np.float16).astype(np.float32)
    x = (RNG.standard_normal(320) * 3).astype(np.float16).astype(np.float32)
    g = build_gemv(320, 320, "f16", weights=W, x=x)
    m = Machine(g.program)
    m.run()
    acc = np.zeros(320, np.float32)
    for c in range(320):  # numpy float32 arithmetic rounds after every operation
        acc = acc + W[:, c] * x[c]
    np.testing.assert_array_equal(m.dump("y"), acc)
