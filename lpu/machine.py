"""The emulator's public face: validate a program, lay out its arrays, run the compiled kernel.

Machine.run() checks everything that could make compiled code index out of bounds before the
JIT sees the program, then turns the kernel's status into results or a HazardError that names
the cycle, queue, instruction and source line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from numba import config as numba_config

from lpu import _engine as E
from lpu import _worker
from lpu._coldstart import compile_in_parallel
from lpu._jit import BOUNDSCHECK
from lpu.errors import HazardError, LpuError
from lpu.isa.chips import Chip, get_chip
from lpu.isa.encoding import stream_text
from lpu.isa.program import Program, tensor_to_words, words_for, words_to_tensor
from lpu.isa.table import BY_OPCODE, DTYPES, INSTRUCTIONS, OPCODE_SHIFT
from lpu.schedule import Schedule, build_schedule, describe, latency_table

# operand name -> column of the decoded-instruction matrix
_COLUMN = {"dt": E.C_DT, "from": E.C_DT, "to": E.C_DT2, "a": E.C_A, "b": E.C_B, "i": E.C_B,
           "z": E.C_Z, "addr": E.C_ADDR, "base": E.C_ADDR, "step": E.C_STEP, "imm": E.C_IMM,
           "n": E.C_N, "row": E.C_ROW, "acc": E.C_SLOT, "add": E.C_ADD, "map": E.C_MAP,
           "seg": E.C_SEG, "sg": E.C_SG, "stride": E.C_STRIDE}
_CLASS = {"read": E.K_READ, "write": E.K_WRITE, "gather": E.K_GATHER, "scatter": E.K_SCATTER,
          "cvt": E.K_CVT, "lw": E.K_LW, "iw": E.K_IW, "mv": E.K_MV, "acc": E.K_ACC,
          "shift": E.K_SHIFT, "rotate": E.K_ROTATE, "permute": E.K_PERMUTE,
          "distribute": E.K_DISTRIBUTE, "transpose": E.K_TRANSPOSE, "rsum": E.K_REDUCE,
          "rmax": E.K_REDUCE, "rmin": E.K_REDUCE}
_FORM = {"bin": E.K_VBIN, "imm": E.K_VIMM, "un": E.K_VUN}

HAZARD_KINDS = {
    E.H_EMPTY: "empty-stream", E.H_COLLISION: "stream-collision", E.H_BANK: "bank-conflict",
    E.H_BUSY: "busy", E.H_NO_WEIGHTS: "no-weights", E.H_ACC_NOT_READY: "acc-not-ready",
    E.H_ACC_TYPE: "type-mismatch", E.H_ADDR: "address-out-of-range",
    E.H_WEIGHTS_NOT_READY: "weights-not-ready",
}


_F16_TABLE: list[np.ndarray] = []


def _f16_table() -> np.ndarray:
    """fp32 bits of every fp16 value, by numpy (exact; it may quiet a signalling NaN, which no
    result can show: arithmetic NaNs are canonical, mov/neg/abs use the raw bits). numpy
    rather than lpu.isa.dtypes saves a JIT compile on a cold start."""
    if not _F16_TABLE:
        _F16_TABLE.append(np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
                          .view(np.uint32))
    return _F16_TABLE[0]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# Programs with at least this many lw and mv instructions get the MXM worker thread (kept
# between runs by lpu._worker: handing it a run and waiting for it cost ~20 us, a new thread
# ~60 us, measured with no work). LPU_THREADS=1 keeps every run on one thread, LPU_THREADS=2
# gives every run the worker. Results are the same bits either way
# (tests/lpu/test_determinism.py).
WORKER_MIN_MXM = 32


def _run_kernel(args: tuple, ws: tuple, mem2: np.ndarray, f16tab: np.ndarray,
                threaded: bool) -> tuple:
    """Run the kernel. The MXM's jobs (lpu._engine._work) run on a worker thread beside it when
    `threaded`; otherwise the kernel stops (H_JOBS) whenever it needs jobs done, they are done
    here, and it resumes where it stopped."""
    ctl = ws[E.WS_CTL]
    ctl[E.CT_THREADED] = 1 if threaded else 0
    join = _worker.start(E._work, E.work_args(ws, mem2, f16tab, -1)) if threaded else None
    try:
        while True:
            res = E._run(*args)
            if res[0] != E.H_JOBS:
                return res
            E._work(*E.work_args(ws, mem2, f16tab, int(ctl[E.CT_NEED])))
    finally:
        if join is not None:
            ctl[E.CT_STOP] = 1  # the worker finishes what was posted, then returns
            join()


def _class_of(mnemonic: str, attrs: dict) -> int:
    if mnemonic in _CLASS:
        return _CLASS[mnemonic]
    return _FORM.get(attrs.get("form", ""), 0)


@dataclass
class RunResult:
    chip: Chip
    cycles: int
    instructions: int
    schedule: Schedule
    busy: dict[str, int]  # instances issued per queue (each occupies its queue one cycle)
    stopped_at: int | None = None  # set when --max-cycles cut the run short
    meta: dict = field(default_factory=dict)

    @property
    def time_us(self) -> float:
        return self.cycles / (self.chip.clock_ghz * 1e3)

    def units(self) -> dict[str, int]:
        """Busy cycles summed per unit kind (mem, vxm, mxm, sxm)."""
        out: dict[str, int] = {}
        for q, n in self.busy.items():
            unit = self.chip.queue(q).unit
            out[unit] = out.get(unit, 0) + n
        return out

    def to_json(self) -> dict:
        return {"chip": self.chip.name, "cycles": self.cycles, "instructions": self.instructions,
                "clock_ghz": self.chip.clock_ghz, "time_us": self.time_us,
                "units": self.units(), "queues": dict(self.busy),
                **({"stopped_at": self.stopped_at} if self.stopped_at is not None else {})}


def _in_use_order(F: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The instruction table's rows in the order the run first uses them, and each instance's
    row renumbered to match: the kernel then reads the table front to back. (A decode step's
    table is tens of MB; taken in queue order, nearly every instance's row missed the caches.)"""
    if len(rows) == 0:
        return F, rows
    first = np.full(len(F), len(rows), np.int64)  # each row's first instance (unused: last)
    np.minimum.at(first, rows, np.arange(len(rows)))
    order = np.argsort(first, kind="stable")
    new_row = np.empty(len(F), np.int64)
    new_row[order] = np.arange(len(F))
    return np.ascontiguousarray(F[order]), new_row[rows].astype(rows.dtype)


