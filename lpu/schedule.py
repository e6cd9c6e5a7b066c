"""The static schedule: the issue cycle of every instruction instance, known before anything runs.

Queues issue in order, one instruction per cycle; `nop n` idles, `repeat n, d` re-issues the
previous instruction, `sync` parks until a `notify`. Nothing here looks at data: this is why a
TSP's run time is a property of the program, not of the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpu.errors import LpuError
from lpu.isa.chips import Chip
from lpu.isa.encoding import decode
from lpu.isa.program import Program
from lpu.isa.table import BY_MNEMONIC, INSTRUCTIONS, OPCODE_SHIFT

OP_NOP = BY_MNEMONIC["nop"].opcode
OP_REPEAT = BY_MNEMONIC["repeat"].opcode
OP_SYNC = BY_MNEMONIC["sync"].opcode
OP_NOTIFY = BY_MNEMONIC["notify"].opcode
ICU_OPS = (OP_NOP, OP_REPEAT, OP_SYNC, OP_NOTIFY)


def latency_table(chip: Chip) -> np.ndarray:
    """int64 [256]: cycles from issue to result for each opcode on this chip (skew included)."""
    lat = np.zeros(256, np.int64)
    for ins in INSTRUCTIONS:
        lat[ins.opcode] = ins.latency.cycles + (chip.skew if ins.crosses_superlanes else 0)
    return lat


@dataclass
class Schedule:
    """Every work instruction instance in issue order (ties: west-to-east queue order).

    cycle: int64 issue cycle; done: int64 cycle its result lands (a stream write, an SRAM write,
    an accumulator); queue: int32 index into chip.queues; pc: int32 index of the instruction in
    its queue; rep: int32 repetition number (0 = the instruction itself); opcode: uint8.
    """

    cycle: np.ndarray
    done: np.ndarray
    queue: np.ndarray
    pc: np.ndarray
    rep: np.ndarray
    opcode: np.ndarray
    icu_count: int  # nop/repeat/sync/notify instructions issued (they do no work)
    length: int  # cycles from the first issue to the last result at the last superlane

    def __len__(self) -> int:
        return len(self.cycle)


def _queue_timeline(words: np.ndarray, release: dict[int, int]) -> tuple[np.ndarray, list[int],
                                                                          list[int]]:
    """Issue cycle of every instruction of one queue; sync positions and notify cycles.

    release maps the index of a sync instruction to the cycle its queue resumes (unknown syncs
    park the rest of the queue: their cycles are -1).
    """
    ops = (words >> np.uint64(OPCODE_SHIFT)).astype(np.int64)
    n = len(words)
    dur = np.ones(n, np.int64)
    nop = ops == OP_NOP
    rep = ops == OP_REPEAT
    dur[nop] = ((words[nop] >> np.uint64(40)) & np.uint64(0xFFFF)).astype(np.int64)
    rn = ((words[rep] >> np.uint64(40)) & np.uint64(0xFFFF)).astype(np.int64)
    rd = ((words[rep] >> np.uint64(32)) & np.uint64(0xFF)).astype(np.int64)
    # the repeated instruction took 1 cycle; its repeats end n*d cycles later
    dur[rep] = rn * rd
    syncs = np.flatnonzero(ops == OP_SYNC)
    issue = np.full(n, -1, np.int64)
    start, t = 0, 0
    for s in list(syncs) + [n]:
        seg = slice(start, s)
        cs = np.cumsum(dur[seg])
        issue[seg] = t + cs - dur[seg]
        if s == n:
            break
        t_park = t + (int(cs[-1]) if len(cs) else 0)
        issue[s] = t_park
        if s not in release:
            return issue, [int(x) for x in syncs], _notifies(ops, issue)
        t = release[s]
        start = s + 1
    return issue, [int(x) for x in syncs], _notifies(ops, issue)


def _notifies(ops: np.ndarray, issue: np.ndarray) -> list[int]:
    m = (ops == OP_NOTIFY) & (issue >= 0)
    return [int(x) for x in issue[m]]


def build_schedule(program: Program, chip: Chip) -> Schedule:
    """Issue cycles for every instance; raises LpuError if a queue parks forever."""
    lat = latency_table(chip)
    names = [q for q in program.queues if len(program.queues[q])]
    qidx = {q: chip.queue_index[q] for q in names}
    words = {q: np.asarray(program.queues[q], np.uint64) for q in names}
    notify_lat = BY_MNEMONIC["notify"].latency.cycles
    release: dict[str, dict[int, int]] = {q: {} for q in names}
    timelines: dict[str, np.ndarray] = {}
    # Fixed point over sync/notify: every pass can only release more syncs.
    for _ in range(64):
        notifies: list[int] = []
        syncs: dict[str, list[tuple[int, int]]] = {}
        for q in names:
            issue, sidx, nts = _queue_timeline(words[q], release[q])
            timelines[q] = issue
            notifies += nts
            syncs[q] = [(s, int(issue[s])) for s in sidx if issue[s] >= 0]
        notifies.sort()
        changed = False
        for q in names:
            for s, t_park in syncs[q]:
                later = [x for x in notifies if x >= t_park]
                if later:
                    r = later[0] + notify_lat
                    if release[q].get(s) != r:
                        release[q][s] = r
                        changed = True
        if not changed:
            break
    for q in names:
        issue = timelines[q]
        ops = (words[q] >> np.uint64(OPCODE_SHIFT)).astype(np.int64)
        parked = np.flatnonzero((ops == OP_SYNC) & (issue >= 0))
        for s in parked:
            if int(s) not in release[q]:
                line, col = program.location(q, int(s))
                raise LpuError(f"queue {q} parks forever: `sync` at cycle {issue[s]} has no "
                               "later `notify` in any queue", file=program.source,
                               line=line or None, col=col or None)

    cyc, que, pcs, reps, opc = [], [], [], [], []
    icu = 0
    for q in names:
        w = words[q]
        ops = (w >> np.uint64(OPCODE_SHIFT)).astype(np.int64)
        issue = timelines[q]
        icu += int(np.isin(ops, ICU_OPS).sum())
        work = ~np.isin(ops, ICU_OPS)
        # repeat counts attach to the instruction just before each repeat
        nrep = np.zeros(len(w), np.int64)
        gap = np.ones(len(w), np.int64)
        rpos = np.flatnonzero(ops == OP_REPEAT)
        rpos = rpos[rpos > 0]
        nrep[rpos - 1] = ((w[rpos] >> np.uint64(40)) & np.uint64(0xFFFF)).astype(np.int64)
        gap[rpos - 1] = ((w[rpos] >> np.uint64(32)) & np.uint64(0xFF)).astype(np.int64)
        idx = np.flatnonzero(work)
        cnt = nrep[idx] + 1
        pc = np.repeat(idx, cnt)
        k = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        cyc.append(issue[pc] + k * gap[pc])
        que.append(np.full(len(pc), qidx[q], np.int32))
        pcs.append(pc.astype(np.int32))
        reps.append(k.astype(np.int32))
        opc.append(ops[pc].astype(np.uint8))
    if cyc:
        cycle = np.concatenate(cyc)
        queue = np.concatenate(que)
        order = np.lexsort((queue, cycle))
        cycle, queue = cycle[order], queue[order]
        pc = np.concatenate(pcs)[order]
        rep = np.concatenate(reps)[order]
        opcode = np.concatenate(opc)[order]
    else:
        cycle = np.zeros(0, np.int64)
        queue = np.zeros(0, np.int32)
        pc = rep = np.zeros(0, np.int32)
        opcode = np.zeros(0, np.uint8)
    done = cycle + lat[opcode]
    last = int(done.max()) if len(done) else -1
    length = last + 1 + chip.skew if len(done) else 0
    return Schedule(cycle, done, queue, pc, rep, opcode, icu, length)


def describe(program: Program, queue: str, pc: int) -> str:
    """The assembly text of one instruction (for messages)."""
    from lpu.isa.encoding import stream_text

    try:
        ins, vals = decode(int(program.queues[queue][pc]))
    except ValueError:  # an undecodable word still gets a message
        return f"{int(program.queues[queue][pc]):#018x}"
    suffix = "".join(
        "." + _dtname(vals[o.name]) for o in ins.operands if o.kind == "dtype")
    ops = []
    for o in ins.operands:
        if o.kind == "dtype":
            continue
        v = vals[o.name]
        ops.append(stream_text(v) if o.kind == "stream" else str(v))
    return f"{ins.mnemonic}{suffix} {', '.join(ops)}".strip()


def _dtname(code: int) -> str:
    from lpu.isa.table import DTYPE_BY_CODE

    return DTYPE_BY_CODE.get(code, f"dt{code}")
