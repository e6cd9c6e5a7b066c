"""GEMVs and scheduled vector work: right numbers, predicted cycles, shared resources.

Every program here is checked three ways: the emulator runs it without a hazard, its measured
cycles equal the scheduler's prediction, and its outputs match numpy.
"""

import numpy as np
import pytest

from lpu.isa.table import BY_MNEMONIC, OPCODE_SHIFT
from lpu.kernels.gemv import WeightAlloc, build_gemv, gemv, place_weights
from lpu.kernels.sched import Scheduler
from lpu.machine import Machine


def _ref(W, x):
    return W.astype(np.float16).astype(np.float64) @ x.astype(np.float16).astype(np.float64)


@pytest.mark.parametrize("M,K,wdt", [(320, 320, "f16"), (1000, 700, "i8"), (768, 768, "f16"),
                                     (17, 33, "f16")])
def test_gemv_matches_numpy_for_any_shape(M, K, wdt):
    rng = np.random.default_rng(M + K)
    W = rng.standard_normal((M, K)).astype(np.float32)
    if wdt == "i8":
        W = np.clip(np.rint(W * 40), -127, 127)
    x = rng.standard_normal(K).astype(np.float32)
    g = build_gemv(M, K, wdt, weights=W, x=x)
    m = Machine(g.program)
    r = m.run()
    assert r.cycles == g.predicted_cycles
    ref = _ref(W, x)
    # fp32 sums in lane order vs float64: relative error ~1e-7 of the largest output
    assert np.max(np.abs(m.dump("y") - ref)) < 1e-5 * np.max(np.abs(ref))


