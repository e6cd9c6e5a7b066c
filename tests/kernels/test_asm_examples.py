"""The hand-written examples in kernels/examples/*.s run on the emulator and compute the right
thing in exactly the cycles their comments derive."""

from pathlib import Path

import numpy as np

from lpu.assembler import assemble_file
from lpu.machine import Machine

EXAMPLES = Path(__file__).resolve().parents[2] / "kernels" / "examples"


def _run(name):
    prog = assemble_file(EXAMPLES / name)
    m = Machine(prog)
    return m, m.run()


def test_vadd_adds_in_14_cycles():
    # last z plane written by mem.e3 at cycle 12, lands at 13; + 1, skew 0 on mini = 14
    m, r = _run("vadd.s")
    assert r.cycles == 14
    np.testing.assert_array_equal(m.dump("z"), m.dump("x") + m.dump("y"))


def test_dot_reduces_in_35_cycles():
    # rsum issues at 17 (9 hops east of the VXM), sums at stage 19 at 25, the last plane
    # lands at 34; + 1 = 35
    m, r = _run("dot.s")
    assert r.cycles == 35
    x, y = m.dump("x").astype(np.float64), m.dump("y").astype(np.float64)
    np.testing.assert_allclose(m.dump("s"), np.full(16, np.sum(x * y)), rtol=1e-6)


def test_matvec16_multiplies_int8_exactly_in_45_cycles():
    # acc at 36, y planes pass mem.w3..w0 at 40..43 and land by 44; + 1 = 45
    m, r = _run("matvec16.s")
    assert r.cycles == 45
    W = m.dump("W").astype(np.int64)
    x = m.dump("x").astype(np.int64)
    np.testing.assert_array_equal(m.dump("y"), W @ x)
