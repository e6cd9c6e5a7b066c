"""Matrix-vector products tiled over the MXM planes, with weight streaming at full stream rate.

Each hemisphere streams weight rows from its far MEM slices over all its streams toward its MXM
planes, alternating planes so one installs while the other loads; the activation rides the same
streams in a one-cycle slot shared by the planes of a hemisphere, and results flow back to MEM
in the other direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lpu.errors import LpuError
from lpu.isa.chips import Chip
from lpu.isa.dtypes import nbytes
from lpu.kernels.sched import Scheduler, Vec, weight_slices
from lpu.kernels.timing import EAST, WEST, lat, stream


@dataclass
class Hemisphere:
    """The parts of one hemisphere a GEMV uses."""

    name: str  # "w" or "e"
    planes: list[int]
    plane_stage: int
    to_plane: int  # stream direction from MEM toward the planes
    weight_slices: list[str]  # MEM queues streaming weights, one stream each


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
    timing relative to its start."""

    M: int
    K: int
    wdt: str
    w_slots: np.ndarray  # int64 [M, kb, g, 2]
    blocks: int
    notes: dict = field(default_factory=dict)


class WeightAlloc:
    """Consecutive addresses in the weight slices, in the order the GEMVs read them."""

    def __init__(self, chip: Chip) -> None:
        self.chip = chip
        self.next: dict[str, int] = {}

    def take(self, q: str, n: int = 1) -> int:
        a = self.next.get(q, 0)
        if a + n > self.chip.mem_words:
            raise LpuError(f"the weights do not fit: slice {q} is full", hint="use int8 weights "
                           "or a bigger chip (see lpu compile --json for the memory plan)")
        self.next[q] = a + n
        return a

    def used_bytes(self) -> int:
        return sum(self.next.values()) * self.chip.lanes


def blocks_of(M: int, lanes: int) -> list[int]:
    """Rows per output block of a plain M-row GEMV: full blocks, then the remainder."""
    return [min(lanes, M - i) for i in range(0, M, lanes)]


