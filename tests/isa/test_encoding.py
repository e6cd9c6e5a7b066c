"""encode/decode round-trip for every instruction over random operand values."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpu.isa.encoding import EncodingError, decode, encode
from lpu.isa.table import INSTRUCTIONS, OPCODE_SHIFT


def field_values(ins):
    parts = {}
    for op in ins.operands:
        if op.signed:
            parts[op.name] = st.integers(-(1 << (op.bits - 1)), (1 << (op.bits - 1)) - 1)
        else:
            parts[op.name] = st.integers(0, (1 << op.bits) - 1)
    return st.fixed_dictionaries(parts)


@pytest.mark.parametrize("ins", INSTRUCTIONS, ids=lambda i: i.mnemonic)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_instruction_decodes_to_what_was_encoded(ins, data):
    vals = data.draw(field_values(ins))
    word = encode(ins, vals)
    assert word >> OPCODE_SHIFT == ins.opcode
    back, got = decode(word)
    assert back is ins and got == vals


def test_a_value_too_wide_for_its_field_is_refused():
    with pytest.raises(EncodingError, match="does not fit"):
        encode("nop", {"n": 1 << 16})


def test_a_word_with_stray_low_bits_does_not_decode():
    word = encode("iw", {}) | 1
    with pytest.raises(EncodingError, match="unused low bits"):
        decode(word)


def test_an_unknown_opcode_does_not_decode():
    with pytest.raises(EncodingError, match="no instruction"):
        decode(0xEE << OPCODE_SHIFT)