@dataclass
class _Prepared:
    """What running a program needs that depends on the program only (Machine.run keeps a few)."""

    program: Program
    F: np.ndarray  # the decoded instruction table
    offsets: dict[str, int]  # each queue's first row in F
    sched: Schedule
    rows: np.ndarray  # each instance's row of F
    logme: np.ndarray
    wflag: np.ndarray
    written: np.ndarray  # the SRAM words (rows of mem2) the program may write
    n_mxm: int  # lw and mv instructions (whether a run gets the worker thread)
    ordered: bool = False  # F in first-use order (_in_use_order), done on a second run


class Machine:
    """One chip running one program. Inputs go in by segment name, outputs come out the same way.
    """

    def __init__(self, program: Program, chip: Chip | str | None = None) -> None:
        self.program = program
        if chip is None:
            chip = program.chip
        self.chip = get_chip(chip) if isinstance(chip, str) else chip
        if self.chip.name != program.chip:
            raise LpuError(f"program was assembled for chip {program.chip!r}, not "
                           f"{self.chip.name!r}", hint="re-assemble with --chip")
        L = self.chip.lanes
        # SRAM is stored address-major, so one address across all slices (how vectors and
        # weight rows are laid out) is one contiguous block for the kernel; self.mem is the
        # [slice, address, lane] view of the same bytes
        self._sram = np.zeros((self.chip.mem_words, self.chip.mem_slices, L), np.uint8)
        # read-only: every write goes through _place, which keeps the kernel's shared copies of
        # weights (lpu._engine._lw_rows) true to the words they came from
        self.mem = self._sram.transpose(1, 0, 2)
        self.mem.flags.writeable = False
        self._ws: tuple | None = None  # the kernel's working arrays, kept between runs
        # data segments in MEM: name -> (placement key, the data array itself)
        self._loaded: dict[str, tuple[bytes, np.ndarray]] = {}
        self._load_segments()
        self.schedule: Schedule | None = None
        # prepared programs by id (the program itself is kept, so an id is never reused)
        self._prepared: dict[int, _Prepared] = {}
        self._epoch = 0  # cycle offset of the next run (see lpu._engine.workspace)

    def _load_segments(self) -> None:
        self._check_segments()
        for seg in self.program.segments:
            if seg.data is None:
                continue
            key = np.asarray(seg.runs, np.int64).tobytes() + seg.dtype.encode()
            old = self._loaded.get(seg.name)
            # the same array object at the same place is already there (weights between steps)
            if old is None or old[0] != key or old[1] is not seg.data:
                self._place(seg.name, seg.data)
                self._loaded[seg.name] = (key, seg.data)

    def swap_program(self, program: Program) -> None:
        """Run another program on the same MEM (the next decode step): data segments already in
        place (same name and placement) are not copied again; the rest of MEM is kept."""
        if program.chip != self.chip.name:
            raise LpuError(f"program is for chip {program.chip!r}, this machine is "
                           f"{self.chip.name!r}")
        self.program = program
        self._load_segments()
        self.schedule = None

    # ---- data in and out ----------------------------------------------------------------------
    def _check_segments(self) -> None:
        L, words = self.chip.lanes, self.chip.mem_words
        for seg in self.program.segments:
            if seg.dtype not in DTYPES:
                raise LpuError(f"segment {seg.name}: unknown dtype {seg.dtype!r}")
            r = np.asarray(seg.runs)
            if r.ndim != 2 or r.shape[1] != 3 or (len(r) and (
                    r[:, 0].min() < 0 or r[:, 0].max() >= self.chip.mem_slices or
                    r[:, 1].min() < 0 or r[:, 2].min() < 0 or
                    (r[:, 1] + r[:, 2]).max() > words)):
                raise LpuError(f"segment {seg.name}: placement outside the chip's MEM")
            if seg.n_words != words_for(seg.shape, seg.dtype, L):
                raise LpuError(f"segment {seg.name}: {seg.n_words} words placed, its shape "
                               f"{seg.shape} needs {words_for(seg.shape, seg.dtype, L)}")
            if seg.data is not None and seg.data.shape != (seg.n_words, L):
                raise LpuError(f"segment {seg.name}: data is {seg.data.shape}, expected "
                               f"{(seg.n_words, L)}")

    def _place(self, name: str, words: np.ndarray) -> None:
        slots = self.program.segment(name).word_slots()
        self._drop_copies_of(slots[:, 1] * self.chip.mem_slices + slots[:, 0])
        self._sram.transpose(1, 0, 2)[slots[:, 0], slots[:, 1]] = words

    def _drop_copies_of(self, words: np.ndarray) -> None:
        """Forget the kernel's transposed copies of weights if any of these SRAM words (rows of
        mem2) is in one (they last from run to run while their words stay unchanged)."""
        if self._ws is not None and self._ws[E.WS_TC + 2][words].any():
            E.drop_copies(self._ws)

    def load(self, name: str, values: np.ndarray) -> None:
        """Fill a segment with a tensor of its shape (converted to its dtype, rounded RNE)."""
        seg = self.program.segment(name)
        a = np.asarray(values)
        if tuple(a.shape) != tuple(seg.shape) and a.size != int(np.prod(seg.shape)):
            raise LpuError(f"input for {name} has shape {a.shape}; the segment is {seg.shape}")
        try:
            words = tensor_to_words(a.reshape(seg.shape), seg.dtype, self.chip.lanes)
        except ValueError as e:
            raise LpuError(f"input for {name}: {e}") from None
        self._place(name, words)

    def dump(self, name: str) -> np.ndarray:
        """A segment's current contents as a tensor (float32 for float types)."""
        seg = self.program.segment(name)
        slots = seg.word_slots()
        return words_to_tensor(self.mem[slots[:, 0], slots[:, 1]], seg.dtype, seg.shape,
                               self.chip.lanes)

    # ---- decoding and checks -------------------------------------------------------------------
    def _decode(self) -> tuple[np.ndarray, dict[str, int]]:
        """All instructions as rows of the column matrix; offsets of each queue's rows."""
        chip = self.chip
        lat = latency_table(chip)
        names = [q for q in self.program.queues if len(self.program.queues[q])]
        offsets, total = {}, 0
        for q in names:
            chip.queue(q)  # unknown queue names fail here
            offsets[q] = total
            total += len(self.program.queues[q])
        F = np.zeros((max(total, 1), E.N_COLS), np.int64)
        for q in names:
            w = np.asarray(self.program.queues[q], np.uint64)
            ops = (w >> np.uint64(OPCODE_SHIFT)).astype(np.int64)
            rows = slice(offsets[q], offsets[q] + len(w))
            block = F[rows]
            for opc in np.unique(ops):
                ins = BY_OPCODE.get(int(opc))
                m = ops == opc
                if ins is None:
                    j = int(np.flatnonzero(m)[0])
                    self._static_error(q, j, f"word {int(w[j]):#018x} has no instruction "
                                             f"(opcode {int(opc):#04x})")
                if not ins.implemented:
                    j = int(np.flatnonzero(m)[0])
                    self._static_error(q, j, f"`{ins.mnemonic}` ({ins.unit}) is reserved for "
                                             "multi-chip programs; one chip cannot run it")
                block[m, E.C_CLS] = _class_of(ins.mnemonic, ins.attrs)
                block[m, E.C_SUB] = ins.attrs.get("alu", ins.attrs.get("red", 0))
                block[m, E.C_LAT] = lat[int(opc)]
                for op, shift in ins.field_layout():
                    v = ((w[m] >> np.uint64(shift)) & np.uint64((1 << op.bits) - 1)).astype(
                        np.int64)
                    if op.signed:
                        v = np.where(v >= 1 << (op.bits - 1), v - (1 << op.bits), v)
                    if op.name in _COLUMN:
                        block[m, _COLUMN[op.name]] = v
                if ins.mnemonic == "transpose":
                    block[m, E.C_SG] = 16
            F[rows] = block
        return F, offsets

    def _static_error(self, queue: str, pc: int, message: str, kind: str = "invalid",
                      cycle: int | None = None) -> None:
        line, col = self.program.location(queue, pc)
        if cycle is None:
            raise LpuError(f"queue {queue}, instruction {pc} (`{describe(self.program, queue, pc)}`"
                           f"): {message}", file=self.program.source, line=line or None,
                           col=col or None)
        raise HazardError(message, kind=kind, cycle=cycle, queue=queue,
                          instruction=describe(self.program, queue, pc),
                          file=self.program.source, line=line or None, col=col or None)

    def _check_ranges(self, F: np.ndarray, offsets: dict[str, int], sched: Schedule) -> None:
        """Everything the kernel indexes with must be in range: checked before the JIT runs."""
        chip, L = self.chip, self.chip.lanes
        F = np.asfortranarray(F)  # a column at a time below: each one contiguous
        names = list(offsets)
        qnames = [q.name for q in chip.queues]
        q_of_row = np.zeros(len(F), np.int64)
        for q in names:
            q_of_row[offsets[q]:offsets[q] + len(self.program.queues[q])] = chip.queue_index[q]
        units = np.array([{"mem": 1, "vxm": 2, "mxm": 3, "sxm": 4}[q.unit] for q in chip.queues])
        roles = np.array(["wa r".index(q.role) if q.role else -1 for q in chip.queues])
        cls = F[:, E.C_CLS]
        need_unit = np.zeros(len(F), np.int64)
        need_unit[np.isin(cls, [E.K_READ, E.K_WRITE, E.K_GATHER, E.K_SCATTER])] = 1
        need_unit[np.isin(cls, [E.K_VBIN, E.K_VIMM, E.K_VUN, E.K_CVT])] = 2
        need_unit[np.isin(cls, [E.K_LW, E.K_IW, E.K_MV, E.K_ACC])] = 3
        need_unit[cls >= E.K_SHIFT] = 4
        bytes_of = np.array([DTYPES[n][1] for n in sorted(DTYPES, key=lambda k: DTYPES[k][0])]
                            + [0, 0, 0])
        problems: list[tuple[int, str]] = []

        def flag(mask: np.ndarray, msg) -> None:
            for r in np.flatnonzero(mask)[:1]:
                problems.append((int(r), msg(int(r)) if callable(msg) else msg))

        work = cls > 0
        flag(work & (need_unit != units[q_of_row]),
             lambda r: f"a {['', 'mem', 'vxm', 'mxm', 'sxm'][need_unit[r]]} instruction in "
                       f"{qnames[q_of_row[r]]}")
        role_need = np.full(len(F), -1)
        role_need[np.isin(cls, [E.K_LW, E.K_IW])] = 0
        role_need[cls == E.K_MV] = 1
        role_need[cls == E.K_ACC] = 3
        flag((role_need >= 0) & (role_need != roles[q_of_row]),
             lambda r: f"this MXM instruction belongs in the plane's "
                       f"{'w' if role_need[r] == 0 else ('a' if role_need[r] == 1 else 'r')} "
                       "queue")
        dt_ok = (F[:, E.C_DT] >= 0) & (F[:, E.C_DT] <= 4) & (F[:, E.C_DT2] >= 0) & (
            F[:, E.C_DT2] <= 4)
        flag(work & ~dt_ok, "unknown data type code")
        g = bytes_of[np.clip(F[:, E.C_DT], 0, 7)]
        g2 = bytes_of[np.clip(F[:, E.C_DT2], 0, 7)]
        isv = np.isin(cls, [E.K_VBIN, E.K_VIMM, E.K_VUN, E.K_CVT])
        cmp = isv & (F[:, E.C_SUB] >= 10) & (cls != E.K_VUN) & (cls != E.K_CVT)
        ga = np.zeros(len(F), np.int64)  # streams in the a group
        gb = np.zeros(len(F), np.int64)
        gz = np.zeros(len(F), np.int64)
        ga[isv] = g[isv]
        gb[cls == E.K_VBIN] = g[cls == E.K_VBIN]
        gz[isv] = np.where(cmp[isv], 4, np.where(cls[isv] == E.K_CVT, g2[isv], g[isv]))
        ga[np.isin(cls, [E.K_WRITE, E.K_SCATTER])] = 1
        gz[np.isin(cls, [E.K_READ, E.K_GATHER])] = 1
        gb[np.isin(cls, [E.K_GATHER, E.K_SCATTER])] = 4
        lw = cls == E.K_LW
        ga[lw] = F[lw, E.C_N] * g[lw]
        mv = cls == E.K_MV
        ga[mv] = g[mv]
        gz[cls == E.K_ACC] = 4
        red = cls == E.K_REDUCE
        ga[red] = g[red]
        gz[red] = g[red]
        mov = np.isin(cls, [E.K_SHIFT, E.K_ROTATE, E.K_PERMUTE, E.K_DISTRIBUTE, E.K_TRANSPOSE])
        ga[mov] = F[mov, E.C_SG]
        gz[mov] = F[mov, E.C_SG]
        for col, grp, nm in ((E.C_A, ga, "a"), (E.C_B, gb, "b"), (E.C_Z, gz, "z")):
            sid = F[:, col] & 31
            flag((grp > 0) & (sid + grp > chip.streams),
                 lambda r, col=col, grp=grp, nm=nm:
                 f"stream group {stream_text(int(F[r, col]))}..+{int(grp[r]) - 1} ({nm}) does not "
                 f"fit the chip's {chip.streams} streams per direction")
        flag(mov & ((F[:, E.C_SG] < 1) | (F[:, E.C_SG] > 16)), "stream group size must be 1..16")
        flag((cls == E.K_TRANSPOSE) & (chip.lanes_per_superlane != 16),
             "transpose needs 16 lanes per superlane")
        flag(lw & ((F[:, E.C_N] < 1) | (F[:, E.C_ROW] + F[:, E.C_N] > L)),
             lambda r: f"rows {F[r, E.C_ROW]}..{F[r, E.C_ROW] + F[r, E.C_N] - 1} are outside the "
                       f"{L}-row plane")
        flag((lw | mv) & ~np.isin(F[:, E.C_DT], [0, 2]), "MXM takes i8 or f16")
        flag(np.isin(cls, [E.K_MV, E.K_ACC]) & (F[:, E.C_SLOT] >= chip.mxm_acc_slots),
             f"accumulator slot must be < {chip.mxm_acc_slots}")
        flag(red & ((F[:, E.C_SEG] < 1) | (F[:, E.C_SEG] > L)),
             lambda r: f"segment of {F[r, E.C_SEG]} lanes: must be 1..{L}")
        flag(red & (F[:, E.C_DT] == 0), "reductions take i32 or float types")
        flag(np.isin(cls, [E.K_SHIFT, E.K_ROTATE]) & (np.abs(F[:, E.C_N]) > L),
             f"lane shift beyond {L} lanes")
        isperm = np.isin(cls, [E.K_PERMUTE, E.K_DISTRIBUTE])
        flag(isperm & (F[:, E.C_MAP] >= len(self.program.maps)),
             lambda r: f"lane map {F[r, E.C_MAP]} does not exist "
                       f"({len(self.program.maps)} maps)")
        flag(isv & ~np.isin(F[:, E.C_DT], [2, 3, 4]) &
             ((cls == E.K_VUN) & (F[:, E.C_SUB] >= 4)),
             "this operation needs a float type")
        flag(isv & np.isin(F[:, E.C_DT], [2, 3, 4]) & np.isin(cls, [E.K_VBIN, E.K_VIMM]) &
             np.isin(F[:, E.C_SUB], [8, 9]), "shifts need an integer type")
        flag(np.isin(cls, [E.K_GATHER, E.K_SCATTER]) & (F[:, E.C_ADDR] >= chip.mem_words),
             f"base address beyond the slice's {chip.mem_words} words")
        for m in self.program.maps:
            m = np.asarray(m)
            if m.shape != (L,) or m.min() < -1 or m.max() >= L:
                raise LpuError(f"a lane map must hold {L} entries in -1..{L - 1}")
        dist = np.flatnonzero(cls == E.K_DISTRIBUTE)
        for r in dist[:1000]:
            if F[r, E.C_MAP] < len(self.program.maps):
                m = np.asarray(self.program.maps[F[r, E.C_MAP]])
                sl = np.arange(L) // chip.lanes_per_superlane
                ok = (m < 0) | (m // chip.lanes_per_superlane == sl)
                if not ok.all():
                    problems.append((int(r), "distribute maps must stay inside each superlane"))
        if problems:
            r, msg = min(problems)
            q = qnames[q_of_row[r]]
            self._static_error(q, r - offsets[q], msg)
        # MEM addresses of every instance (repeats step through memory)
        if len(sched):
            q_off = np.zeros(len(chip.queues), np.int64)
            for q in names:
                q_off[chip.queue_index[q]] = offsets[q]
            rows = q_off[sched.queue] + sched.pc
            c = cls[rows]
            mem_rw = (c == E.K_READ) | (c == E.K_WRITE)
            addr = F[rows, E.C_ADDR] + sched.rep * F[rows, E.C_STEP]
            bad = np.flatnonzero(mem_rw & ((addr < 0) | (addr >= chip.mem_words)))
            if len(bad):
                i = int(bad[0])
                q = qnames[sched.queue[i]]
                self._static_error(q, int(sched.pc[i]),
                                   f"address {int(addr[i])} is outside the slice "
                                   f"(0..{chip.mem_words - 1})", kind="address-out-of-range",
                                   cycle=int(sched.cycle[i]))
            self._rows = rows
            # A read must be logged only if the program may overwrite its word while the value
            # is still on a stream (lpu._engine._materialize): words some `write` targets, any
            # word of a slice that scatters, and every gather. Weight reads never are.
            sl = np.array([q.index for q in chip.queues], np.int64)[sched.queue]
            word = np.where(mem_rw, addr, 0) * chip.mem_slices + sl
            written = np.zeros(chip.mem_slices * chip.mem_words, bool)
            written[word[c == E.K_WRITE]] = True
            scatters = np.zeros(chip.mem_slices, bool)
            scatters[sl[c == E.K_SCATTER]] = True
            # The same words (the program may write them at all) make an lw copy a row read
            # from one when it issues, rather than leave it for the MXM worker to read later.
            self._wflag = (written.reshape(chip.mem_words, chip.mem_slices) | scatters).astype(
                np.uint8).reshape(-1)
            self._logme = ((c == E.K_GATHER) | ((c == E.K_READ) & (self._wflag[word] == 1))
                           ).astype(np.uint8)

    # ---- running --------------------------------------------------------------------------------
    def _threaded(self) -> bool:
        """Whether this run gets the MXM worker thread: with the JIT on (and its bounds checks
        off), LPU_THREADS=2, or else a second CPU, LPU_THREADS not 1 and enough MXM work to pay
        for the thread."""
        want = os.environ.get("LPU_THREADS", "")
        if numba_config.DISABLE_JIT or BOUNDSCHECK or want == "1":
            return False
        if want == "2":
            return True
        if _cpus() < 2:
            return False
        return self._n_mxm >= WORKER_MIN_MXM

    def run(self, max_cycles: int | None = None) -> RunResult:
        chip = self.chip
        # Decoding, scheduling and checking depend on the program only: a program run again
        # (the same object, e.g. a repeated decode step) reuses them.
        pp = self._prepared.get(id(self.program))
        if pp is not None and pp.program is self.program:
            if not pp.ordered:  # run again: from now on, the table in the order the run uses it
                pp.F, pp.rows = _in_use_order(pp.F, pp.rows)
                pp.ordered = True
        else:
            F, offsets = self._decode()
            sched = build_schedule(self.program, chip)
            self._rows = np.zeros(0, np.int64)
            self._logme = np.zeros(0, np.uint8)
            self._wflag = np.zeros(0, np.uint8)
            self._check_ranges(F, offsets, sched)
            # a few recent programs: a benchmark re-runs one, a decode runs each position's
            # program once, and a gpt2-small step's prepared table holds ~40 MB (measured: RSS
            # grew ~73 MB a step with 256 kept, ~20-35 MB with 4)
            if len(self._prepared) >= 4:
                self._prepared.pop(next(iter(self._prepared)))
            cls = F[:, E.C_CLS]  # counted once per program (a column scan: ~0.1 ms a run)
            n_mxm = int(np.count_nonzero((cls == E.K_LW) | (cls == E.K_MV)))
            # not reordered yet (_in_use_order): that costs more than one run gains (a
            # gpt2-small step: ~0.13 s against ~5 ms), and a decode runs each program once
            pp = _Prepared(self.program, F, offsets, sched, self._rows, self._logme, self._wflag,
                           np.flatnonzero(self._wflag), n_mxm)
            self._prepared[id(self.program)] = pp
        F, offsets, sched = pp.F, pp.offsets, pp.sched
        self._rows, self._logme, self._wflag, self._n_mxm = pp.rows, pp.logme, pp.wflag, pp.n_mxm
        self.schedule = sched
        q_stage = np.array([q.stage for q in chip.queues], np.int64)
        q_index = np.array([q.index for q in chip.queues], np.int64)
        maps = (np.stack([np.asarray(m, np.int64) for m in self.program.maps])
                if self.program.maps else np.zeros((1, chip.lanes), np.int64))
        max_lat = int(latency_table(chip).max())
        ring = 1
        while ring < chip.n_stages * chip.hop_cycles + max_lat + 2:
            ring <<= 1
        stop = max_cycles if max_cycles is not None else (1 << 62)
        busy = np.zeros(len(chip.queues), np.int64)
        if self._ws is None:
            self._ws = E.workspace(chip.streams, ring, chip.n_stages, chip.lanes,
                                   chip.mem_slices, chip.mem_slices * chip.mem_words,
                                   2 * chip.mxm_planes_per_hemisphere, chip.mxm_acc_slots)
        else:
            E.reset_workspace(self._ws)
            self._drop_copies_of(pp.written)  # this run may change words a copy came from
        # this run's cycles start past everything the kept workspace saw (see E.workspace)
        epoch = self._epoch
        self._epoch += sched.length + 4 * ring + chip.n_stages * chip.hop_cycles + max_lat
        mem2, f16tab = self._sram.reshape(-1, chip.lanes), _f16_table()
        args = (sched.cycle, epoch, self._rows, self._logme, self._wflag, sched.queue, sched.rep,
                F, q_stage, q_index, mem2, chip.mem_slices, maps, chip.hop_cycles, chip.bank_words,
                chip.lanes_per_superlane, stop + epoch, busy, f16tab, self._ws)
        compile_in_parallel(args, _cpus())
        status, inst, ev_cycle, da, db, n_done = _run_kernel(args, self._ws, mem2, f16tab,
                                                             self._threaded())
        if status:
            if status == E.H_WEIGHTS_NOT_READY:
                db -= epoch  # a cycle
            self._raise_hazard(int(status), int(inst), int(ev_cycle - epoch), int(da), int(db))
        busy_q = {chip.queues[i].name: int(b) for i, b in enumerate(busy) if b}
        stopped = None
        cycles = sched.length
        if max_cycles is not None and sched.length > max_cycles:
            stopped, cycles = max_cycles, max_cycles
        # the decoded fields and each instance's row, for traces (no copies: references)
        meta = {"fields": F, "rows": self._rows, "program": self.program}
        return RunResult(chip, cycles, int(n_done) + sched.icu_count, sched, busy_q, stopped,
                         meta)

    def _raise_hazard(self, code: int, inst: int, cycle: int, a: int, b: int) -> None:
        sched = self.schedule
        q = self.chip.queues[int(sched.queue[inst])]
        pc = int(sched.pc[inst])
        kind = HAZARD_KINDS.get(code, "hazard")
        if code == E.H_EMPTY:
            msg = (f"reads stream {stream_text(a)} at stage {b} where no value is live "
                   f"(nothing was written upstream on that wave)")
        elif code == E.H_COLLISION:
            msg = (f"writes stream {stream_text(a)} at stage {b} in the same cycle as another "
                   "producer")
        elif code == E.H_BANK:
            msg = f"MEM slice {a} bank {b}: a read and a write in the same cycle"
        elif code == E.H_BUSY:
            msg = f"MXM plane {a} is installing weights in this cycle"
        elif code == E.H_NO_WEIGHTS:
            msg = f"MXM plane {a} has no installed weights (no iw yet)"
        elif code == E.H_WEIGHTS_NOT_READY:
            msg = f"MXM plane {a} weights are still installing (usable from cycle {b})"
        elif code == E.H_ACC_NOT_READY:
            msg = f"accumulator slot {b} of MXM plane {a} holds no finished result yet"
        elif code == E.H_ACC_TYPE:
            msg = (f"MXM plane {a}: operand types do not match the weights or the accumulator "
                   f"(slot {b})")
        elif code == E.H_ADDR:
            msg = f"data-dependent address {a} is outside slice {b}"
        else:
            msg = f"hazard code {code}"
        self._static_error(q.name, pc, msg, kind=kind, cycle=cycle)


def run_program(program: Program, chip: Chip | str | None = None,
                inputs: dict[str, np.ndarray] | None = None,
                max_cycles: int | None = None) -> tuple[RunResult, Machine]:
    """Convenience: build a Machine, load inputs, run it."""
    m = Machine(program, chip)
    for k, v in (inputs or {}).items():
        m.load(k, v)
    return m.run(max_cycles=max_cycles), m


__all__ = ["HAZARD_KINDS", "INSTRUCTIONS", "Machine", "RunResult", "run_program"]
