"""Binary encoding of instructions: 64-bit words, opcode on top, operands packed below it.

encode() and decode() are the only code that knows bit positions; both read them from the
table, so the assembler, disassembler and emulator cannot disagree.
"""

from __future__ import annotations

import struct

from lpu.isa.table import BY_MNEMONIC, BY_OPCODE, OPCODE_SHIFT, Instruction

# Streams are written e5 / w5 in assembly and encoded as dir << 5 | id (east = 0, west = 1).
EAST, WEST = 0, 1


class EncodingError(ValueError):
    """A value does not fit its field, or a word has no instruction."""


def stream_field(direction: int, sid: int) -> int:
    return (direction << 5) | sid


def stream_parts(value: int) -> tuple[int, int]:
    """(direction, stream id) of a 6-bit stream field."""
    return value >> 5, value & 31


def stream_text(value: int) -> str:
    d, s = stream_parts(value)
    return f"{'ew'[d]}{s}"


def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def bits_f32(b: int) -> float:
    return struct.unpack("<f", struct.pack("<I", b & 0xFFFFFFFF))[0]


_FIELDS: dict[str, tuple[tuple, frozenset]] = {}


def fields_of(ins: Instruction) -> tuple[tuple, frozenset]:
    """((name, kind, shift, bits, signed) per operand, in packing order; operand names), from
    the ISA table, looked up once per instruction (compilers encode hundreds of thousands of
    words)."""
    got = _FIELDS.get(ins.mnemonic)
    if got is None:
        got = _FIELDS[ins.mnemonic] = (
            tuple((op.name, op.kind, shift, op.bits, op.signed)
                  for op, shift in ins.field_layout()),
            frozenset(op.name for op in ins.operands))
    return got


def encode(ins: Instruction | str, values: dict[str, int]) -> int:
    """Pack raw field values (ints as the table describes them) into one 64-bit word."""
    if isinstance(ins, str):
        ins = BY_MNEMONIC[ins]
    word = ins.opcode << OPCODE_SHIFT
    fields, names = fields_of(ins)
    for name, _, shift, bits, signed in fields:
        if name not in values:
            raise EncodingError(f"{ins.mnemonic}: missing operand {name}")
        v = int(values[name])
        if signed:
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            if not lo <= v <= hi:
                raise EncodingError(f"{ins.mnemonic}: {name}={v} does not fit in a signed "
                                    f"{bits}-bit field ({lo}..{hi})")
            v &= (1 << bits) - 1
        elif not 0 <= v < (1 << bits):
            raise EncodingError(f"{ins.mnemonic}: {name}={v} does not fit in {bits} bits "
                                f"(0..{(1 << bits) - 1})")
        word |= v << shift
    extra = set(values) - names if len(values) > len(names) else ()
    if extra:
        raise EncodingError(f"{ins.mnemonic}: unknown operands {sorted(extra)}")
    return word


def decode(word: int) -> tuple[Instruction, dict[str, int]]:
    """Unpack a 64-bit word into its instruction and raw field values (signed fields signed)."""
    word = int(word)
    if not 0 <= word < (1 << 64):
        raise EncodingError(f"{word:#x} is not a 64-bit word")
    ins = BY_OPCODE.get(word >> OPCODE_SHIFT)
    if ins is None:
        raise EncodingError(f"no instruction has opcode {word >> OPCODE_SHIFT:#04x}")
    values: dict[str, int] = {}
    low_end = OPCODE_SHIFT
    for op, shift in ins.field_layout():
        v = (word >> shift) & ((1 << op.bits) - 1)
        if op.signed and v >= 1 << (op.bits - 1):
            v -= 1 << op.bits
        values[op.name] = v
        low_end = shift
    if word & ((1 << low_end) - 1):
        raise EncodingError(f"{ins.mnemonic}: unused low bits are set in {word:#018x}")
    return ins, values
