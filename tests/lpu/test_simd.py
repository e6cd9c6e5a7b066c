"""The weight kernels of lpu._simd: rows transposed in groups of 8, products 8 rows per vector
operation, each row still summed in lane order: the same bits as a row at a time, and the same
as their plain-Python forms (what NUMBA_DISABLE_JIT=1 runs)."""

import numpy as np
import pytest
from numba import njit

from lpu import _simd


@njit
def _row_at_a_time(W, x, y):
    for r in range(W.shape[0]):
        acc = np.float32(0.0)
        for c in range(W.shape[1]):
            acc += W[r, c] * x[c]
        y[r] = acc


@njit
def _transpose_i8(rows, idx, out):
    _simd.transpose_i8(rows, idx, out)


@njit
def _transpose_f16(rows, idx, out):
    _simd.transpose_f16(rows, idx, out)


@njit
def _matvec(o, gi, x, y, four, f16):
    g = 0
    while g < gi.shape[0]:
        if four and g + 4 <= gi.shape[0]:
            if f16:
                _simd.matvec_f16x4(o, gi, g, x, y)
            else:
                _simd.matvec_i8x4(o, gi, g, x, y)
            g += 4
        else:
            if f16:
                _simd.matvec_f16x1(o, gi, g, x, y)
            else:
                _simd.matvec_i8x1(o, gi, g, x, y)
            g += 1


def _bits(y):
    """fp32 bits, every NaN as the one NaN an accumulator read-out gives (`acc`): which NaN an
    add of two NaNs keeps is the CPU's choice, not the chip's."""
    return np.where(np.isnan(y), np.uint32(0x7FC00000), y.view(np.uint32))


def _x(rng, L):
    x = (rng.standard_normal(L) * 10).astype(np.float16).astype(np.float32)
    x[:6] = [-0.0, 65504, 6e-8, -6e-8, np.inf, np.nan]  # inf and nan make nan rows, in order
    return x


@pytest.mark.parametrize("L", [16, 320])
@pytest.mark.parametrize("wdt", ["i8", "f16"])
def test_transposed_rows_and_products_match_row_at_a_time_bit_for_bit(L, wdt):
    rng = np.random.default_rng(L)
    if wdt == "i8":
        W = rng.integers(-128, 128, (L, L)).astype(np.int8)
        raw = W.view(np.uint8)
    else:  # every kind of fp16: subnormals, infinities, NaNs
        W = rng.integers(0, 1 << 16, (L, L)).astype(np.uint16).view(np.float16)
        raw = W.view(np.uint16)
    groups = np.zeros((L // 8, 8 * L), raw.dtype)
    py = np.zeros_like(groups)
    for g in range(L // 8):
        rows = raw[8 * g:8 * g + 8].copy()
        # the planes sit in a bigger array, in any order (as SRAM words do): idx says where
        planes = (rows if wdt == "i8" else np.stack([rows & 0xFF, rows >> 8], axis=1).reshape(
            16, L)).astype(np.uint8)  # fp16: row j's low bytes, then its high bytes
        where = rng.permutation(40)[:len(planes)]
        store = rng.integers(0, 256, (40, L)).astype(np.uint8)
        store[where] = planes
        idx = where.astype(np.int64)
        if wdt == "i8":
            _transpose_i8(store, idx, groups[g])
            _simd._transpose_i8_python(store, idx, py[g])
        else:
            _transpose_f16(store, idx, groups[g])
            _simd._transpose_f16_python(store, idx, py[g])
    np.testing.assert_array_equal(groups.reshape(L // 8, L, 8).transpose(0, 2, 1).reshape(L, L),
                                  raw)
    np.testing.assert_array_equal(py, groups)
    # the products find each group through gi: here every group in a row of its own, in
    # another order, amid rows of noise (a plane's groups may be shared transposed copies)
    gi = (rng.permutation(L // 8 + 5)[:L // 8]).astype(np.int64)
    pool = rng.integers(0, 256, (L // 8 + 5, 8 * L)).astype(groups.dtype)
    pool[gi] = groups
    for x in (_x(rng, L), np.zeros(L, np.float32)):
        want = np.zeros(L, np.float32)
        _row_at_a_time(W.astype(np.float32), x, want)
        for four in (True, False):
            got = np.full(L, 7, np.float32)
            _matvec(pool, gi, x, got, four, wdt == "f16")
            np.testing.assert_array_equal(_bits(got), _bits(want))
        got = np.full(L, 7, np.float32)
        _simd._matvec_groups_python(L // 8, wdt == "f16")(pool, gi, 0, x, got)
        np.testing.assert_array_equal(_bits(got), _bits(want))
