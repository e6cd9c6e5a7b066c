"""The ISA table checks itself: overlapping opcodes, fields that do not fit, missing sources."""

from dataclasses import replace

import pytest

from lpu.isa import table
from lpu.isa.table import INSTRUCTIONS, IsaTableError, Latency, Operand


def _modified(mnemonic: str, **changes) -> list:
    return [replace(i, **changes) if i.mnemonic == mnemonic else i for i in INSTRUCTIONS]


def test_the_shipped_table_passes_its_own_check():
    table._check(list(INSTRUCTIONS))


def test_an_overlapping_opcode_is_caught():
    with pytest.raises(IsaTableError, match="overlaps"):
        table._check(_modified("sub", opcode=table.BY_MNEMONIC["add"].opcode))


def test_operands_that_do_not_fit_in_the_word_are_caught():
    wide = (Operand("x", "uint", 40), Operand("y", "uint", 20))
    with pytest.raises(IsaTableError, match="fit"):
        table._check(_modified("nop", operands=wide))


def test_a_latency_without_a_source_is_caught():
    with pytest.raises(IsaTableError, match="source"):
        table._check(_modified("add", latency=Latency(3, "")))


def test_an_assumed_latency_needs_a_reason():
    with pytest.raises(IsaTableError, match="reason"):
        table._check(_modified("add", latency=Latency(3, "assumed:")))


def test_an_opcode_wider_than_its_field_is_caught():
    with pytest.raises(IsaTableError, match="does not fit"):
        table._check(_modified("add", opcode=0x100))


def test_every_instruction_has_semantics_and_a_unit():
    for ins in INSTRUCTIONS:
        assert ins.semantics and ins.unit in table.UNITS