@pytest.mark.parametrize("chip,M,K", [("tsp-v1", 12 * 320 + 17, 768), ("mini", 16 * 13, 40)])
def test_packed_k_tails_give_the_same_bits_with_fewer_blocks(chip, M, K):
    # two output blocks share one loaded block for their K tails (K = 768: 128 of 320 lanes);
    # each product is the unpacked one plus zero terms, so y is the same to the bit
    rng = np.random.default_rng(K)
    W = np.clip(np.rint(rng.standard_normal((M, K)) * 40), -127, 127)
    x = rng.standard_normal(K).astype(np.float32)
    x[:4] = [-0.0, 65504, 6e-8, -6e-8]  # a signed zero, the largest f16, subnormals
    ys, blocks = {}, {}
    for pack in (False, True):
        g = build_gemv(M, K, "i8", chip, weights=W, x=x, pack=pack)
        m = Machine(g.program)
        assert m.run().cycles == g.predicted_cycles
        ys[pack], blocks[pack], plan = m.dump("y"), g.blocks, g.notes["plan"]
    mb, kb = -(-M // plan.lanes), -(-K // plan.lanes)
    assert blocks[False] == mb * kb
    assert blocks[True] == mb * kb - (mb - 4) // 2  # the first 4 unpaired, then pairs
    assert plan.layout is not None and plan.shape == (len(plan.layout), plan.lanes)
    np.testing.assert_array_equal(ys[True].view(np.uint32), ys[False].view(np.uint32))
    ref = _ref(W, x)
    assert np.max(np.abs(ys[True] - ref)) < 1e-5 * np.max(np.abs(ref))


@pytest.mark.parametrize("wdt", ["f16", "i8"])
def test_an_idle_plane_takes_the_last_k_block_with_the_same_bits(wdt):
    # 3 output blocks over 4 planes: the hemisphere with one block gives its last K block to
    # its idle plane; (first K blocks) + (last) is the order one accumulator adds them in
    rng = np.random.default_rng(5)
    M, K = 3 * 320 - 50, 3 * 320
    W = rng.standard_normal((M, K)).astype(np.float32)
    if wdt == "i8":
        W = np.clip(np.rint(W * 40), -127, 127)
    x = rng.standard_normal(K).astype(np.float32)
    ys = {}
    for split in (False, True):
        g = build_gemv(M, K, wdt, weights=W, x=x, split=split)
        m = Machine(g.program)
        assert m.run().cycles == g.predicted_cycles
        ys[split] = m.dump("y")
        acc = BY_MNEMONIC["acc"].opcode
        n_acc = sum(int((np.asarray(w, np.uint64) >> np.uint64(OPCODE_SHIFT) == acc).sum())
                    for q, w in g.program.queues.items() if q.endswith(".r"))
        assert n_acc == (4 if split else 3)  # a read-out per part
    np.testing.assert_array_equal(ys[True].view(np.uint32), ys[False].view(np.uint32))


def test_two_gemvs_share_the_planes_and_both_are_right():
    # y1 = A x, y2 = B y1(fp16): the second waits for the first, planes and slots are reused
    rng = np.random.default_rng(7)
    A = rng.standard_normal((500, 320)).astype(np.float32)
    B = rng.standard_normal((320, 500)).astype(np.float32) / 20
    x = rng.standard_normal(320).astype(np.float32)
    s = Scheduler("tsp-v1")
    walloc = WeightAlloc(s.chip)
    xs = s.place("x", "f16", x, 320)
    y1, p1 = gemv(s, walloc, 500, 320, "f16", xs)
    y1h = [s.op("cvt", [v], "f16", **{"from": "f32", "to": "f16"}) for v in y1]
    y2, p2 = gemv(s, walloc, 320, 500, "f16", y1h)
    place_weights(s, "A", p1, A)
    place_weights(s, "B", p2, B)
    s.output("y1", y1, 500)
    s.output("y2", y2, 320)
    m = Machine(s.build())
    r = m.run()
    assert r.cycles == s.predicted_cycles()
    r1 = _ref(A, x)
    np.testing.assert_allclose(m.dump("y1"), r1, rtol=0, atol=1e-5 * np.abs(r1).max())
    r2 = _ref(B, r1.astype(np.float32))
    np.testing.assert_allclose(m.dump("y2"), r2, rtol=0, atol=1e-3 * np.abs(r2).max())


def test_padding_lanes_of_a_partial_gemv_block_are_zero():
    # 100 rows: lanes 100..319 of the single output vector come from stale staging rows
    # unless masked; the mask must zero them exactly.
    rng = np.random.default_rng(3)
    s = Scheduler("tsp-v1")
    walloc = WeightAlloc(s.chip)
    W = rng.standard_normal((100, 320)).astype(np.float32)
    xs = s.place("x", "f16", rng.standard_normal(320), 320)
    ys, plan = gemv(s, walloc, 100, 320, "f16", xs)
    place_weights(s, "W", plan, W)
    s.output("y", ys, 320)  # the whole vector, padding lanes included
    m = Machine(s.build())
    m.run()
    assert np.all(m.dump("y")[100:] == 0)


def test_scheduled_vector_ops_forward_results_without_breaking_anything():
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal(320).astype(np.float32) for _ in range(2))
    s = Scheduler("tsp-v1")
    (av,) = s.place("a", "f32", a, 320)
    (bv,) = s.place("b", "f32", b, 320)
    c = s.op("mul", [s.op("add", [av, bv], "f32"), av], "f32")  # (a + b) * a
    d = s.op("exp", [s.op("sub", [c, bv], "f32")], "f32")
    s.output("d", [d], 320)
    m = Machine(s.build())
    r = m.run()
    assert r.cycles == s.predicted_cycles()
    ref = np.exp(((a + b) * a) - b)
    np.testing.assert_allclose(m.dump("d"), ref, rtol=1e-6)