def gemv(s: Scheduler, walloc: WeightAlloc, M: int | list[int], K: int, wdt: str,
         xs: list[Vec], earliest: int = 0, hems: list[Hemisphere] | None = None,
         mask: bool = True) -> tuple[list[Vec], GemvPlan]:
    """Schedule y = W @ x with x given as f16 vectors in MEM. M is a row count, or a list with
    the rows of each output block (a block may use fewer lanes than the vector has, e.g. a
    head-aligned layout); the weights are the valid rows of all blocks, in order. Returns one
    f32 output vector per block (lanes past a block's rows are zero when mask is set) and the
    weight placement."""
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
        return _gemv_latency(s, block_rows, xs, hems, mask), None
    iw_lat, mv_lat, acc_lat = (lat(chip, m) for m in ("iw", "mv", "acc"))
    rd_lat = lat(chip, "read")
    w_slots = np.full((M, kb, g, 2), -1, np.int64)
    ys: list[Vec | None] = [None] * mb
    # Output blocks split between hemispheres; within one, planes take turns.
    # Output blocks go to the hemisphere with the least weight traffic so far (over all
    # GEMVs of the program), which balances both SRAM use and streaming time.
    st8 = s.mxm_state  # plane state carried between GEMVs (see Scheduler)
    load = st8.setdefault("load", {h.name: 0 for h in hems})
    owner: dict[str, list[int]] = {h.name: [] for h in hems}
    for m in range(mb):
        h = min(hems, key=lambda h: (load[h.name], h.name != "w")).name
        owner[h].append(m)
        load[h] += block_rows[m] * kb
    # Weights do not depend on x: streaming starts as soon as the hemisphere's streams and
    # planes allow (prefetching into the planes' staging buffers); only the products wait.
    t_start = earliest
    for hi, hem in enumerate(hems):
        ms = owner[hem.name]
        if not ms:
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
        # blocks in turns: for each group of output blocks (one per plane), each k; the planes
        # of a turn load one after the other and then multiply in one shared cycle, so x_k
        # rides the streams once per turn, not once per block (the weight streams are full)
        turns = []
        P = len(hem.planes)
        for i in range(0, len(ms), P):
            group = ms[i:i + P]
            for k in range(kb):
                turns.append([(m, k, hem.planes[j]) for j, m in enumerate(group)])
        used: set[int] = set()
        # the first weight word must be readable: reads start far * hop + read latency earlier
        cursor = max(t_start + far * chip.hop_cycles + rd_lat,
                     st8.setdefault("feed", {}).get(hem.name, 0))
        # plane state carries over between GEMVs: when each plane may load again, which
        # accumulator slot comes next, and when each slot has been read out
        plane_ready = {p: max(cursor, st8["ready"].get(p, 0)) for p in hem.planes}
        slot_of_m: dict[int, int] = {}
        for turn in turns:
            k = turn[0][1]
            mv_min = 0
            for m, _, p in turn:
                cursor, iw_t = _load_block(s, walloc, hem, ws, dists, ivs, slice_of, rows,
                                           n_streams, rd_lat, used, cursor, plane_ready[p],
                                           p, block_rows[m], wdt, w_slots, row0[m], k)
                plane_ready[p] = iw_t + 1
                st8["ready"][p] = iw_t + 1
                st8["feed"][hem.name] = cursor
                if m not in slot_of_m:
                    n_used = st8["slot"].get(p, 0)
                    slot_of_m[m] = n_used % chip.mxm_acc_slots
                    st8["slot"][p] = n_used + 1
                free = st8["slot_free"].get((p, slot_of_m[m]), 0) if k == 0 else 0
                mv_min = max(mv_min, iw_t + iw_lat, free)
            mv_t = mv_min
            while mv_t in used or s._fetch_plan(xs[k], hem.plane_stage, mv_t) is None or \
                    not all(s.res.queue_free(f"mxm{p}.a", mv_t) for _, _, p in turn):
                mv_t += 1
            used.add(mv_t)
            plan = s._fetch_plan(xs[k], hem.plane_stage, mv_t)
            xname = s._take_fetch(xs[k], hem.plane_stage, mv_t, plan)
            for m, _, p in turn:
                slot = slot_of_m[m]
                st8["last_mv"][p] = mv_t
                s.res.take_queue(f"mxm{p}.a", mv_t)
                s.b.at(f"mxm{p}.a", mv_t, "mv", dt="f16", a=xname, acc=slot,
                       add=0 if k == 0 else 1)
            if k < kb - 1:
                continue
            for m, _, p in turn:  # results out: acc -> 4 streams away from the plane -> MEM
                slot = slot_of_m[m]
                dst = s.mem.vector("f32", chip.vxm_stage)
                t_acc = mv_t + mv_lat
                while True:
                    sp = s._store_plan(dst, hem.plane_stage, t_acc + acc_lat)
                    if sp is not None and s.res.queue_free(f"mxm{p}.r", t_acc):
                        break
                    t_acc += 1
                s.res.take_queue(f"mxm{p}.r", t_acc)
                zname, done = s._take_store(dst, hem.plane_stage, t_acc + acc_lat, sp)
                s.b.at(f"mxm{p}.r", t_acc, "acc", acc=slot, z=zname)
                st8["slot_free"][(p, slot)] = t_acc + 1
                ys[m] = Vec("f32", dst.slices, dst.addr, done)
                nvalid = block_rows[m]
                if mask and nvalid < L:  # stale staging rows: zero the unused lanes
                    ys[m] = s.op("and", [ys[m], s.lane_mask(nvalid)], "f32")
    if (w_slots.reshape(-1, 2) < 0).any():
        raise AssertionError("a weight word was not placed")
    return [y for y in ys if y is not None], GemvPlan(M, K, wdt, w_slots, mb * kb,
                                                      {"rows_per_cycle": rows})


