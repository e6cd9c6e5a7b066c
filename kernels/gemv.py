"""Matrix-vector products tiled over the MXM planes, with weight streaming at full stream rate.

Each hemisphere streams weight rows from its far MEM slices over all its streams toward its MXM
planes, alternating planes so one installs while the other loads; the activation rides the top
streams of one cycle shared by the planes of a hemisphere (weight rows take the streams below
it), a block's rows start in the cycle where the last block's ended, and results flow back to
MEM in the other direction. A weight's slice and address do not depend on the cycles (only the
stream that carries it does), so every decode step finds its weights where the first put them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from lpu._simd import GROUP
from lpu.errors import LpuError
from lpu.isa.chips import Chip
from lpu.isa.dtypes import nbytes
from lpu.isa.program import Segment
from lpu.kernels.sched import NEVER_BUSY, Scheduler, Vec, weight_slices
from lpu.kernels.timing import EAST, WEST, lat, stream


@dataclass
class Hemisphere:
    """The parts of one hemisphere a GEMV uses."""

    name: str  # "w" or "e"
    planes: list[int]
    plane_stage: int
    to_plane: int  # stream direction from MEM toward the planes
    weight_slices: list[str]  # MEM queues holding weights: word q of a block in [q mod n]


def hemispheres(chip: Chip) -> list[Hemisphere]:
    p = chip.mxm_planes_per_hemisphere
    out = []
    for h in ("w", "e"):
        planes = list(range(p)) if h == "w" else list(range(p, 2 * p))
        stage = 0 if h == "w" else chip.n_stages - 1
        out.append(Hemisphere(h, planes, stage, WEST if h == "w" else EAST,
                              weight_slices(chip, h)))
    return out


@dataclass
class GemvPlan:
    """Where a GEMV's weights live: (slice index, address) of every weight word, and its
    timing relative to its start. With packed K tails the weight segment is not W itself but
    one row per weight row the planes load (see arrange)."""

    M: int
    K: int
    wdt: str
    w_slots: np.ndarray  # int64 [rows, kb, g, 2] (packed: [loaded rows, 1, g, 2])
    blocks: int
    notes: dict = field(default_factory=dict)
    # packed K tails: per loaded row (row of W for lanes 0.., its K block, row of W whose
    # tail fills lanes tail..2*tail-1 or -1); None when W is laid out as it is
    layout: np.ndarray | None = None
    tail: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """The shape of the weight segment."""
        if self.layout is None:
            return (self.M, self.K)
        return (len(self.layout), self.lanes)

    @property
    def lanes(self) -> int:
        return int(self.notes["lanes"])

    def arrange(self, W: np.ndarray) -> np.ndarray:
        """W (M, K) as the weight segment holds it: W itself, or one vector per loaded row with
        two rows' K tails side by side (zeros where a row is absent)."""
        if self.layout is None:
            return W
        L, kb = self.lanes, -(-self.K // self.lanes)
        Wp = np.zeros((self.M, kb * L), W.dtype)
        Wp[:, :self.K] = W
        Wp = Wp.reshape(self.M, kb, L)
        out = np.zeros((len(self.layout), L), W.dtype)
        ra, k, rb = self.layout.T
        full = (ra >= 0) & (k < kb - 1)
        out[full] = Wp[ra[full], k[full]]
        t = self.tail
        for rows, lo in ((ra, 0), (rb, t)):  # the last K block: tails only
            sel = (rows >= 0) & (k == kb - 1)
            out[sel, lo:lo + t] = Wp[rows[sel], kb - 1, :t]
        return out


# Weight buffers per MXM plane: lw fills the staging buffer, iw makes it the active one (the
# ISA's model; whether the chip double-buffers is not published, tsp.md marks it assumed).
WEIGHT_BUFFERS = 2


class WeightAlloc:
    """Consecutive addresses in the weight slices, in the order the GEMVs read them."""

    def __init__(self, chip: Chip, top: int | None = None) -> None:
        """top: the words of each weight slice from which other data lives (MemAlloc.open_far)."""
        self.chip = chip
        self.next: dict[str, int] = {}
        self.top = chip.mem_words if top is None else top

    def take(self, q: str, n: int = 1) -> int:
        a = self.next.get(q, 0)
        if a + n > self.top:
            if self.top < self.chip.mem_words:  # the room left above the weights was too small
                raise LpuError(f"the weights overran the room kept for them below word "
                               f"{self.top} of slice {q} (the KV cache lives above it)")
            raise LpuError(f"the weights do not fit: slice {q} is full", hint="use int8 weights "
                           "or a bigger chip (see lpu compile --json for the memory plan)")
        self.next[q] = a + n
        return a

    def used_bytes(self) -> int:
        return sum(self.next.values()) * self.chip.lanes


def blocks_of(M: int, lanes: int) -> list[int]:
    """Rows per output block of a plain M-row GEMV: full blocks, then the remainder."""
    return [min(lanes, M - i) for i in range(0, M, lanes)]


# Packing pays where a GEMV has many output blocks (the LM head): in a layer's short GEMVs the
# permuted activations arrive later than the blocks that need them (measured on gpt2-small,
# `lpu compile --model gpt2-small --weights-dtype int8`). The first blocks, one per plane of
# tsp-v1, stay unpaired for the same reason.
PACK_MIN_BLOCKS = 12
PACK_FIRST_SINGLE = 4
# A cycle that loads fewer rows than its streams could carry (one shared with an activation or
# with the end of the previous block) loads a multiple of ROW_GROUP where a full cycle does, so
# every lw starts at a multiple of it: the emulator transposes aligned groups of rows 16 lanes
# at a time and any other row lane by lane (lpu._simd.group_len). The chip does not care;
# emulating the 4096^2 GEMV took 9.4 ms with unaligned rows against 6.3 ms aligned (one
# alternating run).
ROW_GROUP = GROUP


def units_of(block_rows: list[int], K: int, lanes: int, wdt: str, pack: bool,
             first_single: int = PACK_FIRST_SINGLE) -> tuple[list[tuple[int, ...]], int]:
    """Output blocks in scheduling units: (m,), or a pair (mA, mB) whose last K blocks share one
    loaded block when pack is set, the weights are int8 and both tails fit in one vector (tail
    lanes <= L/2); and the lanes of the last K block in use when packing (else 0).
    Packing needs finite weights (a zero activation lane times inf would be NaN): int8 always is."""
    kb = -(-K // lanes)
    tail = K - (kb - 1) * lanes
    mb = len(block_rows)
    if not (pack and wdt == "i8" and 2 * tail <= lanes and mb >= PACK_MIN_BLOCKS):
        return [(m,) for m in range(mb)], 0
    m = min(first_single, mb)
    units: list[tuple[int, ...]] = [(i,) for i in range(m)]
    while m + 1 < mb:
        units.append((m, m + 1))
        m += 2
    if m < mb:
        units.append((m,))
    return units, tail


def loaded_rows(block_rows: list[int], K: int, lanes: int, wdt: str, pack: bool) -> int:
    """Weight rows a GEMV streams into the planes (per byte plane): every row of every K block,
    less what packed tails share."""
    units, _ = units_of(block_rows, K, lanes, wdt, pack)
    kb = -(-K // lanes)
    return sum(_unit_rows([block_rows[m] for m in u], kb) for u in units)


def _unit_rows(rows: list[int], kb: int) -> int:
    """Weight rows one unit streams: its blocks' rows in every K block but the last, and the
    last K block once (shared by a pair; for a single block that is just its rows again)."""
    return (kb - 1) * sum(rows) + max(rows)


def gemv(s: Scheduler, walloc: WeightAlloc, M: int | list[int], K: int, wdt: str,
         xs: list[Vec], earliest: int = 0, hems: list[Hemisphere] | None = None,
         mask: bool = True, pack: bool = False, split: bool = False,
         n_weights: int | None = None, late: bool | str = True
         ) -> tuple[list[Vec], GemvPlan]:
    """Schedule y = W @ x with x given as f16 vectors in MEM. M is a row count, or a list with
    the rows of each output block (a block may use fewer lanes than the vector has, e.g. a
    head-aligned layout); the weights are the valid rows of all blocks, in order. Returns one
    f32 output vector per block (lanes past a block's rows are zero when mask is set) and the
    weight placement.

    pack: two output blocks share one loaded block for their last K block when its tail fits
    twice in a vector (K = 768: 128 lanes). That block holds block A's tails in lanes 0..t-1
    and block B's in t..2t-1, and is multiplied twice: by the tail of x with the other lanes
    zeroed (into A's accumulator), then by it moved up t lanes (into B's). Each product sum is
    the unpacked one plus zero terms, so the bits are the same; the weight segment is then the
    packed rows (GemvPlan.arrange).

    split: a hemisphere with more planes than output blocks in a group gives an output block's
    last K block to an idle plane, and one VXM add joins the two accumulators (see _turns).

    n_weights, late: for a LatencyScheduler with `buffered` set (see _gemv_latency): the
    matrix's weights as the model has them (default: block rows x K), and whether one output
    block is delayed by the weights the planes cannot hold ("group": by those of this GEMV and
    the ones just before it on the same input)."""
    chip = s.chip
    L = chip.lanes
    g = nbytes(wdt)
    if wdt not in ("f16", "i8"):
        raise LpuError("GEMV weights must be f16 or i8")
    block_rows = blocks_of(M, L) if isinstance(M, int) else list(M)
    if any(not 0 < r <= L for r in block_rows):
        raise LpuError(f"GEMV blocks must hold 1..{L} rows")
    row0 = np.concatenate([[0], np.cumsum(block_rows)]).astype(int)
    M = int(row0[-1])
    mb, kb = len(block_rows), -(-K // L)
    if len(xs) != kb:
        raise LpuError(f"GEMV: x has {len(xs)} vectors, K={K} needs {kb}")
    hems = hems or hemispheres(chip)
    if getattr(s, "latency_only", False):
        n_w = n_weights if n_weights is not None else sum(block_rows) * K
        return _gemv_latency(s, block_rows, xs, hems, mask, n_w, g, late), None
    iw_lat, mv_lat = lat(chip, "iw"), lat(chip, "mv")
    rd_lat = lat(chip, "read")
    units, tail = units_of(block_rows, K, L, wdt, pack)
    x_last = [xs[-1], None]  # the activations of the last K block: (A's, B's)
    if tail:
        n_rows = loaded_rows(block_rows, K, L, wdt, pack)
        w_slots = np.full((n_rows, 1, g, 2), -1, np.int64)
        layout = np.full((n_rows, 3), -1, np.int64)
    else:
        w_slots = np.full((M, kb, g, 2), -1, np.int64)
        layout = None
    n_loaded = n_blocks = 0  # packed: loaded rows so far; blocks loaded
    ys: list[Vec | None] = [None] * mb
    # Output blocks split between hemispheres; within one, planes take turns.
    # Output blocks go to the hemisphere with the least weight traffic so far (over all
    # GEMVs of the program), which balances both SRAM use and streaming time.
    st8 = s.mxm_state  # plane state carried between GEMVs (see Scheduler)
    load = st8.setdefault("load", {h.name: 0 for h in hems})
    owner: dict[str, list[tuple[int, ...]]] = {h.name: [] for h in hems}
    for u in units:
        h = min(hems, key=lambda h: (load[h.name], h.name != "w")).name
        owner[h].append(u)
        load[h] += _unit_rows([block_rows[m] for m in u], kb)
    # Weights do not depend on x: streaming starts as soon as the hemisphere's streams and
    # planes allow (prefetching into the planes' staging buffers); only the products wait.
    t_start = earliest
    for hem in hems:
        us = owner[hem.name]
        if not us:
            continue
        ws = hem.weight_slices
        n_streams = (min(len(ws), chip.streams) // g) * g
        if n_streams == 0:
            raise LpuError(f"chip {chip.name}: no weight streams")
        rows = n_streams // g
        stage_of = {q: chip.queue(q).stage for q in ws}
        slice_of = {q: chip.queue(q).index for q in ws}
        dists = [abs(stage_of[q] - hem.plane_stage) * chip.hop_cycles for q in ws]
        ivs = [(min(stage_of[q], hem.plane_stage), max(stage_of[q], hem.plane_stage)) for q in ws]
        far = max(abs(st - hem.plane_stage) for st in stage_of.values())
        # the hemisphere's streams toward its planes, per cycle: weight rows take them from
        # the bottom (one or more lw, of any planes), an activation from the top; a cycle
        # not listed is free, (lo, hi) leaves streams lo..hi-1 free
        avail: dict[int, tuple[int, int]] = {}
        mv_cycles: set[int] = set()  # one activation per cycle
        # the first weight word must be readable: reads start far * hop + read latency earlier
        cursor = max(t_start + far * chip.hop_cycles + rd_lat,
                     st8.setdefault("feed", {}).get(hem.name, 0))
        # plane state carries over between GEMVs: when each plane may load again, which
        # accumulator slot comes next, and when each slot has been read out
        plane_ready = {p: max(cursor, st8["ready"].get(p, 0)) for p in hem.planes}
        slot_of_m: dict[tuple[int, int], int] = {}  # (output block, part) -> slot
        parts: dict[int, dict[int, Vec]] = {}
        if any(len(u) > 1 for u in us):
            x_last = _tail_activations(s, hem, xs[-1], tail)
        for loads, phases, outs in _turns(us, hem.planes, st8["ready"], kb, xs, x_last, split):
            iw_of: dict[int, int] = {}
            for p, u, k in loads:
                n = max(block_rows[m] for m in u)
                n_blocks += 1
                if layout is None:
                    r0, kk = row0[u[0]], k
                else:  # packed rows in load order; which rows of W each holds
                    r0, kk = n_loaded, 0
                    for j, m in enumerate(u):
                        idx = np.arange(block_rows[m])
                        layout[n_loaded + idx, 2 * j] = row0[m] + idx
                    layout[n_loaded:n_loaded + n, 1] = k
                    n_loaded += n
                cursor, iw_t = _load_block(s, walloc, hem, ws, dists, ivs, slice_of, rows,
                                           n_streams, rd_lat, avail, cursor,
                                           plane_ready[p], p, n, wdt, w_slots, r0, kk)
                plane_ready[p] = iw_t + 1
                st8["ready"][p] = iw_t + 1
                st8["feed"][hem.name] = cursor
                iw_of[p] = iw_t
            mv_t = -1
            for x, mvs in phases:
                mv_min = mv_t + 1
                for p, key, add in mvs:
                    if key not in slot_of_m:
                        n_used = st8["slot"].get(p, 0)
                        slot_of_m[key] = n_used % chip.mxm_acc_slots
                        st8["slot"][p] = n_used + 1
                    free = 0 if add else st8["slot_free"].get((p, slot_of_m[key]), 0)
                    mv_min = max(mv_min, iw_of[p] + iw_lat, free)
                mv_t = mv_min
                while mv_t in mv_cycles or \
                        s._fetch_plan(x, hem.plane_stage, mv_t, True) is None or \
                        not all(s.res.queue_free(f"mxm{p}.a", mv_t) for p, _, _ in mvs):
                    mv_t += 1
                mv_cycles.add(mv_t)
                plan = s._fetch_plan(x, hem.plane_stage, mv_t, True)
                lo, hi = avail.get(mv_t, (0, n_streams))
                avail[mv_t] = (lo, min(hi, plan[1]))
                xname = s._take_fetch(x, hem.plane_stage, mv_t, plan)
                for p, key, add in mvs:
                    st8["last_mv"][p] = mv_t
                    s.res.take_queue(f"mxm{p}.a", mv_t)
                    s.b.at(f"mxm{p}.a", mv_t, "mv", dt="f16", a=xname, acc=slot_of_m[key],
                           add=int(add))
            for p, key, n_parts in outs:  # results out: acc -> 4 streams -> MEM
                m = key[0]
                parts.setdefault(m, {})[key[1]] = read_out(s, hem.plane_stage, p,
                                                           slot_of_m[key], mv_t + mv_lat)
                if len(parts[m]) < n_parts:
                    continue
                ys[m] = parts[m][0] if n_parts == 1 else s.op("add", [parts[m][0], parts[m][1]],
                                                               "f32")
                nvalid = block_rows[m]
                if mask and nvalid < L:  # stale staging rows: zero the unused lanes
                    ys[m] = s.op("and", [ys[m], s.lane_mask(nvalid)], "f32")
    if (w_slots.reshape(-1, 2) < 0).any():
        raise AssertionError("a weight word was not placed")
    return [y for y in ys if y is not None], GemvPlan(
        M, K, wdt, w_slots, n_blocks, {"rows_per_cycle": rows, "lanes": L}, layout, tail)


def read_out(s: Scheduler, plane_stage: int, p: int, slot: int, earliest: int,
             far: str | None = None) -> Vec:
    """Plane p's accumulator slot onto 4 streams and into a new f32 vector in MEM, at the first
    cycle from `earliest` with the plane's read-out queue and a way to MEM free. far (the
    plane's hemisphere): in the weight slices' spare room next to that hemisphere's SXM, for
    a value the SXM takes next (MemAlloc.open_far)."""
    chip = s.chip
    acc_lat = lat(chip, "acc")
    if far is None:
        dst = s.mem.vector("f32", chip.vxm_stage, now=NEVER_BUSY)
    else:
        dst = s.mem.vector("f32", s.sxm_stage[far], far, now=NEVER_BUSY, far=True)
    t_acc = max(earliest, s.mem.taken_after + 1)  # after a freed place's reads
    while True:
        sp = s._store_plan(dst, plane_stage, t_acc + acc_lat)
        if sp is not None and s.res.queue_free(f"mxm{p}.r", t_acc):
            break
        t_acc += 1
    s.res.take_queue(f"mxm{p}.r", t_acc)
    zname, done = s._take_store(dst, plane_stage, t_acc + acc_lat, sp)
    s.b.at(f"mxm{p}.r", t_acc, "acc", acc=slot, z=zname)
    s.mxm_state["slot_free"][(p, slot)] = t_acc + 1
    y = Vec("f32", dst.slices, dst.addr, done)
    s.temporary(y)
    return y


def _tail_activations(s: Scheduler, hem: Hemisphere, x: Vec, tail: int) -> list[Vec]:
    """The two activations of a packed tail block, made once per input vector by the
    hemisphere's own SXM (on the way from the VXM to its planes): x with lanes past the tail
    zeroed, and x's tail moved up to lanes tail..2*tail-1 (zeros elsewhere)."""
    key = ("x_last", x, tail, hem.name)  # q, k and v share theirs
    if key not in s.mxm_state:
        lane = np.arange(s.chip.lanes)
        pool = [q for q in s.sxm_queues if q.startswith(f"sxm.{hem.name}")]
        s.mxm_state[key] = [
            s.op("permute", [x], "f16", sg=2, queue_pool=pool,
                 map=s.b.lane_map(np.where(sel, src, -1)))
            for sel, src in ((lane < tail, lane), ((lane >= tail) & (lane < 2 * tail), lane - tail))]
    return s.mxm_state[key]


def _turns(units: list[tuple[int, ...]], planes: list[int], ready: dict[int, int], kb: int,
           xs: list[Vec], x_last: list, split: bool) -> Iterator[tuple[list, list, list]]:
    """The turns of one hemisphere's share of a GEMV, as (loads, phases, read-outs). Each group
    of units (one per plane, the planes free soonest first) runs its planes side by side, one
    block each per turn; the planes of a turn load one after the other and then multiply in
    shared cycles (one phase per activation), so an activation rides the streams once per turn,
    not once per block (the weight streams are full). A plane's blocks: an output block's K
    blocks in order; a pair's: A's, B's but the last, then the shared tail block (A's last
    product, then B's), so each sums its K blocks in the unpacked order (the same bits).
    With split, a group with fewer units than planes gives a single output block's last K
    block to an idle plane (its own accumulator), so more of the GEMV waits in the planes
    before x arrives; the caller adds the two parts, (the other K blocks) + (the last), which
    is the order one accumulator adds them in (the same bits). Accumulators are keyed (output
    block, part); read-outs carry the number of parts. Groups are made as they are reached,
    so `ready` is current."""
    P = len(planes)
    for i in range(0, len(units), P):
        order = sorted(planes, key=lambda p: (ready.get(p, 0), p))
        group = units[i:i + P]
        idle = order[len(group):] if split else []
        seqs = []  # per plane: [(load, [(x, key)], [keys read out])]
        for u, p in zip(group, order, strict=False):
            if len(u) == 1 and idle and kb > 1:
                m, ka = u[0], kb - 1  # the idle plane takes the last K block: the same sum
                for q, ks in ((p, range(ka)), (idle.pop(0), range(ka, kb))):
                    part = int(q != p)
                    seq = [((m,), k, [(xs[k], (m, part))], []) for k in ks]
                    seq[-1][3].append((m, part, 2))
                    seqs.append((q, seq))
                continue
            seq = [((m,), k, [(xs[k], (m, 0))], []) for m in u for k in range(kb - 1)]
            tail_mvs = ([(x_last[0], (u[0], 0)), (x_last[1], (u[1], 0))] if len(u) > 1
                        else [(xs[-1], (u[0], 0))])
            seq.append((u, kb - 1, tail_mvs, [(m, 0, 1) for m in u]))
            seqs.append((p, seq))
        started: set[tuple[int, int]] = set()
        for t in range(max(len(q) for _, q in seqs)):
            loads, phases, outs = [], {}, []
            for p, seq in seqs:
                if t >= len(seq):
                    continue
                blk, k, mvs, done = seq[t]
                loads.append((p, blk, k))
                for x, key in mvs:
                    phases.setdefault(id(x), (x, []))[1].append((p, key, key in started))
                    started.add(key)
                outs += [(p, (m, part), n) for m, part, n in done]
            yield loads, list(phases.values()), outs


def _load_block(s: Scheduler, walloc: WeightAlloc, hem: Hemisphere, ws: list[str],
                dists: list[int], ivs: list[tuple[int, int]], slice_of: dict[str, int],
                rows: int, n_streams: int, rd_lat: int, avail: dict[int, tuple[int, int]],
                cursor: int, ready: int, p: int, nvalid: int, wdt: str, w_slots: np.ndarray,
                r0: int, k: int) -> tuple[int, int]:
    """Stream one block's weight rows into plane p's staging buffer (lw at the first cycles
    from max(cursor, ready) with free streams: all of them, or what an earlier block's last
    cycle or an activation left) and install them; returns (new cursor, install cycle).

    Where a row sits does not depend on the cycles: byte plane b of the block's row r is word
    q = r * g + b of the block, kept in weight slice q mod n_streams at that slice's next
    address, so every step of a decode finds its weights where the first one put them (a chip
    keeps them in place). The stream that carries it depends on the cycle (the lw's streams
    start where the cycle's free ones do); its slice reads it onto that stream."""
    g = nbytes(wdt)
    c = max(cursor, ready)
    # the banks of the weight slices that also hold other values (MemAlloc.open_far: from
    # walloc.top up): a weight read there must not meet a write of one in the same cycle, so
    # those reads check and take their bank like any other read. Each slice's words of this
    # block take its next addresses (below), known before their cycles are
    bw = s.chip.bank_words
    far_bank = walloc.top // bw if walloc.top < s.chip.mem_words else None
    a_next = None if far_bank is None else [walloc.next.get(q, 0) for q in ws[:n_streams]]
    wc: list[int] = []
    lo_c: list[int] = []  # first stream of each of those cycles
    nrows_c: list[int] = []  # rows loaded in each
    need = nvalid
    while need > 0:
        lo, hi = avail.get(c, (0, n_streams))
        cap = (hi - lo) // g
        if cap < need and rows % ROW_GROUP == 0:  # whole groups (the block's last row aside)
            cap -= cap % ROW_GROUP
        m0 = ((nvalid - need) * g) % n_streams  # the slice of this cycle's first word
        if cap > 0 and s.res.queue_free(f"mxm{p}.w", c) and _weights_fit(
                s, hem, ws, dists, ivs, c, lo, lo + min(cap, need) * g, rd_lat, m0, n_streams,
                None if far_bank is None else (far_bank, a_next, (nvalid - need) * g,
                                               slice_of)):
            wc.append(c)
            lo_c.append(lo)
            nrows_c.append(min(cap, need))
            need -= nrows_c[-1]
            avail[c] = (lo + nrows_c[-1] * g, hi)
        c += 1
    # install only after the plane's previous product has read its weights
    iw_t = max(wc[-1] + 1, s.mxm_state.setdefault("last_mv", {}).get(p, -1) + 1)
    while not s.res.queue_free(f"mxm{p}.w", iw_t):
        iw_t += 1
    row_c = np.concatenate([[0], np.cumsum(nrows_c)[:-1]]).astype(int)  # first row per cycle
    for ci, tc in enumerate(wc):
        s.res.take_queue(f"mxm{p}.w", tc)
        s.b.at(f"mxm{p}.w", tc, "lw", dt=wdt, a=stream(hem.to_plane, lo_c[ci]), n=nrows_c[ci],
               row=int(row_c[ci]))
    # the block's words in order: word q (row q // g, byte plane q % g) is in slice
    # q % n_streams at its (q // n_streams)-th address there, and rides stream lo + (q - first
    # word of its cycle) in its cycle
    nq = nvalid * g
    q = np.arange(nq)
    cyc = np.repeat(np.arange(len(wc)), np.array(nrows_c) * g)  # cycle index of each word
    j_q = np.array(lo_c)[cyc] + q - row_c[cyc] * g  # its stream
    m_q = q % n_streams  # its slice (index into ws)
    cnts = [nq // n_streams + (m < nq % n_streams) for m in range(n_streams)]
    a0s = [walloc.take(ws[m], cnts[m]) if cnts[m] else -1 for m in range(n_streams)]
    a_q = np.array(a0s)[m_q] + q // n_streams
    w_slots[r0 + q // g, k, q % g, 0] = np.array([slice_of[x] for x in ws[:n_streams]])[m_q]
    w_slots[r0 + q // g, k, q % g, 1] = a_q
    wmap = s.res.weight_waves
    for ci, tc in enumerate(wc):
        w = s.res.wave(hem.to_plane, hem.plane_stage, tc)
        prev = wmap.get((hem.to_plane, w), (0, []))
        if prev[0] != lo_c[ci]:  # weight rows: one prefix of the streams
            raise AssertionError(f"weight wave {w} double-booked")
        m1 = int(row_c[ci]) * g
        wmap[(hem.to_plane, w)] = (lo_c[ci] + nrows_c[ci] * g, prev[1][:lo_c[ci]] + [
            ivs[(m1 + i) % n_streams] for i in range(nrows_c[ci] * g)])
    zbase = hem.to_plane << 5  # stream fields as the encoding has them (no text to parse)
    # each slice's reads in order of its words (and so of their cycles): consecutive cycles on
    # one stream at consecutive addresses become one `read` + `repeat`
    t_q = (np.array(wc) - rd_lat)[cyc] - np.array(dists)[m_q]
    order = np.argsort(m_q, kind="stable")
    bounds = np.searchsorted(m_q[order], np.arange(n_streams + 1)).tolist()
    t_o, j_o, a_o = t_q[order].tolist(), j_q[order].tolist(), a_q[order].tolist()
    for m in range(n_streams):
        lo_i, hi_i = bounds[m], bounds[m + 1]
        if lo_i == hi_i:
            continue
        busy = s.res.queue_busy.setdefault(ws[m], set())
        t_rds = t_o[lo_i:hi_i]
        if busy.intersection(t_rds):
            raise AssertionError(f"weight slice {ws[m]} double-booked")
        busy.update(t_rds)
        if far_bank is not None:
            sl = slice_of[ws[m]]
            s.res.take_banks((sl, a // bw, t) for a, t in zip(
                a_o[lo_i:hi_i], t_rds, strict=True) if a >= far_bank * bw)
        i0 = lo_i
        for i in range(lo_i + 1, hi_i + 1):
            if i == hi_i or t_o[i] != t_o[i - 1] + 1 or j_o[i] != j_o[i0]:
                n = i - i0
                s.b.at(ws[m], t_o[i0], "read", addr=a_o[i0], z=zbase | j_o[i0],
                       step=1 if n > 1 else 0, repeat=(n - 1, 1) if n > 1 else None)
                i0 = i
    s.res.take_queue(f"mxm{p}.w", iw_t)
    s.b.at(f"mxm{p}.w", iw_t, "iw")
    lo, hi = avail[wc[-1]]
    return wc[-1] + (lo + g > hi), iw_t  # the next block may fill the last cycle's streams


def _gemv_latency(s: Scheduler, block_rows: list[int], xs: list[Vec], hems: list[Hemisphere],
                  mask: bool, n_weights: int, g: int, late: bool | str) -> list[Vec]:
    """Each output block as early as latency allows (for LatencyScheduler): weights already
    installed in as many planes as needed, so a block's last product issues when the last of its
    input vectors reaches the nearer plane stage, then the MXM, the read-out and the trip back
    to MEM.

    With s.buffered, the planes hold only what their buffers can: WEIGHT_BUFFERS blocks of
    lanes x lanes weights each. No product of this GEMV can issue before its first input vector
    reaches a plane (t0), and until then no buffer holding one of its blocks can free; so of its
    n_weights (g bytes each) all but the buffers' worth reach the planes after t0, at most one
    lane-wide word per stream toward the planes per cycle, and its last product issues no
    earlier than t0 + that many cycles. One output block gets that time (s.late_block: the
    first or the last; which one is last is the compiler's choice, the others' paths onward
    differ by a few cycles, and Compiler.buffered_path takes the smaller of the two), and
    s.gemv_done records it for a consumer of all the outputs (late=False: no block delayed).

    GEMVs called one after another on the same input vectors (q, k and v; gate and up) have one
    t0 and share the buffers: with late="group", the last of them waits for all their weights
    beyond the buffers. The caller gives that only to the one whose path onward is the shortest
    of the group (v's products join attention at its weighted sum, which q's and k's reach only
    through the scores; up joins gate's SiLU at its last multiply)."""
    chip = s.chip
    rd, mv_lat, acc_lat = (lat(chip, m) for m in ("read", "mv", "acc"))

    def arrive(x: Vec, stage: int) -> int:  # read from MEM, or straight on from its producer
        t = x.ready + rd + max(abs(chip.queue(q).stage - stage) for q in x.slices) * \
            chip.hop_cycles
        if x.fwd is not None:
            t = min(t, x.fwd[1] + abs(x.fwd[0] - stage) * chip.hop_cycles)
        return t

    def at_plane(stage: int) -> int:  # every input vector has passed `stage` by then
        return max(arrive(x, stage) for x in xs)

    stage = min((h.plane_stage for h in hems), key=at_plane)
    t_out = at_plane(stage) + mv_lat + acc_lat
    t_late, i_late = t_out, -1
    if getattr(s, "buffered", False):
        t0 = min(arrive(x, h.plane_stage) for x in xs for h in hems)
        prev, held_before = s.gemv_group  # the same vector objects: the same input
        same = len(prev) == len(xs) and all(a is b for a, b in zip(prev, xs, strict=True))
        grouped = n_weights + (held_before if same else 0)
        s.gemv_group = (tuple(xs), grouped)
        if late == "group":
            n_weights = grouped
        held = WEIGHT_BUFFERS * 2 * chip.mxm_planes_per_hemisphere * chip.lanes ** 2
        after = -(-max(0, n_weights - held) * g // (2 * chip.streams * chip.lanes))
        t_late = max(at_plane(stage), t0 + after) + mv_lat + acc_lat
        s.gemv_done = t_late
        if late:
            i_late = 0 if s.late_block == "first" else len(block_rows) - 1
    ys = []
    for i, nvalid in enumerate(block_rows):
        t_out_i = t_late if i == i_late else t_out
        dst = s.mem.vector("f32", chip.vxm_stage, now=NEVER_BUSY)  # timing only: no waiting
        sp = s._store_plan(dst, stage, t_out_i)
        if sp is None:  # dst straddles the plane stage: cannot happen with free resources
            raise AssertionError("no store plan for a GEMV result")
        _, done = s._take_store(dst, stage, t_out_i, sp)
        y = Vec("f32", dst.slices, dst.addr, done)
        s.temporary(y)
        if mask and nvalid < chip.lanes:
            y = s.op("and", [y, s.lane_mask(nvalid)], "f32")
        ys.append(y)
    return ys


def _weights_fit(s: Scheduler, hem: Hemisphere, ws: list[str], dists: list[int],
                 ivs: list[tuple[int, int]], tc: int, lo: int, hi: int, rd: int, m0: int,
                 n: int, far: tuple | None = None) -> bool:
    """Are streams lo..hi-1 free to deliver words at plane cycle tc, stream j from weight
    slice (m0 + j - lo) mod n (see _load_block), and those slices free to read them? far =
    (first bank with other values, each slice's next address, the cycle's first word, slice
    index by name): words in those banks also need their bank free of writes."""
    w = s.res.wave(hem.to_plane, hem.plane_stage, tc)
    busy, waves = s.res.queue_busy, s.res.waves
    ww = s.res.weight_waves.get((hem.to_plane, w))
    bw = s.chip.bank_words
    for j in range(lo, hi):
        m = (m0 + j - lo) % n
        lo_j, hi_j = ivs[m]
        if ww is not None and j < ww[0]:  # a row of another lw on this wave
            a, b = ww[1][j]
            if not (hi_j < a or b < lo_j):
                return False
        t_rd = tc - rd - dists[m]
        if t_rd in busy.get(ws[m], ()):
            return False
        if far is not None:
            bank = (far[1][m] + (far[2] + j - lo) // n) // bw
            if bank >= far[0] and not s.res.bank_free(far[3][ws[m]], bank, t_rd):
                return False
        taken = waves.get((hem.to_plane, j, w))
        if taken and any(not (hi_j < a or b < lo_j) for a, b in taken):
            return False
    return True


def place_weights(s: Scheduler, name: str, plan: GemvPlan, values: np.ndarray | None,
                  words: np.ndarray | None = None) -> Segment:
    """Declare the weight segment at the slots the schedule chose (values, or words already
    converted to MEM words, which a compiler reuses between steps). values is W (M, K); words
    are those of plan.arrange(W)."""
    slots = plan.w_slots.reshape(-1, 2)
    runs = np.column_stack([slots, np.ones(len(slots), np.int64)])  # one word per run
    if values is not None:
        values = plan.arrange(np.asarray(values).reshape(plan.M, plan.K))
    return s.b.data(name, plan.wdt, plan.shape, runs, values, words)


@dataclass
class GemvResult:
    program: object
    predicted_cycles: int
    blocks: int
    notes: dict = field(default_factory=dict)


def build_gemv(M: int, K: int, wdt: str = "f16", chip: str = "tsp-v1",
               weights: np.ndarray | None = None, x: np.ndarray | None = None,
               pack: bool = False, split: bool = False) -> GemvResult:
    """A standalone GEMV program: segments W (M, K) wdt, x (K,) f16, y (M,) f32 (with pack, W
    is the packed layout: GemvResult.notes["plan"].arrange turns W into it)."""
    s = Scheduler(chip, source=f"<gemv {M}x{K} {wdt}>")
    xs = s.place("x", "f16", x, K)
    walloc = WeightAlloc(s.chip)
    ys, plan = gemv(s, walloc, M, K, wdt, xs, earliest=0, pack=pack, split=split)
    place_weights(s, "W", plan, weights)
    s.output("y", ys, M)
    return GemvResult(s.build(), s.predicted_cycles(), plan.blocks,
                      {**plan.notes, "plan": plan})