@pytest.mark.parametrize("chip", ["tsp-v1", "mini"])
@pytest.mark.parametrize("depth", [1, 2])
def test_a_fed_operation_takes_its_operand_off_the_stream(chip, depth):
    # permute(a) * b (+ d at depth 2) with each result chained into the next operation: right
    # values, the predicted cycles, and 4 MEM writes (an f32 vector's byte planes) fewer per
    # chained result than with each stored and read back
    rng = np.random.default_rng(6)
    out = {}
    for chained in (False, True):
        s = Scheduler(chip)
        L = s.chip.lanes
        a, b, d = (rng.standard_normal(L).astype(np.float32) for _ in range(3))
        perm = rng.permutation(L)
        av, bv, dv = (s.place(n, "f32", x, L)[0] for n, x in (("a", a), ("b", b), ("d", d)))
        extra = {"sg": 4, "map": s.b.lane_map(perm)}
        if chained:
            prod = ("mul", [bv], {}, ("permute", [av], extra))
            c = s.op(*prod[:2], "f32", feed=prod[3]) if depth == 1 else \
                s.op("add", [dv], "f32", feed=prod)
        else:
            c = s.op("mul", [s.op("permute", [av], "f32", **extra), bv], "f32")
            if depth == 2:
                c = s.op("add", [c, dv], "f32")
        s.output("c", [c], L)
        prog = s.build()
        m = Machine(prog)
        assert m.run().cycles == s.predicted_cycles()
        np.testing.assert_array_equal(m.dump("c"), a[perm] * b + (d if depth == 2 else 0))
        write = BY_MNEMONIC["write"].opcode
        out[chained] = sum(int((np.asarray(w, np.uint64) >> np.uint64(OPCODE_SHIFT) == write)
                               .sum()) for w in prog.queues.values())
    assert out[True] == out[False] - 4 * depth


@pytest.mark.parametrize("chip", ["tsp-v1", "mini"])
def test_a_feed_takes_a_fresh_operand_off_its_producers_stream(chip):
    # exp(x - b) with x = a + b just made: the fed sub reads x as it passes the VXM (no MEM
    # read of x at all), and the result is right at the predicted cycle
    rng = np.random.default_rng(8)
    s = Scheduler(chip)
    L = s.chip.lanes
    a, b = (rng.standard_normal(L).astype(np.float32) for _ in range(2))
    (av,) = s.place("a", "f32", a, L)
    (bv,) = s.place("b", "f32", b, L)
    x = s.op("add", [av, bv], "f32")
    e = s.op("exp", [], "f32", dt="f32", feed=("sub", [x, bv], {}))
    s.output("e", [e], L)
    prog = s.build()
    assert (x.slices, x.addr) not in s._last_read  # never read from MEM
    m = Machine(prog)
    assert m.run().cycles == s.predicted_cycles()
    want = np.exp((a + b) - b)
    np.testing.assert_allclose(m.dump("e"), want, rtol=1e-6)


@pytest.mark.parametrize("name", ["tiny", "tiny-gpt2"])
def test_the_critical_path_bounds_every_compiled_step_from_below(name):
    # the LatencyScheduler gives the same dataflow unlimited queues, streams and ports and
    # weights already in the planes, so no compiled step (any position) can beat it; a longer
    # attention makes it longer (not in every single step: tree shapes and placement vary),
    # and the roofline reports it as a term
    from lpu.kernels.compiler import Compiler
    from lpu.kernels.config import PRESETS
    from lpu.kernels.weights import random_weights

    comp = Compiler(random_weights(PRESETS[name], 0), "tsp-v1", "int8", max_context=4)
    crit = [comp.critical_path(pos) for pos in range(4)]
    steps = [comp.compile_step(pos) for pos in range(4)]
    for c, st in zip(crit, steps, strict=True):
        assert 0 < c <= st.predicted_cycles
    assert crit[0] < crit[-1]
    roof = comp.roofline(steps[0])
    assert roof["terms_cycles"]["critical_path"] == crit[0]
    assert roof["bound_cycles"] == max(roof["terms_cycles"].values())
    assert roof["ratio"] >= 1.0


