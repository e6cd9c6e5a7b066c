"""validate() finds what is wrong with a Program on a chip, one Problem per fault."""

import numpy as np

from lpu.isa.chips import CHIPS
from lpu.isa.encoding import encode, stream_field
from lpu.isa.program import Program, Segment
from lpu.isa.table import DTYPES
from lpu.isa.validate import Problem, validate

MINI = CHIPS["mini"]
TSP = CHIPS["tsp-v1"]
E, W = 0, 1


def prog(queue: str, *words: int, chip: str = "mini", **kw) -> Program:
    return Program(chip=chip, queues={queue: np.array(words, np.uint64)}, **kw)


def add(dt: str, a: int, b: int, z: int) -> int:
    return encode("add", {"dt": DTYPES[dt][0], "a": a, "b": b, "z": z})


def messages(p: Program, chip=MINI) -> list[str]:
    return [pr.message for pr in validate(p, chip)]


def test_a_clean_program_has_no_problems():
    p = prog("vxm.0", add("f32", stream_field(E, 0), stream_field(W, 0), stream_field(E, 4)))
    assert validate(p, MINI) == []


def test_a_vxm_instruction_in_a_mem_queue_is_a_problem():
    p = prog("mem.e0", add("i8", 0, 32, 1))
    (pr,) = validate(p, MINI)
    assert isinstance(pr, Problem) and pr.queue == "mem.e0" and pr.index == 0
    assert "instruction of the VXM" in pr.message


def test_icu_instructions_are_legal_in_every_queue():
    for q in MINI.queues:
        assert validate(prog(q.name, encode("nop", {"n": 3})), MINI) == []


def test_an_f32_group_running_past_the_last_stream_is_a_problem():
    p = prog("vxm.0", add("f32", stream_field(E, 6), stream_field(W, 0), stream_field(E, 0)))
    assert any("runs past e7" in m for m in messages(p))


def test_a_stream_the_chip_does_not_have_is_a_problem():
    p = prog("mem.e0", encode("read", {"addr": 0, "z": stream_field(E, 9), "step": 0}))
    assert any("does not exist on mini" in m for m in messages(p))


def test_compare_ops_write_an_i32_group_of_four():
    w = encode("cmplt", {"dt": DTYPES["i8"][0], "a": 0, "b": 32, "z": stream_field(E, 5)})
    assert any("group of 4" in m for m in messages(prog("vxm.0", w)))


def test_mxm_roles_are_enforced():
    lw = encode("lw", {"dt": DTYPES["i8"][0], "a": 32, "n": 1, "row": 0})
    assert any("mxmN.w" in m for m in messages(prog("mxm0.a", lw)))
    assert validate(prog("mxm0.w", lw), MINI) == []


def test_lw_rows_must_fit_the_plane_and_the_streams():
    lw = encode("lw", {"dt": DTYPES["f16"][0], "a": 32, "n": 8, "row": 12})
    msgs = messages(prog("mxm0.w", lw))
    assert any("run past the 16 rows" in m for m in msgs)
    assert any("16 streams" in m or "runs past" in m for m in msgs)


def test_transpose_is_illegal_on_mini_and_says_why():
    t = encode("transpose", {"a": 0, "z": 32})
    (msg,) = messages(prog("sxm.w0", t))
    assert "16 streams" in msg and "mini has 8" in msg
    assert validate(prog("sxm.w0", t, chip="tsp-v1"), TSP) == []


def test_c2c_instructions_are_rejected_on_one_chip():
    assert any("chip-to-chip" in m for m in messages(prog("mem.e0", encode("send", {"link": 0}))))


def test_a_repeated_read_must_stay_inside_the_slice():
    rd = encode("read", {"addr": 4090, "z": 0, "step": 1})
    rep = encode("repeat", {"n": 10, "d": 1})
    assert any("reaches address 4100" in m for m in messages(prog("mem.e0", rd, rep)))
    assert validate(prog("mem.e0", rd, encode("repeat", {"n": 5, "d": 1})), MINI) == []


