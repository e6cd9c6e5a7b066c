"""A programmatic assembler: place instructions at absolute cycles, get a Program.

The compiler and the tests schedule work cycle by cycle; the builder turns that into per-queue
words (inserting nops for idle gaps), data segments and lane maps, and checks each queue issues
at most one instruction per cycle.
"""

from __future__ import annotations

import numpy as np

from lpu.errors import LpuError
from lpu.isa.chips import Chip, get_chip
from lpu.isa.encoding import encode, f32_bits, fields_of
from lpu.isa.program import Program, Segment, tensor_to_words, words_for
from lpu.isa.table import BY_MNEMONIC, DTYPES, OPCODE_SHIFT


def stream(text: str | int) -> int:
    """'e5' / 'w5' (or an already encoded field) -> the 6-bit stream field."""
    if isinstance(text, (int, np.integer)):
        return int(text)
    d = {"e": 0, "w": 1}[text[0]]
    return (d << 5) | int(text[1:])


_REPEAT_OP = BY_MNEMONIC["repeat"].opcode
_REPEAT_SHIFT = {op.name: shift for op, shift in BY_MNEMONIC["repeat"].field_layout()}
_NOP_WORD = BY_MNEMONIC["nop"].opcode << OPCODE_SHIFT
_NOP_SHIFT = {op.name: shift for op, shift in BY_MNEMONIC["nop"].field_layout()}["n"]


class Builder:
    def __init__(self, chip: Chip | str, source: str = "<builder>") -> None:
        self.chip = get_chip(chip) if isinstance(chip, str) else chip
        self.source = source
        self._q: dict[str, list[tuple[int, int, int]]] = {}  # queue -> (cycle, word, span)
        self.segments: list[Segment] = []
        self.maps: list[np.ndarray] = []
        self._map_ids: dict[bytes, int] = {}
        self._queues_seen: set[str] = set()

    # ---- data ------------------------------------------------------------------------------
    def data(self, name: str, dtype: str, shape: tuple[int, ...],
             placement: list[tuple[str | int, int, int]] | np.ndarray, values: np.ndarray | None = None,
             words: np.ndarray | None = None) -> Segment:
        """Place a tensor: placement rows are (MEM queue name or slice number, address, words),
        or an int array [k, 3] of (slice number, address, words).
        values: the tensor (converted here), or words: its MEM words already converted."""
        if isinstance(placement, np.ndarray):
            runs_a = placement.astype(np.int32).reshape(-1, 3)
        else:
            runs = []
            for sl, addr, n in placement:
                if isinstance(sl, str):
                    sl = self.chip.queue(sl).index
                runs.append((sl, addr, n))
            runs_a = np.asarray(runs, np.int32).reshape(-1, 3)
        need = words_for(tuple(shape), dtype, self.chip.lanes)
        if int(runs_a[:, 2].sum()) != need:
            raise LpuError(f"segment {name}: placement holds {int(runs_a[:, 2].sum())} words, "
                           f"shape {shape} needs {need}")
        data = words
        if values is not None:
            data = tensor_to_words(np.asarray(values).reshape(shape), dtype, self.chip.lanes)
        seg = Segment(name, dtype, tuple(shape), runs_a, data)
        self.segments.append(seg)
        return seg

    def lane_map(self, m: np.ndarray) -> int:
        m = np.asarray(m, np.int16)
        key = m.tobytes()
        if key not in self._map_ids:
            self._map_ids[key] = len(self.maps)
            self.maps.append(m)
        return self._map_ids[key]

    # ---- instructions -----------------------------------------------------------------------
    def at(self, queue: str, cycle: int, mnemonic: str, repeat: tuple[int, int] | None = None,
           **ops) -> None:
        """Issue `mnemonic` in `queue` at `cycle`; repeat=(n, d) re-issues it n times d apart.
        Keyword arguments that are not operands of the instruction are ignored."""
        ins = BY_MNEMONIC[mnemonic]
        fields, _ = fields_of(ins)
        word = ins.opcode << OPCODE_SHIFT
        dtype_name = None
        for name, kind, shift, bits, signed in fields:  # encode() inlined: compilers call this
            if name in ops:                              # hundreds of thousands of times
                v = ops[name]
            elif name == "step":
                v = 0
            else:
                raise LpuError(f"{mnemonic}: missing operand {name}")
            if kind == "dtype":
                dtype_name = v
                v = DTYPES[v][0]
            elif kind == "stream":
                v = v if type(v) is int else stream(v)
            elif kind == "imm32":
                floaty = dtype_name in ("f16", "bf16", "f32")
                v = f32_bits(float(v)) if floaty else int(v) & 0xFFFFFFFF
            else:
                v = int(v)
            lo = -(1 << (bits - 1)) if signed else 0
            if not lo <= v < lo + (1 << bits):  # encode() says exactly what does not fit
                encode(ins, {**dict.fromkeys((f[0] for f in fields), 0), name: v})
            word |= (v & ((1 << bits) - 1)) << shift
        lst = self._q.setdefault(queue, [])
        lst.append((cycle, word, 1))
        if repeat:
            n, d = repeat
            if n > 0:
                if n < 65536 and 0 <= d < 256:  # the repeat word, as encode() packs it
                    rep = ((_REPEAT_OP << OPCODE_SHIFT) | (n << _REPEAT_SHIFT["n"])
                           | (d << _REPEAT_SHIFT["d"]))
                else:
                    rep = encode("repeat", {"n": n, "d": d})  # raises: does not fit
                lst.append((cycle + 1, rep, n * d))
        if queue not in self._queues_seen:
            self.chip.queue(queue)  # raises for a queue the chip does not have
            self._queues_seen.add(queue)

    def build(self) -> Program:
        queues: dict[str, np.ndarray] = {}
        for q, items in self._q.items():
            items = sorted(items, key=lambda x: x[0])
            words: list[int] = []
            t = 0
            for cycle, word, span in items:
                if (word >> OPCODE_SHIFT) == _REPEAT_OP:
                    words.append(word)
                    # the repeated instruction issued at cycle - 1; its last repetition is at
                    # cycle - 1 + span, so the queue is free the cycle after
                    t = cycle + span
                    continue
                if cycle < t:
                    raise LpuError(f"queue {q}: two instructions at cycle {cycle} (the queue is "
                                   f"busy until {t})")
                gap = cycle - t
                while gap > 0:
                    n = min(gap, 65535)  # what encode("nop", {"n": n}) gives
                    words.append(_NOP_WORD | (n << _NOP_SHIFT))
                    gap -= n
                words.append(word)
                t = cycle + 1
            queues[q] = np.asarray(words, np.uint64)
        return Program(self.chip.name, queues, {}, list(self.segments), list(self.maps),
                       self.source)
