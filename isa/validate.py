"""Static checks of a Program against a chip: everything that can be wrong before it runs.

The assembler maps each Problem to a source line; the emulator calls validate() before running
so its compiled loop never indexes out of range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpu.errors import LpuError
from lpu.isa.chips import Chip, Queue
from lpu.isa.encoding import EncodingError, decode, stream_parts, stream_text
from lpu.isa.program import Program, words_for
from lpu.isa.table import DTYPE_BY_CODE, DTYPES, Instruction

FLOATS = ("f16", "bf16", "f32")
_NO_REPEAT_AFTER = ("nop", "repeat", "sync", "notify")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a program.

    what: "instruction" (queue and index name it), "segment" or "map" (index is its position,
    queue is ""), or "program".
    """

    queue: str
    index: int
    message: str
    what: str = "instruction"

    def __str__(self) -> str:
        if self.what == "instruction":
            return f"{self.queue}[{self.index}]: {self.message}"
        if self.what in ("segment", "map"):
            return f"{self.what} {self.index}: {self.message}"
        return self.message


def _dt(vals: dict[str, int], key: str = "dt") -> str | None:
    return DTYPE_BY_CODE.get(vals[key])


def _group(chip: Chip, vals: dict[str, int], key: str, size: int, why: str) -> list[str]:
    d, s = stream_parts(vals[key])
    name = stream_text(vals[key])
    if s >= chip.streams:
        return [(f"stream {name} does not exist on {chip.name} ({chip.streams} streams per "
                f"direction, {'ew'[d]}0..{'ew'[d]}{chip.streams - 1})")]
    if s + size > chip.streams:
        return [(f"operand {key}: a group of {size} streams ({why}) starting at {name} runs past "
                f"{'ew'[d]}{chip.streams - 1}")]
    return []


def _check_instruction(ins: Instruction, vals: dict[str, int], q: Queue, chip: Chip,
                       program: Program, prev: Instruction | None,
                       prev_vals: dict[str, int] | None) -> list[str]:
    out: list[str] = []
    m = ins.mnemonic
    if not ins.implemented:
        return [f"{m} is reserved for chip-to-chip links; a single-chip program cannot use it"]
    if ins.unit != "icu" and ins.unit != q.unit:
        return [(f"{m} is an instruction of the {ins.unit.upper()}; queue {q.name} belongs "
                 f"to the {q.unit.upper()}")]
    if ins.roles and q.role not in ins.roles:
        return [(f"{m} belongs in an MXM {'/'.join(ins.roles)} queue (mxmN.{ins.roles[0]}), "
                f"not {q.name}")]
    for op in ins.operands:
        if op.kind == "dtype" and vals[op.name] not in DTYPE_BY_CODE:
            return [f"operand {op.name}: unknown dtype code {vals[op.name]}"]
    if m == "nop" and vals["n"] < 1:
        out.append("nop needs n >= 1")
    elif m == "repeat":
        if vals["n"] < 1 or vals["d"] < 1:
            out.append("repeat needs n >= 1 and d >= 1")
        if prev is None or prev.mnemonic in _NO_REPEAT_AFTER:
            what = "the start of the queue" if prev is None else prev.mnemonic
            out.append(f"repeat must follow an instruction to repeat, not {what}")
        elif prev.unit == "mem" and prev_vals is not None and "step" in prev_vals:
            last = prev_vals["addr"] + vals["n"] * prev_vals["step"]
            if not 0 <= last < chip.mem_words:
                out.append(f"the repeated {prev.mnemonic} reaches address {last}, outside "
                           f"0..{chip.mem_words - 1}")
    elif ins.unit == "mem":
        akey = "addr" if "addr" in vals else "base"
        if vals[akey] >= chip.mem_words:
            out.append(f"address {vals[akey]} is outside this slice (0..{chip.mem_words - 1})")
        out += _group(chip, vals, "z" if "z" in vals else "a", 1, "one vector")
        if "i" in vals:
            out += _group(chip, vals, "i", 4, "an i32 index")
    elif ins.unit == "vxm":
        out += _check_vxm(ins, vals, chip)
    elif ins.unit == "mxm":
        out += _check_mxm(ins, vals, chip)
    elif ins.unit == "sxm":
        out += _check_sxm(ins, vals, chip, program)
    return out


