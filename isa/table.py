"""The ISA as one table: every instruction of every unit, its operands, encoding and timing.

The assembler's parser, the disassembler, the emulator's decode arrays and docs/isa.md are all
derived from INSTRUCTIONS; the table checks itself when this module is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WORD_BITS = 64
OPCODE_BITS = 8
OPCODE_SHIFT = WORD_BITS - OPCODE_BITS  # opcode in bits 63..56, operands packed below it

# Data types a stream group can carry: name -> (code, bytes per element, is float).
DTYPES: dict[str, tuple[int, int, bool]] = {
    "i8": (0, 1, False),
    "i32": (1, 4, False),
    "f16": (2, 2, True),
    "bf16": (3, 2, True),
    "f32": (4, 4, True),
}
DTYPE_BY_CODE = {code: name for name, (code, _, _) in DTYPES.items()}


@dataclass(frozen=True)
class Operand:
    """One field of an instruction word.

    kind: stream (6 bits: direction bit then stream id; written e5 / w5), addr (MEM word
    address), uint / sint (plain integers), dtype (3 bits, written as a mnemonic suffix), imm32
    (a float or int constant whose meaning follows the instruction's dtype), map (an index into
    the program's lane-map table).
    """

    name: str
    kind: str
    bits: int
    doc: str = ""

    @property
    def signed(self) -> bool:
        return self.kind == "sint"

    @property
    def is_suffix(self) -> bool:
        return self.kind == "dtype"


@dataclass(frozen=True)
class Latency:
    """Functional latency in cycles with where the number comes from."""

    cycles: int
    source: str  # "paper: ...", "third-party: ...", or "assumed: <reason>"


@dataclass(frozen=True)
class Instruction:
    mnemonic: str
    unit: str  # icu, mem, vxm, mxm, sxm, c2c
    opcode: int
    operands: tuple[Operand, ...]
    latency: Latency
    semantics: str
    # Which queue roles may hold it (MXM planes have three queues: w, a, r); None = any of unit.
    roles: tuple[str, ...] | None = None
    # The op needs data from every superlane before it can emit (MXM, cross-lane SXM ops): the
    # superlane skew (superlanes - 1 cycles) is added to its latency on a given chip.
    crosses_superlanes: bool = False
    implemented: bool = True
    # Extra attributes the emulator uses (e.g. the ALU op a VXM mnemonic selects).
    attrs: dict = field(default_factory=dict, hash=False, compare=False)

    def operand(self, name: str) -> Operand:
        for op in self.operands:
            if op.name == name:
                return op
        raise KeyError(f"{self.mnemonic} has no operand {name!r}")

    def field_layout(self) -> list[tuple[Operand, int]]:
        """(operand, shift) pairs: operands are packed from bit 55 downwards in order."""
        out, pos = [], OPCODE_SHIFT
        for op in self.operands:
            pos -= op.bits
            out.append((op, pos))
        return out


class IsaTableError(Exception):
    """The ISA table contradicts itself (raised at import)."""


# ---- operand shorthands -------------------------------------------------------------------
def _stream(name: str, doc: str) -> Operand:
    return Operand(name, "stream", 6, doc)


_DT = Operand("dt", "dtype", 3, "element type of the stream group(s)")
_A = _stream("a", "first source stream group (base stream; the group has dtype-bytes streams)")
_B = _stream("b", "second source stream group")
_Z = _stream("z", "destination stream group")

# Sources for the numbers below; the latencies themselves are in each row.
SRC_ISCA20 = "paper: Abts et al., ISCA 2020 (Think Fast), Table I / Sec. 3"
SRC_QGD = ("third-party: GroqAPI timing comments in rakytap/sequential-quantum-gate-decomposer "
           "(qgd_python/gates/groq/gsquander.py)")

_ALU = Latency(3, SRC_QGD + ": ALU 3 cycles")
_ALU_T = Latency(6, "assumed: transcendental ops (exp, tanh, rsqrt, sigmoid) take twice the basic "
                    "ALU latency; not published")
_MEM_RD = Latency(1, SRC_QGD + ": VXM entry = 1 read + 4 stream hops")
_MEM_WR = Latency(1, "assumed: a write lands in the SRAM bank the cycle after it issues, like a read")
_GATHER = Latency(1, SRC_QGD + ": gather 1 cycle")
_MXM = Latency(16, "assumed: MXM pipeline depth is not published; 16 cycles per 320-wide pass, "
                   "plus the superlane skew")
_MXM_LW = Latency(1, "paper (reported): LW/IW install 409,600 weights in under 40 cycles with 32 "
                     "streams, i.e. one row group per cycle")
_MXM_ACC = Latency(2, "assumed: reading an accumulator onto streams takes 2 cycles")
_SXM_SHIFT = Latency(4, "assumed: like the transposer (4 cycles, third-party); not published")
_SXM_DIST = Latency(2, SRC_QGD + ": distributor 2 cycles")
_SXM_TR = Latency(4, SRC_QGD + ": transposer 4 cycles")
_SXM_RED = Latency(8, "assumed: an SXM lane-reduction tree (ours; not in the published ISA): "
                      "log2(16) levels within a superlane plus 4 to combine superlanes")
_ICU = Latency(0, "paper: ICU instructions steer the queue itself and produce no data")
_C2C = Latency(4, SRC_QGD + ": crossing the I/O boundary 4 cycles")

_INSTRUCTIONS: list[Instruction] = []


def _add(mnemonic: str, unit: str, opcode: int, operands: list[Operand], latency: Latency,
         semantics: str, **kw) -> None:
    _INSTRUCTIONS.append(Instruction(mnemonic, unit, opcode, tuple(operands), latency, semantics,
                                     **kw))


# ---- ICU: queue control, legal in every queue ------------------------------------------------
_add("nop", "icu", 0x00, [Operand("n", "uint", 16, "idle cycles (1..65535)")], _ICU,
     "Issue nothing for n cycles.")
_add("repeat", "icu", 0x01, [Operand("n", "uint", 16, "extra repetitions (1..65535)"),
                             Operand("d", "uint", 8, "cycles between repetitions (1..255)")], _ICU,
     "Re-issue the previous instruction n more times, d cycles apart; MEM addresses advance "
     "by the instruction's step each time.")
_add("sync", "icu", 0x02, [], _ICU, "Park this queue until a notify issues in any queue.")
_add("notify", "icu", 0x03, [], Latency(1, "assumed: release takes one cycle to reach the queues"),
     "Release every parked queue; they resume the cycle after.")

# ---- MEM: one queue per slice ----------------------------------------------------------------
_ADDR = Operand("addr", "addr", 13, "word address in this slice")
_STEP = Operand("step", "sint", 8, "address step per repeat (-128..127)")
_add("read", "mem", 0x10, [_ADDR, _stream("z", "destination stream"), _STEP], _MEM_RD,
     "z = SRAM[addr]: one 320-byte word (one byte per lane) onto a stream.")
_add("write", "mem", 0x11, [_ADDR, _stream("a", "source stream"), _STEP], _MEM_WR,
     "SRAM[addr] = a: the stream's word at this slice lands in SRAM one cycle later.")
_add("gather", "mem", 0x12, [Operand("base", "addr", 13, "base word address"),
                             _stream("z", "destination stream"),
                             _stream("i", "index stream group (i32; lane 0 is used)"),
                             Operand("stride", "uint", 8, "words per index step")], _GATHER,
     "z = SRAM[base + stride * i[lane 0]]: a data-dependent read (embedding lookup).")
_add("scatter", "mem", 0x13, [Operand("base", "addr", 13, "base word address"),
                              _stream("a", "source stream"),
                              _stream("i", "index stream group (i32; lane 0 is used)"),
                              Operand("stride", "uint", 8, "words per index step")], _MEM_WR,
     "SRAM[base + stride * i[lane 0]] = a: a data-dependent write.")

# ---- VXM: 16 ALU queues in the centre; all math in fp32 or int32 -----------------------------
_BINARY = [("add", "z = a + b"), ("sub", "z = a - b"), ("mul", "z = a * b"),
           ("max", "z = max(a, b) (NaN if either is NaN)"), ("min", "z = min(a, b)"),
           ("and", "z = a & b on the raw bits"), ("or", "z = a | b on the raw bits"),
           ("xor", "z = a ^ b on the raw bits"), ("shl", "z = a << (b & 31) (integers)"),
           ("shr", "z = a >> (b & 31), arithmetic (integers)"),
           ("cmpeq", "z = (a == b) ? -1 : 0 as i32"), ("cmplt", "z = (a < b) ? -1 : 0 as i32"),
           ("cmple", "z = (a <= b) ? -1 : 0 as i32")]
for i, (m, sem) in enumerate(_BINARY):
    _add(m, "vxm", 0x20 + i, [_DT, _A, _B, _Z], _ALU, sem + ".", attrs={"alu": i, "form": "bin"})
    _add(m + "i", "vxm", 0x40 + i, [_DT, _A, Operand("imm", "imm32", 32, "constant operand b"), _Z],
         _ALU, re.sub(r"\bb\b", "imm", sem) + " with a constant.",
         attrs={"alu": i, "form": "imm"})
_UNARY = [("mov", "z = a", _ALU), ("neg", "z = -a", _ALU), ("abs", "z = |a|", _ALU),
          ("relu", "z = max(a, 0)", _ALU), ("recip", "z = 1 / a (IEEE fp32 division)", _ALU),
          ("sqrt", "z = sqrt(a) (IEEE fp32)", _ALU),
          ("exp", "z = exp(a), computed in fp64 and rounded once", _ALU_T),
          ("tanh", "z = tanh(a), computed in fp64 and rounded once", _ALU_T),
          ("rsqrt", "z = 1 / sqrt(a), computed in fp64 and rounded once", _ALU_T),
          ("sigmoid", "z = 1 / (1 + exp(-a)), computed in fp64 and rounded once", _ALU_T)]
for i, (m, sem, lat) in enumerate(_UNARY):
    _add(m, "vxm", 0x60 + i, [_DT, _A, _Z], lat, sem + ".", attrs={"alu": i, "form": "un"})
_add("cvt", "vxm", 0x70, [Operand("from", "dtype", 3, "source type"),
                          Operand("to", "dtype", 3, "destination type"), _A, _Z], _ALU,
     "z = convert(a): to a float, round to nearest even, once (also from i32); float->int "
     "rounds to nearest even and "
     "saturates (NaN -> 0); int->int saturates.", attrs={"form": "cvt"})

# ---- MXM: per plane a weight queue (w), an activation queue (a) and a result queue (r) -------
_WDT = Operand("dt", "dtype", 3, "weight type: i8 or f16")
_add("lw", "mxm", 0x80, [_WDT, _stream("a", "first weight stream"),
                         Operand("n", "uint", 6, "rows to load (1..32)"),
                         Operand("row", "uint", 9, "first row of the staging buffer")], _MXM_LW,
     "Load n weight rows into the staging buffer: row+r <- streams a + r*bytes(dt) .. (one row "
     "is one dtype vector, lane c holds W[row, c]).", roles=("w",))
_add("iw", "mxm", 0x81, [], _MXM_LW,
     "Install: the staging buffer becomes the active weights (the plane is busy that cycle).",
     roles=("w",))
_add("mv", "mxm", 0x82, [_DT, _stream("a", "activation stream group (i8 or f16)"),
                         Operand("acc", "uint", 2, "accumulator slot 0..3"),
                         Operand("add", "uint", 1, "1: add to the slot, 0: overwrite it")], _MXM,
     "slot (+)= W @ a: int8 x int8 sums in int32; f16 (or i8 weights widened exactly) x f16 sums "
     "in fp32 over lanes 0..L-1 in order.", roles=("a",), crosses_superlanes=True)
_add("acc", "mxm", 0x83, [Operand("acc", "uint", 2, "accumulator slot 0..3"),
                          _stream("z", "destination stream group (4 streams: i32 or f32)")],
     _MXM_ACC, "z = slot: the accumulator as an i32 or f32 vector.", roles=("r",))

# ---- SXM: lane movement and cross-lane work, one bank of queues per hemisphere ---------------
_SG = Operand("sg", "uint", 5, "streams in the group (1..16)")
_add("shift", "sxm", 0x90, [_SG, _A, _Z, Operand("n", "sint", 10, "lanes to move (+: up)")],
     _SXM_SHIFT, "z[l] = a[l - n], zero where l - n is outside the vector.",
     crosses_superlanes=True)
_add("rotate", "sxm", 0x91, [_SG, _A, _Z, Operand("n", "sint", 10, "lanes to rotate (+: up)")],
     _SXM_SHIFT, "z[l] = a[(l - n) mod L].", crosses_superlanes=True)
_add("permute", "sxm", 0x92, [_SG, _A, _Z, Operand("map", "map", 8, "lane map index")],
     _SXM_SHIFT, "z[l] = a[map[l]] (map[l] = -1: zero). The published permute is bijective; "
     "ours accepts any map (assumed, for broadcasts).", crosses_superlanes=True)
_add("distribute", "sxm", 0x93, [_SG, _A, _Z, Operand("map", "map", 8, "lane map index")],
     _SXM_DIST, "Like permute, but each lane may only take from its own superlane.")
_add("transpose", "sxm", 0x94, [_A, _Z], _SXM_TR,
     "16 streams x 16 lanes per superlane transposed: z+i lane 16k+j = a+j lane 16k+i.")
for i, m in enumerate(("rsum", "rmax", "rmin")):
    _add(m, "sxm", 0x98 + i, [_DT, _A, _Z, Operand("seg", "uint", 10, "lanes per segment")],
         _SXM_RED, f"Every lane gets the {m[1:]} of its segment (lanes split into runs of seg from "
         "lane 0, the last one shorter if seg does not divide L; fp32 sums in lane order); "
         "ours, not in the published ISA.", crosses_superlanes=True,
         attrs={"red": i})

# ---- C2C: reserved for the multi-chip model -------------------------------------------------
for i, m in enumerate(("send", "receive", "deskew")):
    _add(m, "c2c", 0xF0 + i, [Operand("link", "uint", 4, "chip-to-chip link")], _C2C,
         "Chip-to-chip transfer (reserved: a single-chip emulation rejects it).",
         implemented=False)


# ---- the table checks itself ------------------------------------------------------------------
def _check(table: list[Instruction]) -> None:
    seen_op: dict[int, str] = {}
    seen_name: set[str] = set()
    for ins in table:
        if ins.mnemonic in seen_name:
            raise IsaTableError(f"duplicate mnemonic {ins.mnemonic!r}")
        seen_name.add(ins.mnemonic)
        if not 0 <= ins.opcode < (1 << OPCODE_BITS):
            raise IsaTableError(f"{ins.mnemonic}: opcode {ins.opcode:#x} does not fit in "
                                f"{OPCODE_BITS} bits")
        if ins.opcode in seen_op:
            raise IsaTableError(f"{ins.mnemonic}: opcode {ins.opcode:#x} overlaps "
                                f"{seen_op[ins.opcode]}")
        seen_op[ins.opcode] = ins.mnemonic
        used = sum(op.bits for op in ins.operands)
        if used > OPCODE_SHIFT:
            raise IsaTableError(f"{ins.mnemonic}: operands need {used} bits, only {OPCODE_SHIFT} "
                                "fit")
        names = [op.name for op in ins.operands]
        if len(set(names)) != len(names):
            raise IsaTableError(f"{ins.mnemonic}: duplicate operand names {names}")
        for op in ins.operands:
            if op.bits <= 0:
                raise IsaTableError(f"{ins.mnemonic}.{op.name}: width must be positive")
            if op.kind not in ("stream", "addr", "uint", "sint", "dtype", "imm32", "map"):
                raise IsaTableError(f"{ins.mnemonic}.{op.name}: unknown operand kind {op.kind}")
            if op.kind == "stream" and op.bits != 6:
                raise IsaTableError(f"{ins.mnemonic}.{op.name}: streams are 6-bit fields")
        src = ins.latency.source
        if not src or not src.split(":")[0] in ("paper", "third-party", "assumed",
                                                "paper (reported)"):
            raise IsaTableError(f"{ins.mnemonic}: latency needs a source (paper, third-party or "
                                f"assumed: reason), got {src!r}")
        if src.startswith("assumed") and len(src.split(":", 1)[-1].strip()) < 8:
            raise IsaTableError(f"{ins.mnemonic}: an assumed latency needs a reason")
        if ins.latency.cycles < 0:
            raise IsaTableError(f"{ins.mnemonic}: negative latency")


_check(_INSTRUCTIONS)

INSTRUCTIONS: tuple[Instruction, ...] = tuple(_INSTRUCTIONS)
BY_MNEMONIC: dict[str, Instruction] = {i.mnemonic: i for i in INSTRUCTIONS}
BY_OPCODE: dict[int, Instruction] = {i.opcode: i for i in INSTRUCTIONS}
UNITS = ("icu", "mem", "vxm", "mxm", "sxm", "c2c")
