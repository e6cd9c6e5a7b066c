"""Element types as bit patterns: fp16/bf16/fp32 conversions with integer operations only.

Numba cannot compute float16 on the CPU, so every conversion works on uint16/uint32 bits,
rounds to nearest even, and is tested bit-for-bit against numpy (fp16) and torch (bf16).
"""

from __future__ import annotations

import numpy as np

from lpu._jit import njit
from lpu.isa.table import DTYPES


@njit
def half_from_f32_bits(u: int) -> int:
    """fp32 bits -> fp16 bits, round to nearest even; NaN stays (quiet) NaN."""
    sign = (u >> 16) & 0x8000
    a = u & 0x7FFFFFFF
    if a >= 0x7F800000:  # inf or NaN
        h = 0x7C00 | (0x200 | ((a & 0x7FFFFF) >> 13) if a > 0x7F800000 else 0)
    elif a >= 0x477FF000:  # rounds to >= 65536: overflow to inf
        h = 0x7C00
    elif a >= 0x38800000:  # normal fp16 (>= 2^-14)
        h = (a - 0x38000000 + 0xFFF + ((a >> 13) & 1)) >> 13
    elif a >= 0x33000000:  # subnormal fp16 (rounds to at least 0, at most 2^-14)
        e = a >> 23
        m = (a & 0x7FFFFF) | 0x800000
        s = 126 - e
        h = m >> s
        rem = m & ((1 << s) - 1)
        half = 1 << (s - 1)
        if rem > half or (rem == half and (h & 1)):
            h += 1
    else:
        h = 0
    return sign | h


@njit
def f32_from_half_bits(h: int) -> int:
    """fp16 bits -> fp32 bits (exact)."""
    sign = (h & 0x8000) << 16
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0x1F:
        return sign | 0x7F800000 | (m << 13)
    if e == 0:
        if m == 0:
            return sign
        e2 = 113
        while (m & 0x400) == 0:
            m <<= 1
            e2 -= 1
        return sign | (e2 << 23) | ((m & 0x3FF) << 13)
    return sign | ((e + 112) << 23) | (m << 13)


@njit
def bf16_from_f32_bits(u: int) -> int:
    """fp32 bits -> bf16 bits, round to nearest even; NaN stays (quiet) NaN."""
    if (u & 0x7FFFFFFF) > 0x7F800000:
        return ((u >> 16) | 0x40) & 0xFFFF
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF


@njit
def f32_to_f16_bits(x: np.ndarray) -> np.ndarray:
    """float32 array -> uint16 fp16 bits, round to nearest even."""
    b = x.view(np.uint32)
    out = np.empty(b.shape, np.uint16)
    for i in range(b.size):
        out.flat[i] = half_from_f32_bits(np.int64(b.flat[i]))
    return out


@njit
def f16_bits_to_f32(h: np.ndarray) -> np.ndarray:
    """uint16 fp16 bits -> float32 (exact)."""
    out = np.empty(h.shape, np.uint32)
    for i in range(h.size):
        out.flat[i] = f32_from_half_bits(np.int64(h.flat[i]))
    return out.view(np.float32)


@njit
def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 array -> uint16 bf16 bits, round to nearest even."""
    b = x.view(np.uint32)
    out = np.empty(b.shape, np.uint16)
    for i in range(b.size):
        out.flat[i] = bf16_from_f32_bits(np.int64(b.flat[i]))
    return out


@njit
def bf16_bits_to_f32(h: np.ndarray) -> np.ndarray:
    out = np.empty(h.shape, np.uint32)
    for i in range(h.size):
        out.flat[i] = np.uint32(h.flat[i]) << 16
    return out.view(np.float32)


def to_bits(values: np.ndarray, dtype: str) -> np.ndarray:
    """Numbers -> the little-endian element bits of `dtype` as an unsigned array.

    Floats round to nearest even; integer types must already hold in-range integers (checked).
    """
    a = np.asarray(values)
    if dtype == "f32":
        return np.ascontiguousarray(a, np.float32).view(np.uint32)
    if dtype == "f16":
        return f32_to_f16_bits(np.ascontiguousarray(a, np.float32))
    if dtype == "bf16":
        return f32_to_bf16_bits(np.ascontiguousarray(a, np.float32))
    if dtype in ("i8", "i32"):
        own, bits = (np.int8, np.uint8) if dtype == "i8" else (np.int32, np.uint32)
        if a.dtype == own:  # already its bits (a model's int8 weights: no int64 copy of them)
            return np.ascontiguousarray(a).view(bits)
        lo, hi = (-128, 127) if dtype == "i8" else (-(2**31), 2**31 - 1)
        if a.size and (not np.issubdtype(a.dtype, np.integer) and not np.all(a == np.round(a))):
            raise ValueError(f"{dtype} data must be integers")
        ai = a.astype(np.int64)
        if ai.size and (ai.min() < lo or ai.max() > hi):
            raise ValueError(f"{dtype} data out of range {lo}..{hi}")
        return ai.astype(np.int8 if dtype == "i8" else np.int32).view(
            np.uint8 if dtype == "i8" else np.uint32)
    raise ValueError(f"unknown dtype {dtype!r}")


def from_bits(bits: np.ndarray, dtype: str) -> np.ndarray:
    """Element bits -> numbers: float32 for float types, int8/int32 for integer types."""
    b = np.ascontiguousarray(bits)
    if dtype == "f32":
        return b.astype(np.uint32).view(np.float32)
    if dtype == "f16":
        return f16_bits_to_f32(b.astype(np.uint16))
    if dtype == "bf16":
        return bf16_bits_to_f32(b.astype(np.uint16))
    if dtype == "i8":
        return b.astype(np.uint8).view(np.int8)
    if dtype == "i32":
        return b.astype(np.uint32).view(np.int32)
    raise ValueError(f"unknown dtype {dtype!r}")


def nbytes(dtype: str) -> int:
    return DTYPES[dtype][1]