def _check_vxm(ins: Instruction, vals: dict[str, int], chip: Chip) -> list[str]:
    m = ins.mnemonic
    if m == "cvt":
        src, dst = _dt(vals, "from"), _dt(vals, "to")
        return (_group(chip, vals, "a", DTYPES[src][1], src)
                + _group(chip, vals, "z", DTYPES[dst][1], dst))
    dt = _dt(vals)
    g = DTYPES[dt][1]
    out: list[str] = []
    base = m[:-1] if ins.attrs.get("form") == "imm" else m
    if base in ("shl", "shr") and dt not in ("i8", "i32"):
        out.append(f"{m} shifts integers only (i8 or i32), not {dt}")
    if base in ("exp", "tanh", "rsqrt", "sigmoid", "recip", "sqrt") and dt not in FLOATS:
        out.append(f"{m} works on floats only (f16, bf16, f32), not {dt}")
    out += _group(chip, vals, "a", g, dt)
    if "b" in vals:
        out += _group(chip, vals, "b", g, dt)
    zg = 4 if base in ("cmpeq", "cmplt", "cmple") else g
    out += _group(chip, vals, "z", zg, "i32 mask" if zg != g or base.startswith("cmp") else dt)
    return out


def _check_mxm(ins: Instruction, vals: dict[str, int], chip: Chip) -> list[str]:
    m = ins.mnemonic
    out: list[str] = []
    if m in ("lw", "mv"):
        dt = _dt(vals)
        if dt not in ("i8", "f16"):
            return [f"{m} takes i8 or f16, not {dt}"]
        g = DTYPES[dt][1]
        if m == "lw":
            n, row = vals["n"], vals["row"]
            if not 1 <= n <= 32:
                out.append(f"lw loads 1..32 rows, not {n}")
            if row + n > chip.lanes:
                out.append(f"rows {row}..{row + n - 1} run past the {chip.lanes} rows of the plane")
            out += _group(chip, vals, "a", max(n, 1) * g, f"{n} rows of {dt}")
        else:
            out += _group(chip, vals, "a", g, dt)
    if "acc" in vals and vals["acc"] >= chip.mxm_acc_slots:
        out.append(f"accumulator slot {vals['acc']} does not exist ({chip.mxm_acc_slots} slots)")
    if m == "acc":
        out += _group(chip, vals, "z", 4, "i32 or f32")
    return out


