"""The compiler's scheduler: reservation tables for queues, stream waves and SRAM banks.

Every vector value lives in MEM (its byte planes in g slices at one address); an operation is
placed at the earliest cycle at which its operands can be read onto free stream waves, its unit
is free, and its result can ride a free wave to free slices. Nothing is left to run time.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from lpu.errors import LpuError
from lpu.isa.chips import Chip, get_chip
from lpu.isa.dtypes import nbytes
from lpu.isa.table import BY_MNEMONIC, DTYPES
from lpu.kernels.builder import Builder
from lpu.kernels.timing import EAST, WEST, lat, stream


@dataclass(frozen=True)
class Vec:
    """One vector of `dtype` in MEM: byte plane j at (slices[j], addr); usable from `ready`."""

    dtype: str
    slices: tuple[str, ...]
    addr: int
    ready: int = 0
    # (stage, cycle, stream group): where the value passes its producer's stage on its way to
    # MEM, so a consumer at that stage and cycle can take it straight off the stream
    fwd: tuple[int, int, str] | None = None

    @property
    def g(self) -> int:
        return nbytes(self.dtype)


class Resources:
    """Who uses which queue, stream wave and SRAM bank in which cycle."""

    def __init__(self, chip: Chip) -> None:
        self.chip = chip
        self.hop = chip.hop_cycles
        self.queue_busy: dict[str, set[int]] = {}
        # (dir, stream, wave) -> list of (lo, hi) stage intervals carrying a value
        self.waves: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
        # weight rows on their way to the MXM planes, one record per `lw` cycle rather than one
        # entry per stream: (dir, wave) -> (k, intervals): streams 0..k-1 each carry a row over
        # the stage interval intervals[stream] (kernels/gemv.py)
        self.weight_waves: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]] = {}
        self.bank_use: set[tuple[int, int, int]] = set()  # (slice, bank, cycle)

    def wave(self, d: int, stage: int, cycle: int) -> int:
        hop = self.hop
        return cycle - stage * hop if d == EAST else cycle + stage * hop

    def queue_free(self, q: str, t: int) -> bool:
        return t >= 0 and t not in self.queue_busy.get(q, ())

    def take_queue(self, q: str, t: int) -> None:
        busy = self.queue_busy.setdefault(q, set())
        if t in busy or t < 0:
            raise AssertionError(f"queue {q} double-booked at {t}")
        busy.add(t)

    def take_stream(self, d: int, sid: int, w: int, lo: int, hi: int) -> None:
        self.waves.setdefault((d, sid, w), []).append((lo, hi))

    def bank_free(self, sl: int, bank: int, t: int) -> bool:
        return (sl, bank, t) not in self.bank_use

    def take_bank(self, sl: int, bank: int, t: int) -> None:
        self.bank_use.add((sl, bank, t))

    def take_banks(self, uses: Iterable[tuple[int, int, int]]) -> None:
        """take_bank for many (slice, bank, cycle) at once (a weight block's reads)."""
        self.bank_use.update(uses)

    def group_free(self, d: int, base: int, g: int, w: int, lo: int, hi: int) -> bool:
        """Are streams base..base+g-1 free on wave w over [lo, hi] (as find_group asks)?"""
        if base < 0 or base + g > self.chip.streams:
            return False
        ww = self.weight_waves.get((d, w))
        for sid in range(base, base + g):
            if ww is not None and sid < ww[0]:
                a, b = ww[1][sid]
                if not (hi < a or b < lo):
                    return False
            ivs = self.waves.get((d, sid, w))
            if ivs and not all(hi < a or b < lo for a, b in ivs):
                return False
        return True

    def find_group(self, d: int, g: int, w: int, lo: int, hi: int, top: bool = False
                   ) -> int | None:
        """Lowest (top: highest) base stream id with g consecutive streams free on wave w
        over [lo, hi]: no weight row (one record per lw wave) and no other value on them
        there. (The compiler asks this ~10^5 times a step, so each stream is looked at only
        when the search reaches it.)"""
        n = self.chip.streams
        ww = self.weight_waves.get((d, w))
        waves = self.waves
        run = 0  # free streams in a row ending at sid (each looked at only when reached)
        for sid in range(n - 1, -1, -1) if top else range(n):
            free = True
            if ww is not None and sid < ww[0]:
                a, b = ww[1][sid]
                free = hi < a or b < lo
            if free:
                ivs = waves.get((d, sid, w))
                free = not ivs or all(hi < a or b < lo for a, b in ivs)
            run = run + 1 if free else 0
            if run >= g:
                return sid if top else sid - g + 1
        return None


NEVER_BUSY = 1 << 62  # as vector()'s `now`: any freed place (the caller waits for it)

# Freed places are taken only where a stage group's bank is full, and then only down to the
# last RESERVE_WORDS words of each slice's bank, which stay for data the host loads that is
# placed late (a lane mask): a program that fits without them is unchanged (taking freed
# places first concentrated writes on fewer slices and cost gpt2-small 1-3 % of its cycles).
RESERVE_WORDS = 16


class MemAlloc:
    """Addresses per (slice, bank); vectors of g planes take g slices in one stage group. A
    place freed (free()) is taken again by a vector whose operation issues after the last read
    of the value that was there."""

    def __init__(self, chip: Chip, exclude: set[str] | None = None) -> None:
        self.chip = chip
        self.next: dict[tuple[str, int], int] = {}
        self.exclude = set(exclude or ())  # slices that belong to the weight streams
        self.bank_words = chip.bank_words
        self._by_distance: dict[int, list[str]] = {}
        self._cand: dict[tuple, list] = {}
        # (g, bank, its slices as a set) -> freed places (free after cycle, serial, slices,
        # address), earliest free first; and the slice sets that have some, per (g, bank)
        self.freed: dict[tuple, list[tuple[int, int, tuple[str, ...], int]]] = {}
        self._freed_sets: dict[tuple[int, int], set[frozenset[str]]] = {}
        self._serial = 0
        self.taken_after = -1  # the last place vector() gave: its old value's last read, or -1
        # far vectors (vector(far=True)): the spare room of the weight slices, from each one's
        # first word above the weights (open_far) up
        self.floor: dict[str, int] = {}

    def open_far(self, floor: int) -> None:
        """Let far vectors take the weight slices' words from `floor` up (the weights stay
        below it: WeightAlloc's top)."""
        self.floor = {q: floor for q in self.exclude}
        self._by_distance.clear()
        self._cand.clear()

    def free(self, v: Vec, after: int) -> None:
        """v's place may hold a new value written by an operation issued after cycle `after`
        (the last cycle anything reads v, or v lands)."""
        self._serial += 1
        gb = (v.g, v.addr // self.bank_words)
        fs = frozenset(v.slices)
        self._freed_sets.setdefault(gb, set()).add(fs)
        bisect.insort(self.freed.setdefault(gb + (fs,), []),
                      (after, self._serial, v.slices, v.addr))

    def _take_freed(self, g: int, bank: int, f: tuple) -> None:
        key = (g, bank, frozenset(f[2]))
        self.freed[key].remove(f)
        if not self.freed[key]:
            del self.freed[key]
            self._freed_sets[(g, bank)].discard(key[2])

    def slices_by_distance(self, stage: int, far: bool = False) -> list[str]:
        """The slices for vectors (far: the weight slices with spare room), nearest first."""
        if (stage, far) not in self._by_distance:
            qs = [q for q in self.chip.queues if q.unit == "mem" and (
                q.name in self.floor if far else q.name not in self.exclude)]
            qs.sort(key=lambda q: (abs(q.stage - stage), q.index))
            self._by_distance[(stage, far)] = [q.name for q in qs]
        return self._by_distance[(stage, far)]

    def _candidates(self, near_stage: int, h: str, g: int, avoid: tuple[str, ...],
                    far: bool = False, groups: int = 3, bank: int = 0
                    ) -> list[tuple[list[str], dict[str, int], list[tuple]]]:
        """Slice groups to choose a vector's planes from: for each of the `groups` nearest
        stages of hemisphere h, the slices at or beyond it (enough for g planes), their
        distances, and per slice what candidates() sorts by but the next free address:
        (its `next` key in this bank, the bank's first word it may take, distance, position
        in the group, name). Asked ~10^5 times a step: built once per key."""
        key = (near_stage, h, g, avoid, far, groups, bank)
        if key not in self._cand:
            chip = self.chip
            names = [q for q in self.slices_by_distance(near_stage, far)
                     if q.startswith(f"mem.{h}") and q not in avoid]
            dist = {q: abs(chip.queue(q).stage - near_stage) for q in names}
            base = bank * chip.bank_words
            floor = self.floor if far else {}
            out = []
            for d0 in sorted(set(dist.values()))[:groups]:
                grp = [q for q in names if dist[q] >= d0][: max(g, chip.mem_slices_per_stage)]
                out.append((grp, dist, [((q, bank), max(base, floor.get(q, 0)), dist[q], i, q)
                                        for i, q in enumerate(grp)]))
            if len(self._cand) > 4096:
                self._cand.clear()
            self._cand[key] = out
        return self._cand[key]

    def vector(self, dtype: str, near_stage: int, hemisphere: str | None = None,
               n: int = 1, avoid: tuple[str, ...] = (),
               accept: Callable[[Vec], bool] | None = None,
               cands: list | None = None, now: int | None = None, far: bool = False,
               groups: int = 3) -> Vec | None:
        """Room for n consecutive vectors near a stage: the g planes go to the least-used
        slices and bank among the few nearest stage groups (both hemispheres unless one is
        named), so that operands of one operation rarely share a slice, and reads and writes
        rarely a bank; where a bank there is full, a freed place, for a vector written by an
        operation issued in cycle `now`, after the place's last read. With accept, the best
        place it accepts (None if it accepts none). cands: what candidates() gave for the same
        arguments. far: in the weight slices' spare room (open_far); groups: how many of the
        nearest stage groups to choose among."""
        if cands is None:
            cands = self.candidates(dtype, near_stage, hemisphere, n, avoid, now is not None,
                                    far, groups)
        for _, pick, addr, bank, freed in cands:
            v = Vec(dtype, pick, addr)
            if freed is not None and (now is None or now <= freed[0]):
                continue  # its old value may still be read then
            if accept is None or accept(v):
                self.taken_after = -1 if freed is None else freed[0]
                if freed is not None:
                    self._take_freed(len(pick), bank, freed)
                else:
                    for q in pick:
                        self.next[(q, bank)] = addr + n
                return v
        if accept is None:  # only freed places left, and no time to take one at
            raise LpuError(f"out of SRAM for a {dtype} vector near stage {near_stage}")
        return None

    def candidates(self, dtype: str, near_stage: int, hemisphere: str | None = None,
                   n: int = 1, avoid: tuple[str, ...] = (), run_time: bool = True,
                   far: bool = False, groups: int = 3) -> list:
        """vector()'s places, best first: (score, slices, address, bank, the freed place or
        None). An operation tried cycle after cycle asks for them once (they change only when a
        vector is placed). run_time: for a value written while the program runs, which leaves
        the reserve and may take freed places (not for data the host loads)."""
        g = nbytes(dtype)
        chip = self.chip
        nxt = self.next
        cands = []
        for bank in range(chip.mem_banks):
            base = bank * chip.bank_words
            for h in ("w", "e") if hemisphere is None else (hemisphere,):
                for grp, dists, slots in self._candidates(near_stage, h, g, avoid, far,
                                                          groups, bank):
                    if len(grp) < g:
                        continue
                    # least used first, then nearest, then as listed (a stable sort's order)
                    keyed = sorted([(nxt.get(k, d0), d, i, q)
                                    for k, d0, d, i, q in slots])[:g]
                    pick = tuple(k[3] for k in keyed)
                    addr = keyed[-1][0]  # the highest next address of the g picked
                    top = base + chip.bank_words - (RESERVE_WORDS if run_time else 0)
                    if addr + n <= top:
                        cands.append(((addr - base) * 4 + max(k[1] for k in keyed), pick,
                                      addr, bank, None))
                    elif n == 1 and run_time:  # the group's bank is full: its freed places
                        allowed = set(grp)
                        # in a fixed order (a set's order would follow string hashes)
                        for fs in sorted(self._freed_sets.get((g, bank), ()), key=sorted):
                            if fs <= allowed:
                                f = self.freed[(g, bank, fs)][0]  # the earliest free
                                cands.append((chip.bank_words * 4 + max(dists[q] for q in fs),
                                              f[2], f[3], bank, f))
        if not cands:
            raise LpuError(f"out of SRAM for a {dtype} vector near stage {near_stage}")
        cands.sort(key=lambda c: c[0])  # stable: ties keep the order above
        return cands


def weight_slices(chip: Chip, hemisphere: str) -> list[str]:
    """The slices that hold weights: the farthest from the VXM, as many as there are streams
    (word q of a block lives in the (q mod n)-th, kernels/gemv.py), leaving the slices near
    the VXM for activations, results and the KV cache."""
    n = chip.mem_slices_per_hemisphere
    keep = max(n - chip.streams, min(n // 2, 12)) if n > chip.streams else n // 2
    return [f"mem.{hemisphere}{i}" for i in range(keep, n)]


class Scheduler:
    """Places operations ASAP under the reservation tables and emits them into a Builder."""

    latency_only = False

    def __init__(self, chip: Chip | str, source: str = "<compiled>") -> None:
        self.chip = get_chip(chip) if isinstance(chip, str) else chip
        self.b = Builder(self.chip, source)
        self.res = Resources(self.chip)
        self.mem = MemAlloc(self.chip, exclude={q for h in ("w", "e")
                                                for q in weight_slices(self.chip, h)})
        self.last_cycle = 0  # last cycle anything lands
        self.vxm_queues = [q.name for q in self.chip.queues if q.unit == "vxm"]
        self.sxm_queues = [q.name for q in self.chip.queues if q.unit == "sxm"]
        # each hemisphere's SXM stage, beside which values the SXM takes next are kept
        self.sxm_stage = {q.hemisphere: q.stage for q in self.chip.queues if q.unit == "sxm"}
        self._groups: dict[str, dict[int, list[str]]] = {}  # unit: {stage: its queues}
        for q in self.chip.queues:
            if q.unit in ("vxm", "sxm"):
                self._groups.setdefault(q.unit, {}).setdefault(q.stage, []).append(q.name)
        self.ops = 0
        # MXM plane state that carries from one GEMV to the next: when each plane may load
        # again (ready), the next accumulator slot (slot), when each slot was read out
        # (slot_free), each plane's last product (last_mv), each hemisphere's weight-feed
        # cursor (feed) and weight traffic so far (load)
        self.mxm_state: dict = {"ready": {}, "slot": {}, "slot_free": {}}
        self._consts: dict[str, Vec] = {}  # const_bits, by name
        self._stages = {q.name: q.stage for q in self.chip.queues}
        self._slice = {q.name: q.index for q in self.chip.queues}
        self.hop = self.chip.hop_cycles
        self.bank_words = self.chip.bank_words
        self._rd = lat(self.chip, "read")
        self._span: dict[tuple[str, ...], tuple[list[int], int, int]] = {}
        # each vector place's last read so far, and the results of op() in each open scope
        self._last_read: dict[tuple[tuple[str, ...], int], int] = {}
        self._scopes: list[list[Vec]] = []

    # ---- moving vectors ----------------------------------------------------------------------
    def _stage(self, q: str) -> int:
        return self._stages[q]

    def _fetch_plan(self, v: Vec, stage: int, t: int, top: bool = False,
                    at: int | None = None) -> tuple[int, int, list] | None:
        """Can v's planes all pass `stage` in cycle t on one free stream group? -> (dir, base,
        reads) with reads = [(slice, issue cycle)]; top: the highest free group; at: only the
        group from that stream on."""
        span = self._span.get(v.slices)
        if span is None:
            st = [self._stages[q] for q in v.slices]
            span = self._span[v.slices] = (st, min(st), max(st))
        stages, s_lo, s_hi = span
        if s_hi < stage:  # every plane west of the stage
            d = EAST
        elif s_lo > stage:
            d = WEST
        elif s_lo == s_hi == stage:
            d = EAST
        else:
            return None
        res = self.res
        w = res.wave(d, stage, t)
        reads = []
        bank = v.addr // self.bank_words
        hop, rd = self.hop, self._rd
        for q, s in zip(v.slices, stages, strict=True):
            ti = t - abs(stage - s) * hop - rd
            if ti < v.ready or not res.queue_free(q, ti):
                return None
            if not res.bank_free(self._slice[q], bank, ti):
                return None
            reads.append((q, ti, s))
        lo, hi = min(s_lo, stage), max(s_hi, stage)
        if at is not None:
            return (d, at, reads) if res.group_free(d, at, v.g, w, lo, hi) else None
        base = res.find_group(d, v.g, w, lo, hi, top)
        if base is None:
            return None
        return d, base, reads

    def _take_fetch(self, v: Vec, stage: int, t: int, plan: tuple[int, int, list]) -> str:
        d, base, reads = plan
        w = self.res.wave(d, stage, t)
        key = (v.slices, v.addr)
        self._last_read[key] = max(self._last_read.get(key, -1), max(r[1] for r in reads))
        for j, (q, ti, s) in enumerate(reads):
            self.res.take_queue(q, ti)
            self.res.take_bank(self._slice[q], v.addr // self.bank_words, ti)
            self.res.take_stream(d, base + j, w, min(s, stage), max(s, stage))
            self.b.at(q, ti, "read", addr=v.addr, z=stream(d, base + j))
        return stream(d, base)

    def _store_plan(self, dst: Vec, stage: int, t: int) -> tuple[int, int, list] | None:
        """Can a result written at `stage` in cycle t reach dst's slices on a free group?"""
        stages = [self._stage(q) for q in dst.slices]
        if all(s >= stage for s in stages):
            d = EAST
        elif all(s <= stage for s in stages):
            d = WEST
        else:
            return None
        w = self.res.wave(d, stage, t)
        wr = lat(self.chip, "write")
        writes = []
        for q, s in zip(dst.slices, stages, strict=True):
            ti = t + abs(s - stage) * self.hop
            sl = self._slice[q]
            if not self.res.queue_free(q, ti) or not self.res.bank_free(
                    sl, dst.addr // self.bank_words, ti + wr):
                return None
            writes.append((q, ti, s))
        lo, hi = min(stages + [stage]), max(stages + [stage])
        base = self.res.find_group(d, dst.g, w, lo, hi)
        if base is None:
            return None
        return d, base, writes

    def _take_store(self, dst: Vec, stage: int, t: int, plan) -> tuple[str, int]:
        d, base, writes = plan
        w = self.res.wave(d, stage, t)
        wr = lat(self.chip, "write")
        done = 0
        for j, (q, ti, s) in enumerate(writes):
            self.res.take_queue(q, ti)
            self.res.take_bank(self._slice[q], dst.addr // self.bank_words, ti + wr)
            self.res.take_stream(d, base + j, w, min(s, stage), max(s, stage))
            self.b.at(q, ti, "write", addr=dst.addr, a=stream(d, base + j))
            done = max(done, ti + wr)
        self.last_cycle = max(self.last_cycle, done)
        return stream(d, base), done

    # ---- operations -----------------------------------------------------------------------------
    def op(self, mnemonic: str, srcs: list[Vec], out_dtype: str, *, dt: str | None = None,
           queue_pool: list[str] | None = None, dst: Vec | None = None, earliest: int = 0,
           avoid: tuple[str, ...] = (), feed: tuple | None = None, chain: bool = True,
           far: tuple[int, str] | None = None, **extra) -> Vec:
        """Schedule a one-result VXM or SXM operation ASAP; returns the result vector in MEM,
        in none of the slices `avoid` names (those of a value it will be read beside, which
        would otherwise be copied first: see _separate). feed = (mnemonic, srcs, fields[,
        feed]): an operation whose result is this one's first operand, taken off its stream as
        it passes (chained: never written to MEM, which saves the slices' issue slots of a write
        and a read); srcs are then the other operands. See _feed_plan. With chain=False the
        feed's operations are scheduled first, each on its own (their results in MEM).
        far = (stage, hemisphere): the result goes to the weight slices' spare room nearest
        that stage (MemAlloc.open_far) instead of beside the operation's unit."""
        if feed is not None and not chain:
            srcs, feed = [self._unchained(feed)] + list(srcs), None
        ins = BY_MNEMONIC[mnemonic]
        srcs = self._separate(list(srcs), ins.unit)
        if feed is not None:
            feed = self._separate_feed(feed)
        pool = queue_pool or (self.vxm_queues if ins.unit == "vxm" else self.sxm_queues)
        L = lat(self.chip, mnemonic)
        t = max([earliest] + [min(v.ready, v.fwd[1]) if v.fwd else v.ready for v in srcs])
        f = feed
        while f is not None:  # no earlier than the chain's operands allow
            t = max([t] + [(min(v.ready, v.fwd[1]) if v.fwd else v.ready) + lat(self.chip, f[0])
                           for v in f[1]])
            f = f[3] if len(f) > 3 else None
        stage0 = self._stage(pool[0])
        place = dst is None  # choose the result's slices per cycle tried: ones free to write
        cands = None  # where the result may go, asked for once
        groups: dict[int, list[str]] = {}
        for q in pool:  # queues at one stage see the same streams: plan once per stage
            groups.setdefault(self._stage(q), []).append(q)
        every = list(dict.fromkeys(srcs))  # x * x reads x once
        passing = [v for v in every if v.fwd]  # on a stream past their producer's stage
        for _ in range(20000):
            for st, qs in groups.items():
                q = next((q for q in qs if self.res.queue_free(q, t)), None)
                if q is None:
                    continue
                plans = []
                ok = True
                uniq = every
                fwd = {}
                if passing:  # taken straight off the stream where and when it passes
                    fwd = {v: v.fwd[2] for v in passing if v.fwd[0] == st and v.fwd[1] == t}
                    if fwd:
                        uniq = [v for v in every if v not in fwd]
                fed = None
                if feed is not None:
                    fed = self._feed_plan(feed, st, t)
                    ok = fed is not None
                for v in uniq if ok else ():
                    p = self._fetch_plan(v, st, t)
                    if p is None:
                        ok = False
                        break
                    plans.append(p)
                    # reserve tentatively so two operands do not pick the same streams
                    self._tentative(v, st, t, p, add=True)
                if ok and place:
                    plans_st: list = []

                    def free_to_write(v: Vec, st=st, t=t, out=plans_st) -> bool:
                        out[:] = [self._store_plan(v, st, t + L)]
                        return out[0] is not None

                    if cands is None:
                        cands = (self.mem.candidates(out_dtype, stage0, avoid=avoid)
                                 if far is None else self.mem.candidates(
                                     out_dtype, far[0], far[1], avoid=avoid, far=True))
                    dst = self.mem.vector(out_dtype, stage0, accept=free_to_write, cands=cands,
                                          now=NEVER_BUSY if self.latency_only else t)
                    ok = dst is not None
                    sp = plans_st[0] if ok else None
                elif ok:
                    sp = self._store_plan(dst, st, t + L)
                    ok = sp is not None
                for v, p in zip(uniq, plans, strict=False):
                    self._tentative(v, st, t, p, add=False)
                if fed is not None:
                    self._feed_tentative(feed, fed, add=False)
                if not ok:
                    continue
                self.res.take_queue(q, t)
                got = {v: self._take_fetch(v, st, t, p) for v, p in zip(uniq, plans, strict=True)}
                got.update(fwd)
                names = [got[v] for v in srcs]
                if fed is not None:
                    names.insert(0, self._take_feed(feed, fed))
                zname, done = self._take_store(dst, st, t + L, sp)
                self._emit(q, t, mnemonic, names, zname, extra,
                           dt or (srcs[0].dtype if srcs else self._dtype(feed)))
                out = Vec(dst.dtype, dst.slices, dst.addr, done, (st, t + L, zname))
                if place:
                    self.temporary(out)
                return out
            t += 1
        raise LpuError(f"could not schedule {mnemonic}: no free slot found")

    def _unchained(self, feed: tuple) -> Vec:
        """A feed's operations scheduled one by one; returns the last one's result (of the
        dtype a cvt converts to, else its operands')."""
        inner = feed[3] if len(feed) > 3 else None
        srcs = ([] if inner is None else [self._unchained(inner)]) + list(feed[1])
        return self.op(feed[0], srcs, feed[2].get("to", srcs[0].dtype), **feed[2])

    def _separate_feed(self, feed: tuple) -> tuple:
        """feed (and its own feed) with operands that share a slice copied apart first."""
        inner = feed[3] if len(feed) > 3 else None
        return (feed[0], self._separate(list(feed[1]), BY_MNEMONIC[feed[0]].unit), feed[2],
                None if inner is None else self._separate_feed(inner))

    def _width(self, feed: tuple) -> int:
        """Streams a feed's result takes: the bytes of the dtype a cvt converts to, else of
        its widest operand, fed ones included."""
        if "to" in feed[2]:
            return nbytes(feed[2]["to"])
        inner = feed[3] if len(feed) > 3 else None
        return max([v.g for v in feed[1]] + ([] if inner is None else [self._width(inner)]))

    def _dtype(self, feed: tuple) -> str:
        """A feed's operands' dtype (its first operand's, fed or not)."""
        return feed[1][0].dtype if feed[1] else self._dtype(feed[3])

    def _feed_plan(self, feed: tuple, st: int, t: int) -> tuple | None:
        """Where and when feed's operation can issue so that its result passes stage st in
        cycle t, on a stream group free all the way: (queue, issue cycle, its stage, its
        operands' fetch plans (None: taken off its producer's stream as it passes), direction,
        stream base, wave, stage interval, its own feed's plan), reserved tentatively; or None. feed = (mnemonic, srcs, fields[, feed]): with a
        feed of its own, that one's result is its first operand. Its result takes _width
        streams."""
        mnemonic, srcs, inner = feed[0], feed[1], feed[3] if len(feed) > 3 else None
        ins = BY_MNEMONIC[mnemonic]
        L = lat(self.chip, mnemonic)
        g = self._width(feed)
        for st1, qs in self._groups[ins.unit].items():  # one free queue per stage is enough
            t1 = t - L - abs(st - st1) * self.hop
            q1 = next((q for q in qs if self.res.queue_free(q, t1)), None)
            if q1 is None:
                continue
            inner_fed = None if inner is None else self._feed_plan(inner, st1, t1)
            if inner is not None and inner_fed is None:
                continue
            plans: list = []
            uniq = list(dict.fromkeys(srcs))  # x - x reads x once
            for v in uniq:
                if v.fwd is not None and v.fwd[:2] == (st1, t1):  # off its producer's stream
                    plans.append(None)
                    continue
                p = self._fetch_plan(v, st1, t1)
                if p is None:
                    break
                plans.append(p)
                self._tentative(v, st1, t1, p, add=True)
            d = EAST if st >= st1 else WEST
            w = self.res.wave(d, st1, t1 + L)
            base = (self.res.find_group(d, g, w, min(st, st1), max(st, st1))
                    if len(plans) == len(uniq) else None)
            fed = (q1, t1, st1, plans, d, base, w, min(st, st1), max(st, st1), inner_fed)
            if base is not None:
                self._feed_tentative(feed, fed, add=True, operands=False)
                return fed
            for v, p in zip(uniq, plans, strict=False):
                if p is not None:
                    self._tentative(v, st1, t1, p, add=False)
            if inner_fed is not None:
                self._feed_tentative(inner, inner_fed, add=False)
        return None

    def _feed_tentative(self, feed: tuple, fed: tuple, add: bool, operands: bool = True
                        ) -> None:
        """Add or remove the tentative reservations of a feed plan: its result's streams, and
        with operands its operands' reads and its own feed's."""
        _, t1, st1, plans, d, base, w, lo, hi, inner_fed = fed
        for j in range(self._width(feed)):  # the result's streams, producer to consumer
            key = (d, base + j, w)
            if add:
                self.res.waves.setdefault(key, []).append((lo, hi))
            else:
                self.res.waves[key].remove((lo, hi))
        if operands:
            for v, p in zip(dict.fromkeys(feed[1]), plans, strict=True):
                if p is not None:  # None: taken off its producer's stream
                    self._tentative(v, st1, t1, p, add=add)
            if inner_fed is not None:
                self._feed_tentative(feed[3], inner_fed, add=add)

    def _take_feed(self, feed: tuple, fed: tuple) -> str:
        """Issue feed's operation (and its own feed's) as planned; returns the stream its
        result rides."""
        mnemonic, srcs, extra = feed[:3]
        q1, t1, st1, plans, d, base, w, lo, hi, inner_fed = fed
        got = {v: v.fwd[2] if p is None else self._take_fetch(v, st1, t1, p)
               for v, p in zip(dict.fromkeys(srcs), plans, strict=True)}
        names = [got[v] for v in srcs]
        if inner_fed is not None:
            names.insert(0, self._take_feed(feed[3], inner_fed))
        self.res.take_queue(q1, t1)
        for j in range(self._width(feed)):
            self.res.take_stream(d, base + j, w, lo, hi)
        self._emit(q1, t1, mnemonic, names, stream(d, base), extra, self._dtype(feed))
        return stream(d, base)

    def _emit(self, q: str, t: int, mnemonic: str, names: list[str], z: str, extra: dict,
              dt: str) -> None:
        """One VXM or SXM instruction: its stream operands a, b in order, its result z, and
        its dtype where it has one and extra does not name it."""
        fields = [o.name for o in BY_MNEMONIC[mnemonic].operands]
        ops = dict(extra)
        for f, nm in zip([f for f in ("a", "b") if f in fields], names, strict=False):
            ops[f] = nm
        ops["z"] = z
        if "dt" in fields and "dt" not in ops:
            ops["dt"] = dt
        self.b.at(q, t, mnemonic, **ops)
        self.ops += 1

    @contextmanager
    def scope(self) -> Iterator[list[Vec]]:
        """Free, at the end of the block, the places of the results op() placed in it, but
        those the block puts in the list it gets: every read of the others is scheduled by then
        (nothing outside the block holds them), so a later value may take their places once
        those reads are done."""
        keep: list[Vec] = []
        self._scopes.append([])
        try:
            yield keep
        finally:
            made = self._scopes.pop()
        kept = {(v.slices, v.addr) for v in keep}
        for v in made:
            key = (v.slices, v.addr)
            if key not in kept:
                self.mem.free(v, max(self._last_read.get(key, -1), v.ready))

    def temporary(self, v: Vec) -> None:
        """v was placed outside op() (a copy, a GEMV's output): the open scope may free it."""
        if self._scopes:
            self._scopes[-1].append(v)

    def _separate(self, srcs: list[Vec], unit: str) -> list[Vec]:
        """Operands read in one cycle cannot share a slice: copy one elsewhere first."""
        out: list[Vec] = []
        for v in srcs:
            clash = [u for u in out if u != v and set(u.slices) & set(v.slices)]
            if clash:
                taken = tuple(q for u in out for q in u.slices)
                # a freed place: the copy issues after its last read
                dst = self.mem.vector(v.dtype, self.chip.vxm_stage, avoid=taken, now=NEVER_BUSY)
                v = self.op("mov", [v], v.dtype, dst=dst, earliest=self.mem.taken_after + 1)
                self.temporary(v)
            out.append(v)
        return out

    def _tentative(self, v: Vec, stage: int, t: int, plan, add: bool) -> None:
        d, base, reads = plan
        w = self.res.wave(d, stage, t)
        for j, (q, ti, s) in enumerate(reads):
            key = (d, base + j, w)
            iv = (min(s, stage), max(s, stage))
            if add:
                self.res.waves.setdefault(key, []).append(iv)
                self.res.queue_busy.setdefault(q, set()).add(ti)
            else:
                self.res.waves[key].remove(iv)
                self.res.queue_busy[q].discard(ti)

    # ---- data ----------------------------------------------------------------------------------
    def lane_mask(self, n: int) -> Vec:
        """A constant f32-typed bit mask: all ones in lanes < n, zero above (for `and`)."""
        return self.const_bits(f"const.mask{n}", "f32",
                               np.where(np.arange(self.chip.lanes) < n, 0xFFFFFFFF, 0))

    def const_bits(self, name: str, dtype: str, bits: np.ndarray) -> Vec:
        """A one-vector constant of a float dtype given by its lanes' bit patterns (a mask for
        and/or), placed at its first use under this name."""
        if name not in self._consts:
            u = {2: np.uint16, 4: np.uint32}[nbytes(dtype)]
            f = {2: np.float16, 4: np.float32}[nbytes(dtype)]
            (self._consts[name],) = self.place(name, dtype, np.asarray(bits).astype(u).view(f),
                                               self.chip.lanes)
        return self._consts[name]

    def place(self, name: str, dtype: str, values: np.ndarray | None, n_elems: int,
              near_stage: int | None = None, hemisphere: str | None = None) -> list[Vec]:
        """Place a 1-D tensor as ceil(n/lanes) vectors near a stage; returns its vectors."""
        L = self.chip.lanes
        nv = -(-n_elems // L)
        stage = self.chip.vxm_stage if near_stage is None else near_stage
        vecs = [self.mem.vector(dtype, stage, hemisphere) for _ in range(nv)]
        placement = [(v.slices[j], v.addr, 1) for v in vecs for j in range(v.g)]
        self.b.data(name, dtype, (n_elems,), placement, values)
        return vecs

    def output(self, name: str, vecs: list[Vec], n_elems: int) -> None:
        placement = [(v.slices[j], v.addr, 1) for v in vecs for j in range(v.g)]
        self.b.data(name, vecs[0].dtype, (n_elems,), placement)

    def const(self, name: str, dtype: str, values: np.ndarray,
              near_stage: int | None = None) -> list[Vec]:
        return self.place(name, dtype, np.asarray(values), int(np.asarray(values).size),
                          near_stage)

    def predicted_cycles(self) -> int:
        return self.last_cycle + 1 + self.chip.skew

    def build(self):
        return self.b.build()


class _FreeResources(Resources):
    """Reservation tables that never say no: every queue, stream and bank is always free."""

    def queue_free(self, q: str, t: int) -> bool:
        return t >= 0

    def take_queue(self, q: str, t: int) -> None:
        pass

    def take_stream(self, d: int, sid: int, w: int, lo: int, hi: int) -> None:
        pass

    def bank_free(self, sl: int, bank: int, t: int) -> bool:
        return True

    def take_bank(self, sl: int, bank: int, t: int) -> None:
        pass

    def take_banks(self, uses: Iterable[tuple[int, int, int]]) -> None:
        pass

    def find_group(self, d: int, g: int, w: int, lo: int, hi: int, top: bool = False
                   ) -> int | None:
        return 0


class _NullBuilder:
    """Takes the scheduler's instructions and data and keeps nothing."""

    def __init__(self, chip: Chip) -> None:
        self.chip = chip

    def at(self, *args, **kwargs) -> None:
        pass

    def data(self, *args, **kwargs) -> None:
        pass

    def lane_map(self, m: np.ndarray) -> int:
        return 0


class LatencyScheduler(Scheduler):
    """The same placement and dataflow with unlimited queues, streams, banks and SRAM ports, and
    weights already in the MXM planes: every operation starts when its operands can reach it,
    so the last cycle is the program's critical path (the sum of the minimum latencies of the
    read, hops, unit and write-back along its longest chain of dependent operations). Nothing
    is emitted."""

    latency_only = True

    def __init__(self, chip: Chip | str, source: str = "<critical path>", buffered: bool = False,
                 late_block: str = "first") -> None:
        """buffered: the planes' weight buffers hold only what they can, and each GEMV's other
        weights stream after its first input arrives (see kernels.gemv._gemv_latency);
        late_block ("first" or "last"): which output block of a GEMV then waits for them."""
        super().__init__(chip, source)
        self.res = _FreeResources(self.chip)
        self.b = _NullBuilder(self.chip)
        if late_block not in ("first", "last"):
            raise ValueError(f"late_block must be 'first' or 'last', not {late_block!r}")
        self.buffered = buffered
        self.late_block = late_block
        self.gemv_done = 0  # buffered: when the last GEMV's last product can be read out
        # buffered: the input vectors of the GEMVs just scheduled, and their weights
        self.gemv_group: tuple[tuple[Vec, ...], int] = ((), 0)

    def _separate(self, srcs: list[Vec], unit: str) -> list[Vec]:
        return srcs  # unlimited SRAM ports: operands may share a slice

    def build(self):
        raise LpuError("a LatencyScheduler emits no program")


def dtype_ok(name: str) -> str:
    if name not in DTYPES:
        raise LpuError(f"unknown dtype {name}")
    return name
