"""asm -> disasm -> asm gives identical image bytes: every example, every opcode, every range."""

import random

import numpy as np
import pytest
from asm_helpers import EXAMPLES

from lpu.assembler import assemble, assemble_file, disassemble
from lpu.isa.chips import CHIPS
from lpu.isa.encoding import encode
from lpu.isa.image import from_bytes, to_bytes
from lpu.isa.program import Program, Segment, words_for
from lpu.isa.table import DTYPES, INSTRUCTIONS


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_assembles_and_reassembles_to_identical_bytes(path):
    prog = assemble_file(str(path))
    first = to_bytes(prog)
    again = assemble(disassemble(from_bytes(first)), filename="back.s")
    assert to_bytes(again) == first


def test_the_examples_cover_vadd_dot_and_matvec_on_mini():
    names = {p.stem for p in EXAMPLES}
    assert {"vadd", "dot", "matvec16"} <= names
    for p in EXAMPLES:
        assert assemble_file(str(p)).chip == "mini"
        assert p.read_text().startswith(";"), f"{p.name} opens with an explaining comment"


def random_word(rng: random.Random, ins) -> int:
    vals = {}
    for op in ins.operands:
        if op.kind == "dtype":
            vals[op.name] = rng.choice([c for c, _, _ in DTYPES.values()])
        elif op.signed:
            vals[op.name] = rng.randint(-(1 << (op.bits - 1)), (1 << (op.bits - 1)) - 1)
        else:
            edge = [0, 1, (1 << op.bits) - 1]
            vals[op.name] = rng.choice(edge) if rng.random() < 0.3 else \
                rng.randrange(1 << op.bits)
    if "imm" in vals and rng.random() < 0.3:  # special float bit patterns
        vals["imm"] = rng.choice([0x7FC00001, 0xFFC00000, 0x7F800000, 0xFF800000, 0x80000000,
                                  0x00000001, 0x7F7FFFFF])
    return encode(ins, vals)


def random_program(rng: random.Random, chip_name: str) -> Program:
    chip = CHIPS[chip_name]
    prog = Program(chip=chip_name, source=rng.choice(["a.s", 'we"ird\\name.s', "ünï.s"]))
    names = [q.name for q in chip.queues]
    for q in rng.sample(names, 4):
        words = [random_word(rng, ins) for ins in rng.sample(INSTRUCTIONS, 12)]
        words.append(rng.randrange(1 << 64))  # most random words do not decode: .word
        prog.queues[q] = np.array(words, np.uint64)
        prog.srcmap[q] = np.array([[rng.randrange(1 << 20), rng.randrange(300)]
                                   for _ in words], np.int32)
    prog.maps = [np.array([rng.randint(-1, chip.lanes - 1) for _ in range(chip.lanes)],
                          np.int16) for _ in range(rng.randint(0, 3))]
    mem = [q.index for q in chip.queues if q.unit == "mem"]
    for k in range(3):
        dt = rng.choice(list(DTYPES))
        shape = (rng.randint(1, 3), rng.randint(1, chip.lanes + 3))
        n = words_for(shape, dt, chip.lanes)
        cut = rng.randint(1, n)
        runs = [(rng.choice(mem), 100 * k, cut)] + ([(rng.choice(mem), 1000 + 100 * k, n - cut)]
                                                    if n > cut else [])
        data = None
        if rng.random() < 0.7:
            data = np.frombuffer(rng.randbytes(n * chip.lanes), np.uint8).reshape(n, chip.lanes)
            if rng.random() < 0.5:  # small clean values print as a list
                data = data & 1
        name = rng.choice([f"t{k}", f"layer{k}/w", f"seg.{k}"])
        prog.segments.append(Segment(name, dt, shape, np.array(runs, np.int32), data))
    return prog


@pytest.mark.parametrize("seed", range(40))
def test_random_programs_over_every_opcode_survive_disasm_and_asm(seed):
    rng = random.Random(seed)
    prog = random_program(rng, "mini" if seed % 2 else "tsp-v1")
    text = disassemble(prog)
    back = assemble(text, filename="r.s", check=False)
    assert to_bytes(back) == to_bytes(prog)


def test_random_programs_cover_every_opcode():
    seen = set()
    for seed in range(40):
        p = random_program(random.Random(seed), "mini")
        for words in p.queues.values():
            seen |= {int(w) >> 56 for w in words}
    assert {ins.opcode for ins in INSTRUCTIONS} <= seen


def _operands(ins):
    from hypothesis import strategies as st

    parts = {}
    for op in ins.operands:
        if op.kind == "dtype":
            parts[op.name] = st.sampled_from([c for c, _, _ in DTYPES.values()])
        elif op.signed:
            parts[op.name] = st.integers(-(1 << (op.bits - 1)), (1 << (op.bits - 1)) - 1)
        else:
            parts[op.name] = st.integers(0, (1 << op.bits) - 1)
    return st.fixed_dictionaries(parts)


@pytest.mark.parametrize("ins", INSTRUCTIONS, ids=lambda i: i.mnemonic)
def test_disasm_then_asm_of_any_operand_values_gives_the_same_word(ins):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=15, deadline=None)
    @given(vals=_operands(ins), line=st.integers(0, 2**31 - 1), col=st.integers(0, 999))
    def prop(vals, line, col):
        word = encode(ins, vals)
        prog = Program(chip="mini", queues={"vxm.0": np.array([word], np.uint64)},
                       srcmap={"vxm.0": np.array([[line, col]], np.int32)})
        back = assemble(disassemble(prog), filename="p.s", check=False)
        assert to_bytes(back) == to_bytes(prog)

    prop()
