"""lw takes a weight row from wherever its stream entry keeps it: an SRAM word by reference
(the usual case), or the entry's own bytes once the word was overwritten while the row was on
its way (the plane must get the value that was read, not the new one). With the MXM worker
thread (LPU_THREADS=2) a row whose word the program writes at all is copied when the lw issues,
since the worker transposes it later."""

import numpy as np
import pytest
from lpu_programs import install_and_read_out

from lpu.kernels.builder import Builder
from lpu.machine import Machine


def _one_row(dt: str, overwrite: bool, late: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """mini, west plane: W row 0 = 0..15, x = 1, y = W @ x read out to mem.e0..e3. With
    overwrite, the row's SRAM word is written over after the read and before the lw (or `late`
    cycles after the lw)."""
    b = Builder("mini")
    g = 1 if dt == "i8" else 2
    rows = [("mem.w7", 0, 1), ("mem.w6", 0, 1)][:g]  # stages 2, 3
    b.data("w", dt, (16,), rows, np.arange(16))
    # the new words sit one slice further east (stage 3 + j) and come west on w4, w5
    srcs = ["mem.w6", "mem.w5"][:g]
    b.data("new", dt, (16,), [(q, 1, 1) for q in srcs], np.full(16, 7))
    b.data("x", "f16", (16,), [("mem.w5", 0, 1), ("mem.w4", 0, 1)], np.ones(16))  # stages 4, 5
    b.data("y", "f32", (16,), [(f"mem.e{j}", 0, 1) for j in range(4)])
    lw_t = 8
    for j, (q, _, _) in enumerate(rows):  # stage 2 + j: at the plane at read + 1 + 2 + j
        b.at(q, lw_t - 3 - j, "read", addr=0, z=f"w{j}")
        if overwrite:  # lands at lw_t - j + late: after the row's read
            b.at(srcs[j], lw_t - 3 - j + late, "read", addr=1, z=f"w{4 + j}")
            b.at(q, lw_t - 1 - j + late, "write", addr=0, a=f"w{4 + j}")
    b.at("mxm0.w", lw_t, "lw", dt=dt, a="w0", n=1, row=0)
    install_and_read_out(b, lw_t + 1, 0, 0)
    m = Machine(b.build())
    m.run()
    return m.dump("y"), m.dump("w")


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("dt", ["i8", "f16"])
def test_a_row_overwritten_in_sram_after_its_read_is_loaded_as_read(dt, threads, monkeypatch):
    monkeypatch.setenv("LPU_THREADS", threads)
    y, w = _one_row(dt, overwrite=False)
    assert y[0] == 120 and not y[1:].any()  # 0 + 1 + ... + 15; rows never loaded are zero
    np.testing.assert_array_equal(w, np.arange(16))
    y2, w2 = _one_row(dt, overwrite=True)
    np.testing.assert_array_equal(w2, np.full(16, 7))  # the word did change
    np.testing.assert_array_equal(y2.view(np.uint32), y.view(np.uint32))


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("dt", ["i8", "f16"])
def test_a_row_overwritten_after_its_lw_is_loaded_as_it_was(dt, threads, monkeypatch):
    # the word changes 6 cycles after the lw: the plane keeps the bytes the lw took, even when a
    # worker thread transposes them later
    monkeypatch.setenv("LPU_THREADS", threads)
    y, _ = _one_row(dt, overwrite=False)
    y2, w2 = _one_row(dt, overwrite=True, late=6)
    np.testing.assert_array_equal(w2, np.full(16, 7))
    np.testing.assert_array_equal(y2.view(np.uint32), y.view(np.uint32))