@pytest.mark.parametrize("name", ["tiny", "tiny-gpt2"])
@pytest.mark.parametrize("wdt", ["int8", "fp16"])
def test_the_buffered_path_lies_between_the_critical_path_and_every_compiled_step(name, wdt):
    # the planes' buffers hold what they can and the rest of a GEMV's weights stream after its
    # first input arrives: a longer chain than with every weight installed, and still no longer
    # than any compiled step. On mini (4 buffers of 16 x 16) it binds; on tsp-v1 these models
    # fit in the buffers and the two paths agree.
    from lpu.kernels.compiler import Compiler
    from lpu.kernels.config import PRESETS
    from lpu.kernels.weights import random_weights

    for chip in ("mini", "tsp-v1"):
        comp = Compiler(random_weights(PRESETS[name], 0), chip, wdt, max_context=2)
        for pos in range(2):
            crit, buf = comp.critical_path(pos), comp.buffered_path(pos)
            assert crit <= buf <= comp.compile_step(pos).predicted_cycles
            assert (buf > crit) if chip == "mini" else (buf == crit)
    roof = comp.roofline(comp.compile_step(0))
    assert roof["terms_cycles"]["buffered_path"] == comp.buffered_path(0)


def test_a_big_gemv_waits_for_the_weights_its_planes_cannot_hold():
    # 4096 x 4096 fp16 on tsp-v1: the 4 planes' 8 buffers hold 8 x 320^2 weights, and the other
    # 16,777,216 - 819,200 weights (2 bytes each) take ceil(31,916,032 / (64 streams x 320 B))
    # = 1,559 cycles to stream after the first input arrives; the compiled program (streaming
    # all 16.8 M from cycle 0) still takes longer than that bound
    from lpu.kernels.gemv import WeightAlloc, build_gemv, gemv
    from lpu.kernels.sched import LatencyScheduler

    ends = {}
    for buffered in (False, True):
        s = LatencyScheduler("tsp-v1", buffered=buffered)
        xs = s.place("x", "f16", None, 4096)
        ys, _ = gemv(s, WeightAlloc(s.chip), 4096, 4096, "f16", xs)
        ends[buffered] = max(y.ready for y in ys)
    # the 13 input vectors, placed over several slices, reach a plane up to ~20 cycles after
    # the first of them: the wait is 1,559 cycles less that spread (14 here)
    assert 1559 - 20 <= ends[True] - ends[False] <= 1559
    assert build_gemv(4096, 4096, "f16").predicted_cycles > ends[True]
    with pytest.raises(ValueError):
        LatencyScheduler("tsp-v1", late_block="middle")


def test_a_context_too_long_for_the_activation_slices_is_a_clear_error():
    import dataclasses

    from lpu.errors import LpuError
    from lpu.kernels.compiler import Compiler
    from lpu.kernels.config import PRESETS
    from lpu.kernels.weights import random_weights

    cfg = dataclasses.replace(PRESETS["tiny"], max_positions=5000)
    comp = Compiler(random_weights(cfg, 0), "mini", "fp16", max_context=5000)
    with pytest.raises(LpuError) as e:
        comp.compile_step(0)
    assert "KV cache of 5000 positions" in e.value.message and "fewer positions" in e.value.hint


@pytest.mark.parametrize("where", [[5, 37, 200, 301], [250, 300], [319], [0, 319], [130, 131]])
def test_the_on_chip_argmax_takes_the_first_of_tied_maxima(where):
    # the running argmax goes over trees of ARGMAX_RUN vectors; ties anywhere, within a vector,
    # a run, or across runs, must give the first index (as numpy's argmax does)
    from lpu.kernels.compiler import Compiler
    from lpu.kernels.sched import Scheduler
    from lpu.machine import Machine

    s = Scheduler("mini")
    n = 20 * s.chip.lanes  # 20 vectors: two runs of 8 and a shorter one
    rng = np.random.default_rng(len(where))
    x = rng.standard_normal(n).astype(np.float32)
    x[where] = 9.0
    logits = s.place("logits", "f32", x, n)
    idx = s.place("idx", "i32", np.arange(n, dtype=np.int32), n)
    tok = Compiler._argmax(None, s, logits, {"idx": idx})
    s.output("token", [tok], 1)
    m = Machine(s.build())
    r = m.run()
    assert r.cycles == s.predicted_cycles()
    assert int(m.dump("token")[0]) == where[0] == int(np.argmax(x))