def test_repeat_must_follow_something_repeatable():
    msgs = messages(prog("mem.e0", encode("nop", {"n": 1}), encode("repeat", {"n": 1, "d": 1})))
    assert any("not nop" in m for m in msgs)


def test_reductions_need_a_segment_within_the_lanes_and_no_i8():
    # a segment need not divide the lanes (the last one is shorter), but must fit in them
    r = encode("rsum", {"dt": DTYPES["i8"][0], "a": 0, "z": 32, "seg": 5})
    msgs = messages(prog("sxm.e0", r))
    assert any("i8" in m for m in msgs) and not any("segment" in m for m in msgs)
    r = encode("rsum", {"dt": DTYPES["f32"][0], "a": 0, "z": 32, "seg": 0})
    assert any("segment of 0 lanes" in m for m in messages(prog("sxm.e0", r)))


def test_shifts_are_integer_only_and_exp_is_float_only():
    shl = encode("shl", {"dt": DTYPES["f32"][0], "a": 0, "b": 32, "z": 4})
    exp = encode("exp", {"dt": DTYPES["i32"][0], "a": 0, "z": 4})
    assert any("integers only" in m for m in messages(prog("vxm.0", shl)))
    assert any("floats only" in m for m in messages(prog("vxm.0", exp)))


def test_a_word_that_does_not_decode_is_a_problem():
    assert any("does not decode" in m for m in messages(prog("vxm.0", 0xEE << 56)))


def test_distribute_maps_must_stay_in_the_superlane():
    maps = [np.array([16] + list(range(1, 320)), np.int16)]
    d = encode("distribute", {"sg": 1, "a": 0, "z": 32, "map": 0})
    p = prog("sxm.w0", d, chip="tsp-v1", maps=maps)
    assert any("outside its superlane" in m for m in messages(p, TSP))
    p2 = prog("sxm.w0", encode("permute", {"sg": 1, "a": 0, "z": 32, "map": 0}), chip="tsp-v1",
              maps=maps)
    assert validate(p2, TSP) == []


def test_overlapping_segments_are_a_problem():
    s1 = Segment("a", "i8", (16,), np.array([[4, 0, 1]], np.int32))
    s2 = Segment("b", "i32", (16,), np.array([[4, 0, 4]], np.int32))
    s3 = Segment("c", "i8", (16,), np.array([[4, 2, 1]], np.int32))
    p = Program(chip="mini", segments=[s2, s1, s3])
    msgs = messages(p)
    assert any("overlap" in m and "'a'" in m for m in msgs)
    assert any("overlap" in m and "'c'" in m for m in msgs)


def test_a_segment_with_the_wrong_word_count_is_a_problem():
    s = Segment("a", "f32", (16,), np.array([[4, 0, 3]], np.int32))
    assert any("needs 4" in m for m in messages(Program(chip="mini", segments=[s])))


def test_a_segment_nested_inside_another_is_an_overlap():
    big = Segment("big", "i8", (16, 16), np.array([[4, 0, 16]], np.int32))
    s1 = Segment("s1", "i8", (16,), np.array([[4, 2, 1]], np.int32))
    s2 = Segment("s2", "i8", (16,), np.array([[4, 5, 1]], np.int32))
    msgs = messages(Program(chip="mini", segments=[big, s1, s2]))
    assert sum("overlap" in m for m in msgs) == 2


def test_check_raises_one_error_naming_the_source_line_of_the_first_problem():
    import pytest

    from lpu.isa.validate import ProgramError, check

    p = prog("mem.e0", encode("nop", {"n": 1}), add("i8", 0, 32, 1), add("i8", 0, 32, 1))
    p.source = "k.s"
    p.srcmap["mem.e0"] = np.array([[3, 1], [4, 5], [5, 5]], np.int32)
    with pytest.raises(ProgramError) as e:
        check(p, MINI)
    assert str(e.value).startswith("k.s:4:5: mem.e0[1]: add is an instruction of the VXM")
    assert "(and 1 more problem)" in str(e.value) and len(e.value.problems) == 2
    check(prog("vxm.0", add("i8", 0, 32, 1)), MINI)  # clean: returns quietly
