"""Bad sources: every error reported at its exact line and column, all in one pass."""

from asm_helpers import diagnostics

from lpu.assembler import AssemblyError, assemble


def test_an_unknown_instruction_points_at_its_mnemonic():
    assert diagnostics(".chip mini\n.queue vxm.0\n    frob.f32 e0, w0, e4\n") == [
        (3, 5, "unknown instruction 'frob'")]


def test_every_error_in_the_file_is_reported_in_one_pass():
    src = (".chip mini\n"
           ".queue vxm.0\n"
           "    add.f32 e0, w0\n"          # too few operands
           "    add.q7 e0, w0, e4\n"        # unknown type
           "    mul.i32 e0, e9x, e4\n"      # not a stream
           ".queue mem.e9\n")               # no such queue
    got = diagnostics(src)
    assert [(line, col) for line, col, _ in got] == [(3, 19), (4, 5), (5, 17), (6, 8)]
    assert "needs 3 operands" in got[0][2]
    assert "unknown type 'q7'" in got[1][2]
    assert "expected a stream" in got[2][2]
    assert "no queue 'mem.e9'" in got[3][2]


def test_an_operand_out_of_its_field_names_the_range():
    (d,) = diagnostics(".chip mini\n.queue mem.e0\n  read 0, e0, 200\n")
    assert d[:2] == (3, 15) and "-128..127" in d[2]


def test_validation_problems_are_reported_at_the_instruction():
    (d,) = diagnostics(".chip mini\n.queue mem.e0\n\n   add.i8 e0, w0, e1\n")
    assert d[:2] == (4, 4) and "instruction of the VXM" in d[2]


def test_an_issue_time_already_passed_is_an_error_at_the_at_sign():
    (d,) = diagnostics(".chip mini\n.queue vxm.0\n  @5 nop 10\n  @7 mov.i8 e0, e1\n")
    assert d == (4, 3, "queue vxm.0 is already at cycle 15; cannot issue at cycle 7")


def test_labels_that_depend_on_each_other_are_a_cycle():
    src = (".chip mini\n.queue vxm.0\na: @b + 1 nop 1\n.queue vxm.1\nb: @a + 1 nop 1\n")
    got = diagnostics(src)
    assert {(line, col) for line, col, _ in got} == {(3, 4), (5, 4)}
    assert all("depends on itself" in m for _, _, m in got)


def test_unknown_names_and_bad_characters_are_located():
    got = diagnostics(".chip mini\n.const A = B + 1\n.const C = 2 ~ 3\n")
    assert got == [(2, 12, "unknown name 'B'"), (3, 14, "unexpected character '~'")]


def test_a_chip_conflicting_with_the_command_line_is_an_error():
    (d,) = diagnostics(".chip mini\n", chip="tsp-v1")
    assert d[:2] == (1, 7) and "--chip says tsp-v1" in d[2]


def test_data_with_the_wrong_number_of_values_is_an_error():
    (d,) = diagnostics(".chip mini\n.data x i8 (4) at mem.e0:0 = [1, 2, 3]\n")
    assert d[:2] == (2, 30) and "3 values given" in d[2]


def test_unclosed_rept_and_stray_endr_are_reported():
    got = diagnostics(".chip mini\n.endr\n.rept 2\n.queue vxm.0\n")
    assert [(line, col) for line, col, _ in got] == [(2, 1), (3, 1)]


def test_the_rendered_report_has_the_line_and_a_caret():
    try:
        assemble(".chip mini\n.queue vxm.0\n    frob e0\n", filename="k.s")
    except AssemblyError as e:
        lines = e.report().splitlines()
    assert lines[0] == "k.s:3:5: error: unknown instruction 'frob'"
    assert lines[1] == "        frob e0"
    assert lines[2] == "        ^"
    assert lines[-1] == "1 error"
