"""The one place for Numba settings: every compiled kernel in the project uses `njit` from here.

cache=True so the second process starts fast; no fastmath, so fp32 sums keep their documented
order and results are bit-reproducible; numpy's error model so 1/0 is inf, as on the hardware.
"""

from __future__ import annotations

import os

from numba import config as numba_config
from numba import njit as _numba_njit

# LPU_JIT_DEBUG=1 turns on bounds checking inside kernels (slow; for debugging the emulator).
BOUNDSCHECK = os.environ.get("LPU_JIT_DEBUG") == "1"
SETTINGS = {"cache": True, "fastmath": False, "boundscheck": BOUNDSCHECK, "error_model": "numpy",
                "nogil": True}


def njit(fn=None, **overrides):
    """numba.njit with the project's settings (usable bare or with keyword overrides)."""
    opts = {**SETTINGS, **overrides}
    if fn is None:
        return lambda f: _numba_njit(**opts)(f)
    return _numba_njit(**opts)(fn)


def _prefetch_row_intrinsic():
    """An intrinsic that asks the CPU to start loading row i of a 2-D C-contiguous uint8 array
    into cache (llvm.prefetch, one per 64-byte line): the kernel calls it when a `read` puts an
    SRAM word on a stream, so the word's bytes are in cache by the time a unit uses them (a
    weight row's `lw` comes hundreds of instructions later). Measured 5% off the 4096^2 GEMV; a
    hint only: results cannot change."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def prefetch_row(typingctx, arr, i):
        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            zero = ir.Constant(ir.IntType(64), 0)
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], zero],
                                           wraparound=False)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            p8 = builder.bitcast(ptr, i8p)
            # 320 bytes: a tsp-v1 vector (a shorter row prefetches some of the next ones; a
            # prefetch never faults); operands: read, locality 3 (all cache levels: measured
            # better than 2), data
            for off in range(0, 320, 64):
                q = builder.gep(p8, [ir.Constant(ir.IntType(64), off)])
                builder.call(fn, [q, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.void(arr, i), codegen

    return prefetch_row


def _prefetch_row_python(arr, i) -> None:
    """With the JIT disabled there is nothing to prefetch."""


if numba_config.DISABLE_JIT:
    prefetch_row = _prefetch_row_python
else:
    prefetch_row = _prefetch_row_intrinsic()


def _high_bit_python(m) -> int:
    return int(m).bit_length() - 1


def _low_bit_python(m) -> int:
    m = int(m)
    return (m & -m).bit_length() - 1


if numba_config.DISABLE_JIT:
    high_bit, low_bit = _high_bit_python, _low_bit_python
else:
    from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

    @_numba_njit(inline="always")
    def high_bit(m):
        """Index of the highest set bit of a non-zero int64 (one lzcnt)."""
        return 63 - leading_zeros(m)

    @_numba_njit(inline="always")
    def low_bit(m):
        """Index of the lowest set bit of a non-zero int64 (one tzcnt)."""
        return trailing_zeros(m)


def _sync_intrinsics():
    """Acquire loads, release stores and a spin-wait hint on int64 array elements: the emulator's
    two threads (lpu._engine: the interpreter and the MXM worker) hand work over through counters,
    and plain loads in a spin loop may be hoisted by the compiler. On x86 these are plain moves
    that the compiler must keep in order."""
    import platform

    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    def ptr_of(context, builder, aryty, ary, i):
        a = context.make_array(aryty)(context, builder, ary)
        return cgutils.get_item_pointer(context, builder, aryty, a, [i], wraparound=False)

    @intrinsic
    def load_acquire(typingctx, arr, i):
        def codegen(context, builder, sig, args):
            return builder.load_atomic(ptr_of(context, builder, sig.args[0], *args), "acquire", 8)

        return types.int64(arr, i), codegen

    @intrinsic
    def store_release(typingctx, arr, i, v):
        def codegen(context, builder, sig, args):
            builder.store_atomic(args[2], ptr_of(context, builder, sig.args[0], args[0], args[1]),
                                 "release", 8)
            return context.get_dummy_value()

        return types.void(arr, i, types.int64), codegen

    x86 = platform.machine().lower() in ("x86_64", "amd64")

    @intrinsic
    def cpu_relax(typingctx):
        def codegen(context, builder, sig, args):
            if x86:  # `pause`: a spinning thread yields its core's resources to the other
                fn = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
                builder.call(fn, [])
            return context.get_dummy_value()

        return types.void(), codegen

    return load_acquire, store_release, cpu_relax


def _load_acquire_python(arr, i) -> int:
    return int(arr[i])


def _store_release_python(arr, i, v) -> None:
    arr[i] = v


def _cpu_relax_python() -> None:
    """With the JIT disabled the emulator runs on one thread: nothing waits."""


if numba_config.DISABLE_JIT:
    load_acquire, store_release, cpu_relax = (_load_acquire_python, _store_release_python,
                                              _cpu_relax_python)
else:
    load_acquire, store_release, cpu_relax = _sync_intrinsics()
