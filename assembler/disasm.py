"""The disassembler: Program -> assembly text that reassembles to identical bytes.

Every instruction gets a `.loc LINE COL` so the source map survives the round trip; words that
do not decode are written as `.word`, data as values when they round-trip exactly, else hex.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from lpu.isa.chips import CHIPS
from lpu.isa.encoding import EncodingError, bits_f32, decode, f32_bits, stream_text
from lpu.isa.program import Program, Segment, tensor_to_words, words_to_tensor
from lpu.isa.table import BY_MNEMONIC, DTYPE_BY_CODE

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_KEYWORDS = {"inf", "nan", "bits", "at", "zeros", "file", "hex"}


def format_instruction(word: int, n_maps: int | None = None) -> str:
    """One instruction as assembly text; `.word 0x...` when the word does not decode."""
    try:
        ins, vals = decode(word)
    except EncodingError:
        return f".word {int(word):#018x}"
    suffix = ""
    ops: list[str] = []
    for op in ins.operands:
        v = vals[op.name]
        if op.kind == "dtype":
            if v not in DTYPE_BY_CODE:
                return f".word {int(word):#018x}"
            suffix += "." + DTYPE_BY_CODE[v]
        elif op.kind == "stream":
            ops.append(stream_text(v))
        elif op.kind == "map":
            ops.append(f"m{v}" if n_maps is not None and v < n_maps else str(v))
        elif op.kind == "imm32":
            ops.append(_imm(v, DTYPE_BY_CODE.get(vals.get("dt", -1))))
        else:
            ops.append(str(v))
    return f"{ins.mnemonic}{suffix}" + (" " + ", ".join(ops) if ops else "")


def _imm(bits: int, dt: str | None) -> str:
    if dt in ("f16", "bf16", "f32"):
        x = bits_f32(bits)
        if math.isnan(x):
            return f"bits({bits:#010x})"
        text = repr(x)
        if math.isinf(x) or f32_bits(float(text)) == bits:
            return text
        return f"bits({bits:#010x})"
    return str(bits - (1 << 32) if bits >= 1 << 31 else bits)


def _name(name: str) -> str:
    if _NAME.match(name) and name not in BY_MNEMONIC and name not in _KEYWORDS \
            and not re.match(r"[ew]\d+$", name):
        return name
    return json.dumps(name)


def _values(seg: Segment, lanes: int) -> str | None:
    """The segment's data as a value list when that reassembles to the same bytes."""
    try:
        with np.errstate(all="ignore"):
            t = words_to_tensor(seg.data, seg.dtype, seg.shape, lanes)
            if not np.array_equal(tensor_to_words(t, seg.dtype, lanes), seg.data):
                return None
    except (ValueError, TypeError):
        return None
    flat = t.reshape(-1)
    if seg.dtype in ("i8", "i32"):
        items = [str(int(v)) for v in flat]
    else:
        items = []
        for v in flat.tolist():
            if math.isnan(v):
                return None
            items.append(repr(float(v)))
    rows = [", ".join(items[i:i + 16]) for i in range(0, len(items), 16)]
    return "[" + ",\n    ".join(rows) + "]"


def disassemble(program: Program) -> str:
    """Assembly text for `program`; `lpu asm` turns it back into the same image bytes."""
    chip = CHIPS[program.chip]
    slice_queue = {q.index: q.name for q in chip.queues if q.unit == "mem"}
    out = [f"; disassembled by lpu disasm ({program.n_instructions} instructions)",
           f".chip {program.chip}", f".file {json.dumps(program.source)}"]
    for k, mp in enumerate(program.maps):
        out.append(f".map m{k} = [{', '.join(str(int(v)) for v in np.asarray(mp))}]")
    for seg in program.segments:
        places = " ".join(f"{slice_queue.get(int(s), f'?{s}')}:{int(a)}[{int(n)}]"
                          for s, a, n in np.asarray(seg.runs).reshape(-1, 3))
        shape = ", ".join(str(int(d)) for d in seg.shape)
        line = f".data {_name(seg.name)} {seg.dtype} ({shape}) at {places}"
        if seg.data is not None:
            vals = _values(seg, chip.lanes)
            if vals is None:
                line += f' = hex "{np.ascontiguousarray(seg.data, np.uint8).tobytes().hex()}"'
            else:
                line += " = " + vals
        out.append(line)
    n_maps = len(program.maps)
    for q, words in program.queues.items():
        out.append("")
        out.append(f".queue {q}")
        for i, w in enumerate(np.asarray(words, np.uint64).tolist()):
            line, col = program.location(q, i)
            out.append(f".loc {line} {col}")
            out.append("    " + format_instruction(int(w), n_maps))
    return "\n".join(out) + "\n"


def disassemble_to_file(program, path) -> None:
    """Write the disassembly atomically (nothing is left behind on failure)."""
    from lpu.files import atomic_write

    atomic_write(path, disassemble(program))