def _load_block(s: Scheduler, walloc: WeightAlloc, hem: Hemisphere, ws: list[str],
                dists: list[int], ivs: list[tuple[int, int]], slice_of: dict[str, int],
                rows: int, n_streams: int, rd_lat: int, used: set[int], cursor: int,
                ready: int, p: int, nvalid: int, wdt: str, w_slots: np.ndarray, r0: int,
                k: int) -> tuple[int, int]:
    """Stream one block's weight rows into plane p's staging buffer (lw at the first free
    cycles from max(cursor, ready)) and install them; returns (new cursor, install cycle)."""
    g = nbytes(wdt)
    c = max(cursor, ready)
    wc: list[int] = []
    while len(wc) < -(-nvalid // rows):
        if c not in used and s.res.queue_free(f"mxm{p}.w", c) and _weights_fit(
                s, hem, ws, dists, ivs, c, n_streams, rd_lat):
            wc.append(c)
        c += 1
    # install only after the plane's previous product has read its weights
    iw_t = max(wc[-1] + 1, s.mxm_state.setdefault("last_mv", {}).get(p, -1) + 1)
    while not s.res.queue_free(f"mxm{p}.w", iw_t):
        iw_t += 1
    used.update(wc)
    nrows_c = [min(rows, nvalid - ci * rows) for ci in range(len(wc))]
    for ci, tc in enumerate(wc):
        s.res.take_queue(f"mxm{p}.w", tc)
        s.b.at(f"mxm{p}.w", tc, "lw", dt=wdt, a=stream(hem.to_plane, 0), n=nrows_c[ci],
               row=ci * rows)
    waves = [s.res.wave(hem.to_plane, hem.plane_stage, tc) for tc in wc]
    # stream j carries row ci*rows + j//g, byte plane j%g, in the cycles ci it is used
    cnts = [sum(1 for n in nrows_c if j < n * g) for j in range(n_streams)]
    n_used = sum(1 for c in cnts if c)
    a0s = [walloc.take(ws[j], cnts[j]) for j in range(n_used)]
    ci = np.arange(len(wc))
    ok = ci[:, None] < np.array(cnts[:n_used])[None, :]  # [cycle, stream]: carries a row
    cix, jix = np.nonzero(ok)
    rws = r0 + cix * rows + jix // g
    w_slots[rws, k, jix % g, 0] = np.array([slice_of[q] for q in ws[:n_used]])[jix]
    w_slots[rws, k, jix % g, 1] = np.array(a0s)[jix] + cix
    waves_map = s.res.waves
    zbase = hem.to_plane << 5  # stream fields as the encoding has them (no text to parse)
    for j in range(n_used):
        cnt = cnts[j]
        q, dist, iv = ws[j], dists[j], ivs[j]
        a0 = a0s[j]
        busy = s.res.queue_busy.setdefault(q, set())
        t_rds = [tc - rd_lat - dist for tc in wc[:cnt]]
        if busy.intersection(t_rds):
            raise AssertionError(f"weight slice {q} double-booked")
        busy.update(t_rds)
        for w in waves[:cnt]:
            waves_map.setdefault((hem.to_plane, j, w), []).append(iv)
        # consecutive cycles become one `read` + `repeat` with address step 1
        i0 = 0
        for i in range(1, cnt + 1):
            if i == cnt or t_rds[i] != t_rds[i - 1] + 1:
                n = i - i0
                s.b.at(q, t_rds[i0], "read", addr=a0 + i0, z=zbase | j,
                       step=1 if n > 1 else 0, repeat=(n - 1, 1) if n > 1 else None)
                i0 = i
    s.res.take_queue(f"mxm{p}.w", iw_t)
    s.b.at(f"mxm{p}.w", iw_t, "iw")
    return wc[-1] + 1, iw_t


def _gemv_latency(s: Scheduler, block_rows: list[int], xs: list[Vec], hems: list[Hemisphere],
                  mask: bool) -> list[Vec]:
    """Each output block as early as latency allows (for LatencyScheduler): weights already
    installed in as many planes as needed, so a block's last product issues when the last of its
    input vectors reaches the nearer plane stage, then the MXM, the read-out and the trip back
    to MEM."""
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
    ys = []
    for nvalid in block_rows:
        dst = s.mem.vector("f32", chip.vxm_stage)
        sp = s._store_plan(dst, stage, t_out)
        if sp is None:  # dst straddles the plane stage: cannot happen with free resources
            raise AssertionError("no store plan for a GEMV result")
        _, done = s._take_store(dst, stage, t_out, sp)
        y = Vec("f32", dst.slices, dst.addr, done)
        if mask and nvalid < chip.lanes:
            y = s.op("and", [y, s.lane_mask(nvalid)], "f32")
        ys.append(y)
    return ys


def _weights_fit(s: Scheduler, hem: Hemisphere, ws: list[str], dists: list[int],
                 ivs: list[tuple[int, int]], tc: int, n_streams: int, rd: int) -> bool:
    """Are all weight slices and streams free to deliver a row group at plane cycle tc?"""
    w = s.res.wave(hem.to_plane, hem.plane_stage, tc)
    busy, waves = s.res.queue_busy, s.res.waves
    for j in range(n_streams):
        if tc - rd - dists[j] in busy.get(ws[j], ()):
            return False
        taken = waves.get((hem.to_plane, j, w))
        if taken:
            lo, hi = ivs[j]
            if any(not (hi < a or b < lo) for a, b in taken):
                return False
    return True


def place_weights(s: Scheduler, name: str, plan: GemvPlan, values: np.ndarray | None,
                  words: np.ndarray | None = None) -> None:
    """Declare the weight segment at the slots the schedule chose (values, or words already
    converted to MEM words, which a compiler reuses between steps)."""
    slots = plan.w_slots.reshape(-1, 2)
    runs = np.column_stack([slots, np.ones(len(slots), np.int64)])  # one word per run
    s.b.data(name, plan.wdt, (plan.M, plan.K), runs, values, words)


@dataclass
class GemvResult:
    program: object
    predicted_cycles: int
    blocks: int
    notes: dict = field(default_factory=dict)


def build_gemv(M: int, K: int, wdt: str = "f16", chip: str = "tsp-v1",
               weights: np.ndarray | None = None, x: np.ndarray | None = None) -> GemvResult:
    """A standalone GEMV program: segments W (M, K) wdt, x (K,) f16, y (M,) f32."""
    s = Scheduler(chip, source=f"<gemv {M}x{K} {wdt}>")
    xs = s.place("x", "f16", x, K)
    walloc = WeightAlloc(s.chip)
    ys, plan = gemv(s, walloc, M, K, wdt, xs, earliest=0)
    place_weights(s, "W", plan, weights)
    s.output("y", ys, M)
    return GemvResult(s.build(), s.predicted_cycles(), plan.blocks, plan.notes)
