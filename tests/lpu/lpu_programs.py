"""Shared builders for the emulator tests: tiny hand-timed programs on the `mini` chip.

On mini (one superlane, one stage per slice): mem.w7..w0 sit at stages 2..9, the VXM at 10,
mem.e0..e7 at 11..18, the SXM queues at 1 and 19, the MXM planes at 0 and 20.
"""

import numpy as np

from lpu.kernels.builder import Builder


def vadd_program(add_cycle: int = 5, write_cycle: int = 9, x=None, y=None, chip: str = "mini"):
    """z = x + y (f32, 16 lanes), as in kernels/examples/vadd.s.

    x plane j is read from mem.w(3-j) at cycle j (stage 6+j) and passes the VXM at cycle 5;
    y plane j from mem.e(3-j) at cycle j (stage 14-j) passes it at cycle 5 too. The add writes
    e4..e7 at cycle 8; z plane j reaches mem.e(j) (stage 11+j) at cycle 9+j.
    """
    b = Builder(chip)
    x = np.arange(16, dtype=np.float32) if x is None else x
    y = np.full(16, 0.5, np.float32) if y is None else y
    b.data("x", "f32", (16,), [(f"mem.w{3 - j}", 0, 1) for j in range(4)], x)
    b.data("y", "f32", (16,), [(f"mem.e{3 - j}", 0, 1) for j in range(4)], y)
    b.data("z", "f32", (16,), [(f"mem.e{j}", 2048, 1) for j in range(4)])
    for j in range(4):
        b.at(f"mem.w{3 - j}", j, "read", addr=0, z=f"e{j}")
        b.at(f"mem.e{3 - j}", j, "read", addr=0, z=f"w{j}")
        b.at(f"mem.e{j}", write_cycle + j, "write", addr=2048, a=f"e{4 + j}")
    b.at("vxm.0", add_cycle, "add", dt="f32", a="e0", b="w0", z="e4")
    return b


def install_and_read_out(b: Builder, iw_t: int, x_addr: int, y_addr: int) -> None:
    """The west plane's staged weights installed at iw_t, then y = W @ x: x (f16) read from
    mem.w5/mem.w4 at x_addr (stages 4 and 5) onto w2, w3 at the plane 4 cycles later, and
    the accumulator read out 16 cycles after the mv onto e4..e7, written to mem.e0..e3
    (stages 11..14) at y_addr."""
    b.at("mxm0.w", iw_t, "iw")
    mv_t = iw_t + 3
    b.at("mem.w5", mv_t - 5, "read", addr=x_addr, z="w2")  # stage 4: 4 hops + 1
    b.at("mem.w4", mv_t - 6, "read", addr=x_addr, z="w3")  # stage 5
    b.at("mxm0.a", mv_t, "mv", dt="f16", a="w2", acc=0, add=0)
    acc_t = mv_t + 16
    b.at("mxm0.r", acc_t, "acc", acc=0, z="e4")  # on e4..e7 at stage 0 at acc_t + 2
    for j in range(4):  # mem.e{j} sits at stage 11 + j
        b.at(f"mem.e{j}", acc_t + 2 + 11 + j, "write", addr=y_addr, a=f"e{4 + j}")
