"""The MXM worker's shared transposed copies of weights (lpu._engine._lw_rows): an aligned group
of rows the program never writes is transposed once and found again by later lws, in this run
and the next ones. The copies go whenever a word they came from may change (a load, a program
that writes it), a row loaded alone into a shared group takes the group back first, and no
result ever depends on them."""

import numpy as np
import pytest
from lpu_programs import install_and_read_out

from lpu import _engine as E
from lpu.kernels.builder import Builder
from lpu.kernels.gemv import build_gemv
from lpu.machine import Machine


def _copies(m: Machine) -> int:
    return int(m._ws[E.WS_TC + 3][0])


def _gemv(dt: str, seed: int):
    """400 x 700 on tsp-v1: 2 x 3 blocks, their rows loaded in aligned groups of 8 (mini's lws
    carry 4 int8 rows or 2 fp16 rows: lane by lane, never copied)."""
    rng = np.random.default_rng(seed)
    W = rng.integers(-100, 100, (400, 700)) if dt == "i8" else rng.standard_normal((400, 700))
    return build_gemv(400, 700, dt, weights=W.astype(np.float32),
                      x=rng.standard_normal(700).astype(np.float32))


def _fresh_y(program, W: np.ndarray | None = None) -> np.ndarray:
    m = Machine(program)
    if W is not None:
        m.load("W", W)
    m.run()
    return m.dump("y")


def _reference(program, W: np.ndarray) -> np.ndarray:
    x = Machine(program).dump("x")
    return W.astype(np.float64) @ x.astype(np.float64)


def _bits(y: np.ndarray) -> np.ndarray:
    return y.view(np.uint32)


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("dt", ["i8", "f16"])
def test_copies_are_made_once_and_the_next_run_uses_them(dt, threads, monkeypatch):
    monkeypatch.setenv("LPU_THREADS", threads)
    g = _gemv(dt, 1)
    m = Machine(g.program)
    m.run()
    y1 = m.dump("y").copy()
    n = _copies(m)
    # 3 K blocks of 320 + 80 rows, every row in an aligned group of 8 by reference
    assert n == 3 * (320 + 80) // 8
    m.run()
    assert _copies(m) == n  # found, not made again
    n_own = m._ws[E.WS_TC + 3][3]
    assert (m._ws[E.WS_GI] >= n_own).any()  # and the buffers' groups are those copies
    np.testing.assert_array_equal(_bits(m.dump("y")), _bits(y1))
    y = m.dump("y")
    err = np.abs(y - _reference(g.program, m.dump("W"))).max()
    assert err <= 1e-5 * np.abs(y).max()


@pytest.mark.parametrize("dt", ["i8", "f16"])
def test_new_weights_loaded_between_runs_drop_the_copies(dt):
    g, g2 = _gemv(dt, 1), _gemv(dt, 2)
    m = Machine(g.program)
    m.run()
    y1 = m.dump("y").copy()
    W2 = Machine(g2.program).dump("W")
    m.load("W", W2)
    assert _copies(m) == 0
    m.run()
    want = _fresh_y(g.program, W2)
    np.testing.assert_array_equal(_bits(m.dump("y")), _bits(want))
    assert not np.array_equal(_bits(want), _bits(y1))


def test_a_program_that_writes_a_copied_word_drops_the_copies():
    g = _gemv("f16", 3)
    m = Machine(g.program)
    m.run()
    y1 = m.dump("y").copy()
    chip = m.chip
    mem = {q.index: q for q in chip.queues if q.unit == "mem"}
    by_stage = {q.stage: q for q in mem.values()}
    # a copied weight word whose slice has a neighbour one stage east: that one reads a word
    # onto a westward stream, and the weight's slice writes it over the weight 2 cycles later
    for word in np.flatnonzero(m._ws[E.WS_TC + 2]):
        addr, sl = divmod(int(word), chip.mem_slices)
        src = by_stage.get(mem[sl].stage + 1)
        if src is not None:
            break
    b = Builder(chip.name)
    b.data("new", "i8", (chip.lanes,), [(src.name, chip.mem_words - 1, 1)],
           np.full(chip.lanes, 77))
    b.at(src.name, 0, "read", addr=chip.mem_words - 1, z="w4")
    b.at(mem[sl].name, 2, "write", addr=addr, a="w4")
    m.swap_program(b.build())
    m.run()
    assert _copies(m) == 0
    m.swap_program(g.program)  # its W is in place already: not copied in again
    m.run()
    want = _fresh_y(g.program, m.dump("W"))
    np.testing.assert_array_equal(_bits(m.dump("y")), _bits(want))
    assert not np.array_equal(_bits(want), _bits(y1))


def _group_twice() -> Builder:
    """mini, west plane: int8 rows 0..7 (row r = r + lane) loaded twice as one aligned group by
    reference; the first time row 3 comes again alone (all 5s) into the same staging buffer
    before the iw. Each time y = W @ ones is read out, to mem.e0..e3 at address 0, then 1."""
    b = Builder("mini")
    slices = [f"mem.w{7 - j}" for j in range(8)]  # stages 2..9
    b.data("w", "i8", (8, 16), [(q, 0, 1) for q in slices], _W8)
    b.data("r3", "i8", (16,), [("mem.w7", 1, 1)], np.full(16, 5))
    b.data("x", "f16", (16,), [("mem.w5", 2, 1), ("mem.w4", 2, 1)], np.ones(16))
    for k in range(2):
        b.data(f"y{k}", "f32", (16,), [(f"mem.e{j}", k, 1) for j in range(4)])
        lw_t = 12 + 60 * k
        for j, q in enumerate(slices):  # stage 2 + j: at the plane (stage 0) at read + 3 + j
            b.at(q, lw_t - 3 - j, "read", addr=0, z=f"w{j}")
        b.at("mxm0.w", lw_t, "lw", dt="i8", a="w0", n=8, row=0)
        t = lw_t + 1
        if k == 0:
            b.at("mem.w7", t - 3, "read", addr=1, z="w0")
            b.at("mxm0.w", t, "lw", dt="i8", a="w0", n=1, row=3)
            t += 1
        install_and_read_out(b, t, 2, k)
    return b


_W8 = np.arange(8)[:, None] + np.arange(16)[None, :]


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_row_loaded_alone_into_a_shared_group_leaves_the_copy_alone(threads, monkeypatch):
    monkeypatch.setenv("LPU_THREADS", threads)
    m = Machine(_group_twice().build())
    want = np.zeros(16, np.float32)
    want[:8] = _W8.sum(axis=1)
    for _ in range(2):
        m.run()
        assert _copies(m) == 1  # one group, copied once, found by the second lw and run
        first = want.copy()
        first[3] = 5 * 16  # row 3 as loaded alone, in the buffer only
        np.testing.assert_array_equal(m.dump("y0"), first)
        np.testing.assert_array_equal(m.dump("y1"), want)
