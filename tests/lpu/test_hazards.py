"""Every timing rule the hardware would silently break is an error here, reported exactly where
it happens: kind, cycle, queue and instruction (exit code 3 on the command line)."""

import numpy as np
import pytest
from lpu_programs import vadd_program

from lpu.errors import EXIT_HAZARD, HazardError, LpuError
from lpu.kernels.builder import Builder
from lpu.kernels.sched import Scheduler
from lpu.machine import Machine


def hazard(builder_or_program) -> HazardError:
    prog = builder_or_program.build() if hasattr(builder_or_program, "build") else \
        builder_or_program
    with pytest.raises(HazardError) as e:
        Machine(prog).run()
    assert e.value.exit_code == EXIT_HAZARD
    return e.value


def test_the_vector_add_runs_clean_in_14_cycles():
    # last write issues at 12 (mem.e3), lands at 13; + 1; no skew on mini
    m = Machine(vadd_program().build())
    r = m.run()
    assert r.cycles == 14
    np.testing.assert_array_equal(m.dump("z"), np.arange(16) + 0.5)


@pytest.mark.parametrize("cycle", [4, 6])
def test_reading_a_stream_one_cycle_early_or_late_is_empty_stream(cycle):
    e = hazard(vadd_program(add_cycle=cycle))
    assert (e.kind, e.cycle, e.queue) == ("empty-stream", cycle, "vxm.0")
    assert e.instruction.startswith("add.f32")


def test_a_write_waiting_for_a_value_that_already_passed_is_empty_stream():
    e = hazard(vadd_program(write_cycle=10))
    assert (e.kind, e.cycle, e.queue) == ("empty-stream", 10, "mem.e0")


def test_two_producers_on_one_stream_stage_and_cycle_collide():
    b = vadd_program()
    # vxm.1 writes the same group e4..e7 at stage 10 at cycle 8 as the add on vxm.0
    b.at("vxm.1", 5, "sub", dt="f32", a="e0", b="w0", z="e4")
    e = hazard(b)
    assert e.kind == "stream-collision" and e.cycle == 8 and e.queue in ("vxm.0", "vxm.1")


def test_a_read_and_a_write_in_one_bank_in_one_cycle_conflict():
    b = vadd_program()
    # mem.e0 writes z at cycle 9 (lands at 10, bank 1); a read of bank 1 at cycle 10 conflicts
    b.at("mem.e0", 10, "read", addr=2049, z="w7")
    e = hazard(b)
    assert (e.kind, e.cycle, e.queue) == ("bank-conflict", 10, "mem.e0")


def _mxm(lw_cycle=3, iw_cycle=4, mv_cycle=5, acc_cycle=None, act="i8"):
    """One int8 row on mini's west plane: W row 0 arrives at stage 0 at cycle lw_cycle (the
    slices next to the plane, mem.w7..w5, sit at stages 2..4)."""
    b = Builder("mini")
    b.data("w", "i8", (16,), [("mem.w7", 0, 1)], np.arange(16))
    b.data("x", "i8", (16,), [("mem.w6", 0, 1)], np.ones(16))
    b.at("mem.w7", lw_cycle - 3, "read", addr=0, z="w0")  # stage 2 -> stage 0: 2 hops + 1
    b.at("mxm0.w", lw_cycle, "lw", dt="i8", a="w0", n=1, row=0)
    if iw_cycle is not None:
        b.at("mxm0.w", iw_cycle, "iw")
    b.at("mem.w6", mv_cycle - 4, "read", addr=0, z="w1")  # stage 3 -> 0: 3 hops + 1
    b.at("mxm0.a", mv_cycle, "mv", dt=act, a="w1", acc=0, add=0)
    if acc_cycle is not None:
        b.at("mxm0.r", acc_cycle, "acc", acc=0, z="e0")
    return b


def test_mv_in_the_cycle_its_plane_installs_is_busy():
    e = hazard(_mxm(iw_cycle=5, mv_cycle=5))
    assert (e.kind, e.cycle, e.queue) == ("busy", 5, "mxm0.a")


def test_mv_before_any_install_has_no_weights():
    e = hazard(_mxm(iw_cycle=None))
    assert (e.kind, e.cycle) == ("no-weights", 5)


def test_reading_the_accumulator_before_the_product_finishes():
    # mv at 5, latency 16 on mini (no skew): ready at 21
    e = hazard(_mxm(acc_cycle=20))
    assert (e.kind, e.cycle, e.queue) == ("acc-not-ready", 20, "mxm0.r")


def test_int8_activations_against_fp16_weights_are_a_type_mismatch():
    b = Builder("mini")
    b.data("w", "f16", (16,), [("mem.w7", 0, 1), ("mem.w6", 0, 1)], np.ones(16))
    b.data("x", "i8", (16,), [("mem.w5", 0, 1)], np.ones(16))
    # a read at t from stage p is on the stream at t + 1 and reaches stage 0 at t + 1 + p
    b.at("mem.w7", 1, "read", addr=0, z="w0")  # plane 0, stage 2: at the plane at cycle 4
    b.at("mem.w6", 0, "read", addr=0, z="w1")  # plane 1, stage 3: at the plane at cycle 4
    b.at("mxm0.w", 4, "lw", dt="f16", a="w0", n=1, row=0)
    b.at("mxm0.w", 5, "iw")
    b.at("mem.w5", 2, "read", addr=0, z="w2")  # x, stage 4: at the plane at cycle 7
    b.at("mxm0.a", 7, "mv", dt="i8", a="w2", acc=0, add=0)
    e = hazard(b)
    assert (e.kind, e.cycle) == ("type-mismatch", 7)


def test_a_repeat_that_steps_past_the_end_of_a_slice_is_caught_before_running():
    b = Builder("mini")
    b.at("mem.w0", 0, "read", addr=4090, z="e0", step=1, repeat=(10, 1))
    e = hazard(b)
    assert (e.kind, e.cycle, e.queue) == ("address-out-of-range", 6, "mem.w0")


def test_a_gather_index_outside_the_slice_is_caught_when_it_happens():
    s = Scheduler("tsp-v1")
    (idx,) = s.place("idx", "i32", np.full(320, 99999, np.int32), 320)
    # a gather in the slice that holds idx's plane 0, index taken from idx's own stream
    q = idx.slices[0]
    stage = s.chip.queue(q).stage
    t = 10
    for j, sq in enumerate(idx.slices):  # all 4 planes pass `stage` at cycle t (same stage)
        s.b.at(sq, t - 1, "read", addr=idx.addr, z=f"e{j}")
    s.b.at(q, t, "gather", base=0, z="e8", i="e0", stride=1)
    assert all(s.chip.queue(sq).stage == stage for sq in idx.slices)
    e = hazard(s.build())
    assert (e.kind, e.cycle, e.queue) == ("address-out-of-range", t, q)


def test_a_stream_that_does_not_exist_is_rejected_before_running():
    b = Builder("mini")
    b.at("vxm.0", 0, "mov", dt="f32", a="e6", z="e0")  # e6..e9: mini has e0..e7
    with pytest.raises(LpuError) as e:
        Machine(b.build()).run()
    assert "e6" in str(e.value)
