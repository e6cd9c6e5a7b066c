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
