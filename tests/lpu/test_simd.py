"""The int8 weight kernels of lpu._simd: rows transposed in groups of 8, products 8 rows per
vector operation, each row still summed in lane order: the same bits as a row at a time, and
the same as their plain-Python forms (what NUMBA_DISABLE_JIT=1 runs)."""

import numpy as np
import pytest
from numba import njit

from lpu import _simd
from lpu._engine import _matvec_in_order


@njit
def _transpose(rows, out):
    _simd.transpose_rows8(rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], rows[6], rows[7],
                          out)


@njit
def _matvec(o, x, y, four):
    g = 0
    while g < o.shape[0]:
        if four and g + 4 <= o.shape[0]:
            _simd.matvec_groups4(o, g, x, y)
            g += 4
        else:
            _simd.matvec_groups1(o, g, x, y)
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
def test_transposed_rows_and_products_match_row_at_a_time_bit_for_bit(L):
    rng = np.random.default_rng(L)
    W = rng.integers(-128, 128, (L, L)).astype(np.int8)
    groups = np.zeros((L // 8, 8 * L), np.uint8)
    for g in range(L // 8):
        _transpose(W[8 * g:8 * g + 8].view(np.uint8).copy(), groups[g])
    np.testing.assert_array_equal(groups.reshape(L // 8, L, 8).transpose(0, 2, 1).reshape(L, L),
                                  W.view(np.uint8))
    py = np.zeros_like(groups)
    for g in range(L // 8):
        _simd._transpose_rows8_python(*W[8 * g:8 * g + 8].view(np.uint8), py[g])
    np.testing.assert_array_equal(py, groups)
    for x in (_x(rng, L), np.zeros(L, np.float32)):
        want = np.zeros(L, np.float32)
        _matvec_in_order(W.astype(np.float32), x, want)
        for four in (True, False):
            got = np.full(L, 7, np.float32)
            _matvec(groups, x, got, four)
            np.testing.assert_array_equal(_bits(got), _bits(want))
        got = np.full(L, 7, np.float32)
        _simd._matvec_groups_python(L // 8)(groups, 0, x, got)
        np.testing.assert_array_equal(_bits(got), _bits(want))