def _check_sxm(ins: Instruction, vals: dict[str, int], chip: Chip, program: Program) -> list[str]:
    m = ins.mnemonic
    out: list[str] = []
    if m == "transpose":
        if chip.lanes_per_superlane != 16 or chip.streams < 16:
            return [(f"transpose moves 16 streams x 16 lanes; {chip.name} has "
                    f"{chip.streams} streams per direction and {chip.lanes_per_superlane} lanes "
                    "per superlane")]
        return _group(chip, vals, "a", 16, "transpose") + _group(chip, vals, "z", 16, "transpose")
    if m in ("rsum", "rmax", "rmin"):
        dt = _dt(vals)
        seg = vals["seg"]
        if dt == "i8":
            out.append(f"{m} does not take i8 (sums would overflow); widen to i32 first")
        if not 1 <= seg <= chip.lanes:  # a last, shorter segment is fine
            out.append(f"segment of {seg} lanes: must be 1..{chip.lanes}")
        g = DTYPES[dt][1]
        return out + _group(chip, vals, "a", g, dt) + _group(chip, vals, "z", g, dt)
    sg = vals["sg"]
    if not 1 <= sg <= 16:
        return [f"stream group size sg={sg} must be 1..16"]
    out += _group(chip, vals, "a", sg, f"sg={sg}") + _group(chip, vals, "z", sg, f"sg={sg}")
    if m in ("shift", "rotate") and abs(vals["n"]) > chip.lanes:
        out.append(f"{m} by {vals['n']} lanes: at most {chip.lanes} on {chip.name}")
    if m in ("permute", "distribute"):
        k = vals["map"]
        if k >= len(program.maps):
            out.append(f"lane map {k} does not exist (the program has {len(program.maps)})")
        elif m == "distribute":
            mp = np.asarray(program.maps[k]).astype(np.int64)
            lanes = np.arange(len(mp))
            lps = chip.lanes_per_superlane
            bad = (mp >= 0) & (mp // lps != lanes // lps)
            if bad.any():
                lane = int(np.argmax(bad))
                out.append(f"distribute map {k} sends lane {int(mp[lane])} to lane {lane}, "
                           f"outside its superlane of {lps} lanes (use permute)")
    return out


def _check_segments(program: Program, chip: Chip) -> list[Problem]:
    out: list[Problem] = []
    used: dict[int, list[tuple[int, int, str]]] = {}
    for k, seg in enumerate(program.segments):
        def bad(msg: str, k: int = k, seg=seg) -> None:
            out.append(Problem("", k, f"segment {seg.name!r}: {msg}", "segment"))
        if seg.dtype not in DTYPES:
            bad(f"unknown dtype {seg.dtype!r}")
            continue
        runs = np.asarray(seg.runs)
        if runs.ndim != 2 or runs.shape[1] != 3:
            bad("runs must be rows of (slice, address, words)")
            continue
        try:
            need = words_for(tuple(seg.shape), seg.dtype, chip.lanes)
        except (TypeError, ValueError):
            bad(f"bad shape {seg.shape!r}")
            continue
        if any(int(d) < 1 for d in seg.shape):
            bad(f"every dimension must be >= 1, got {tuple(seg.shape)}")
        if int(runs[:, 2].sum()) != need:
            bad(f"places {int(runs[:, 2].sum())} words but {seg.dtype} {tuple(seg.shape)} needs "
                f"{need}")
        for s, a, n in runs.tolist():
            if not 0 <= s < chip.mem_slices:
                bad(f"slice {s} does not exist (0..{chip.mem_slices - 1})")
            elif n < 1 or a < 0 or a + n > chip.mem_words:
                bad(f"words {a}..{a + n - 1} of slice {s} are outside 0..{chip.mem_words - 1}")
            else:
                used.setdefault(s, []).append((a, a + n, k))
        if seg.data is not None:
            d = np.asarray(seg.data)
            if d.dtype != np.uint8 or d.shape != (need, chip.lanes):
                bad(f"data must be uint8 [{need}, {chip.lanes}], got {d.dtype} {list(d.shape)}")
    for s, spans in used.items():
        spans.sort()
        end, owner = -1, 0  # the furthest-reaching span so far catches nested overlaps too
        for a, e, k in spans:
            if a < end:
                names = program.segments[owner].name, program.segments[k].name
                out.append(Problem("", k, f"segments {names[0]!r} and {names[1]!r} overlap in "
                                          f"slice {s} at address {a}", "segment"))
            if e > end:
                end, owner = e, k
    return out


def _check_maps(program: Program, chip: Chip) -> list[Problem]:
    out = []
    for k, mp in enumerate(program.maps):
        a = np.asarray(mp)
        if a.shape != (chip.lanes,):
            out.append(Problem("", k, f"lane map {k} has {a.size} entries, {chip.name} has "
                                      f"{chip.lanes} lanes", "map"))
        elif a.size and (int(a.min()) < -1 or int(a.max()) >= chip.lanes):
            out.append(Problem("", k, f"lane map {k} entries must be -1..{chip.lanes - 1}",
                               "map"))
    return out


def validate(program: Program, chip: Chip) -> list[Problem]:
    """Every static problem of `program` on `chip`, in queue order; empty when it is clean."""
    out: list[Problem] = []
    if program.chip != chip.name:
        out.append(Problem("", -1, f"program is for chip {program.chip!r}, not {chip.name!r}",
                           "program"))
    out += _check_maps(program, chip)
    for qname, words in program.queues.items():
        if qname not in chip.queue_index:
            out.append(Problem(qname, 0, f"chip {chip.name} has no queue {qname!r}"))
            continue
        q = chip.queues[chip.queue_index[qname]]
        prev = prev_vals = None
        for i, w in enumerate(np.asarray(words, dtype=np.uint64).tolist()):
            try:
                ins, vals = decode(int(w))
            except EncodingError as e:
                out.append(Problem(qname, i, f"word {int(w):#018x} does not decode: {e}"))
                prev = prev_vals = None
                continue
            for msg in _check_instruction(ins, vals, q, chip, program, prev, prev_vals):
                out.append(Problem(qname, i, msg))
            prev, prev_vals = ins, vals
    out += _check_segments(program, chip)
    return out


class ProgramError(LpuError):
    """A program that fails validate(); carries every Problem."""

    def __init__(self, message: str, problems: list[Problem], **kw) -> None:
        super().__init__(message, **kw)
        self.problems = problems


def check(program: Program, chip: Chip) -> None:
    """Raise ProgramError (exit 1) naming the first problem's source line when validate() finds any.

    The message reads `SOURCE:LINE:COL: queue[index]: message (and N more problems)`.
    """
    problems = validate(program, chip)
    if not problems:
        return
    first = problems[0]
    line = col = None
    if first.what == "instruction":
        line, col = program.location(first.queue, first.index)
    more = len(problems) - 1
    text = str(first) + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
    raise ProgramError(text, problems, file=program.source, line=line or None, col=col or None,
                       hint="fix the source and re-assemble with `lpu asm`")
