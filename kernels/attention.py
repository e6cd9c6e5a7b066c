"""Attention over the KV cache with the scores on an MXM plane: the cached K rows of a head vector
are the plane's weights, q masked to one head at a time its activations.

A step at position pos reads K and V of pos + 1 positions. On the VXM alone each (position, head
vector) costs ~8 operations on fp32 vectors, whose reads and writes fill the issue slots of the
MEM slices beside the VXM. Here a plane loads a head vector's K rows (fp16, as the cache holds
them) and one product per head gives that head's scores of up to `lanes` positions as one
vector. SXM permutes pack them per window of head_dim positions (lane h * head_dim + i: head h,
position w * head_dim + i), and the softmax runs on those windows, a few operations whatever
the heads. The weighted sum stays on the VXM (it sums over positions, which a plane could only
do with V transposed, i.e. positions along lanes, and a step adds one position to every row):
per position one SXM permute broadcasts each head's weight over the head's lanes, chained
straight into one multiply by the cached V (never written to MEM), and one add. Same recipe as
kernels/reference.py: fp16(q) . fp16(k) summed in fp32 (a plane sums lanes in order, the masked
lanes adding zeros), max-subtracted exp, fp16(e) weights on V, normalised after the sum.
"""

from __future__ import annotations

import numpy as np

from lpu.kernels.gemv import hemispheres, read_out
from lpu.kernels.sched import Scheduler, Vec
from lpu.kernels.timing import lat
from lpu.kernels.vector_ops import F16_F32, round16, tree

# A step scores on the MXM once the positions it attends to (its own included) times the head
# vectors reach this; below, the VXM path is shorter: its ~8 operations per position and head
# vector fill the MEM slices beside the VXM, but the plane path adds ~120 cycles of latency a
# layer on tsp-v1 (the plane, and SXM round trips). Measured crossovers (cycles of both paths,
# benchmarks/long_context.py, 2026-12-04): gpt2-small int8 (3 head vectors) ~20 positions
# (12,689 / 12,718 at 20, 13,124 / 12,762 at 24), demo fp16 (1) 48-64; on mini, tiny (4)
# 4 positions (2,770 / 2,856 at 3, 3,020 / 2,846 at 4). Other chips take tsp-v1's.
MXM_FROM_WORK = {"tsp-v1": 56, "mini": 16}
# The weighted sum's products go into running sums, WS_RUN positions each (one add a
# position, the running sum taken off its stream where the next add can issue as it passes),
# once a layer's products (attended positions x head vectors) reach WS_CHAIN_WORK; below,
# pairs then a tree. Every product, its broadcast and V pass the VXM's stage on the streams,
# 64 a cycle there on tsp-v1: a pair and its tree move ~20 streams a position, a running sum
# ~12, but its adds wait for each other. Measured (benchmarks/long_context.py, 2026-12-04,
# gpt2-small int8, 3 head vectors, tree / running sums): 31 12,872 / 12,963, 47 13,214 /
# 13,144, 63 13,393 / 13,310, 95 14,176 / 13,855, 127 14,775 / 14,349; demo fp16 (1 head
# vector) 63 3,364 / 3,390, 127 3,509 / 3,490.
WS_RUN = 8
WS_CHAIN_WORK = 144
# copies of each window's fp16 weights for the broadcasts to read (see _weights16): half in
# each hemisphere
E16_COPIES = 4


def mxm_from(chip: str, head_vectors: int) -> int:
    """The first attended-position count whose step scores on the MXM."""
    return -(-MXM_FROM_WORK.get(chip, MXM_FROM_WORK["tsp-v1"]) // head_vectors)


def _plane_stage(s: Scheduler, p: int) -> tuple[int, str]:
    """Plane p's stage and hemisphere."""
    return next((h.plane_stage, h.name) for h in hemispheres(s.chip) if p in h.planes)


def scores_on_plane(s: Scheduler, rows: list[Vec], acts: list[Vec]) -> list[Vec]:
    """y_i = K @ a_i for each activation a_i (f16), K being `rows` (f16 vectors, at most lanes of
    them) loaded into the plane free soonest: row r of the plane is rows[r]. Rows ready early
    load early (the staging buffer is free once the plane's last install is done), several a
    cycle on consecutive streams where they are free; the last waits for its vector. Returns one f32 vector per activation; lanes past len(rows) hold
    whatever the plane's stale rows give (the packing never reads them)."""
    chip = s.chip
    st8 = s.mxm_state
    planes = [p for h in hemispheres(chip) for p in h.planes]
    p = min(planes, key=lambda q: (st8["ready"].get(q, 0), q))
    stage, hem = _plane_stage(s, p)
    wq = f"mxm{p}.w"
    ready = st8["ready"].get(p, 0)
    last, r, c = -1, 0, ready
    while r < len(rows):  # as many rows a cycle as reach the plane on consecutive streams
        plan = s._fetch_plan(rows[r], stage, c) if s.res.queue_free(wq, c) else None
        if plan is not None:
            name = s._take_fetch(rows[r], stage, c, plan)
            n = 1
            while r + n < len(rows):
                nxt = s._fetch_plan(rows[r + n], stage, c, at=plan[1] + 2 * n)
                if nxt is None or nxt[0] != plan[0]:
                    break
                s._take_fetch(rows[r + n], stage, c, nxt)
                n += 1
            s.res.take_queue(wq, c)
            s.b.at(wq, c, "lw", dt="f16", a=name, n=n, row=r)
            last, r = c, r + n
        c += 1
    last_mv = st8.setdefault("last_mv", {})
    iw_t = max(last + 1, last_mv.get(p, -1) + 1)  # after the plane's last product
    while not s.res.queue_free(wq, iw_t):
        iw_t += 1
    s.res.take_queue(wq, iw_t)
    s.b.at(wq, iw_t, "iw")
    st8["ready"][p] = iw_t + 1
    mv_lat, t_min = lat(chip, "mv"), iw_t + lat(chip, "iw")
    out = []
    for a in acts:
        n_used = st8["slot"].get(p, 0)
        slot = n_used % chip.mxm_acc_slots
        st8["slot"][p] = n_used + 1
        t = max(t_min, st8["slot_free"].get((p, slot), 0))
        while not (s.res.queue_free(f"mxm{p}.a", t) and
                   s._fetch_plan(a, stage, t, True) is not None):
            t += 1
        name = s._take_fetch(a, stage, t, s._fetch_plan(a, stage, t, True))
        s.res.take_queue(f"mxm{p}.a", t)
        s.b.at(f"mxm{p}.a", t, "mv", dt="f16", a=name, acc=slot, add=0)
        last_mv[p] = max(last_mv.get(p, -1), t)
        out.append(read_out(s, stage, p, slot, t + mv_lat, hem if s.mem.floor else None))
        t_min = t + 1
    return out


def _weights16(s: Scheduler, es: list[Vec]) -> list[list[Vec]]:
    """fp16(e) of each window, in copies that the broadcasts take turns reading. Each permute
    reads its window from MEM, one read a cycle per slice, so one copy limits a head vector
    to one broadcast a cycle; and read beside the VXM it travels to the SXM on the streams
    the weights take to the planes. The copies go to the weight slices' spare room next to
    both SXMs where there is some (MemAlloc.open_far; gpt2-small int8 at position 63:
    15,371 -> 14,344 cycles), else one copy beside the VXM."""
    if not s.mem.floor:
        return [[round16(s, e) for e in es]]
    h16 = [s.op("cvt", [e], "f16", **{"from": "f32", "to": "f16"}) for e in es]
    return [[s.op("cvt", [h], "f32", far=(s.sxm_stage[hem], hem), **{"from": "f16", "to": "f32"})
             for h in h16] for hem in ("w", "e") * (E16_COPIES // 2)]


def attention_mxm(s: Scheduler, q: Vec, kc: list[Vec], vc: list[Vec], n_heads: int,
                  head_dim: int, scale: float, head_vectors: int = 1) -> Vec:
    """One head vector's attention output (f32, head-aligned lanes like q) over the cached
    positions kc (f16 K rows) and vc (f32 V vectors holding fp16 values), this step's included.
    n_heads: heads in this vector (the first n_heads slots of head_dim lanes); head_vectors:
    how many a layer has (they share the streams, see WS_CHAIN_WORK)."""
    L = s.chip.lanes
    n = len(kc)
    lane = np.arange(L)
    slot_of = np.where(lane < n_heads * head_dim, lane // head_dim, -1)
    # q masked to each head, fp16: the plane's activations
    q16 = s.op("cvt", [q], "f16", **{"from": "f32", "to": "f16"})
    q16m = [s.op("and", [q16, s.const_bits(f"const.att.head{h}.f16", "f16",
                                                 np.where(slot_of == h, 0xFFFF, 0))], "f16")
            for h in range(n_heads)]
    # scores of the positions before this step: per head, one vector per chunk of L positions
    # (lane t - chunk * L). Their K rows are in the cache before the step starts, so the plane
    # loads them early and multiplies as soon as q is ready
    chunks = [(c, min(L, n - 1 - c)) for c in range(0, n - 1, L)]
    sc = [scores_on_plane(s, kc[c:c + m], q16m) for c, m in chunks]
    # this step's own scores on the VXM and SXM, beside the plane (rather than wait for its K
    # row to reach the plane): every lane of a head holds the head's score, as on the VXM path
    qf = s.op("cvt", [q16], "f32", **F16_F32)
    cur = s.op("rsum", [], "f32", dt="f32", seg=head_dim,
               feed=("mul", [qf], {}, ("cvt", [kc[n - 1]], F16_F32)))
    # each head's largest score straight from its scores (beside the SXM), not from the
    # packed windows: lane 0 of rmax over runs of a chunk's m lanes holds the chunk's max,
    # moved to the head's lanes. Scaled after, bit for bit the max of the scaled windows:
    # rounding is monotonic (gpt2-small int8 at position 63: 14,125 -> 13,732 cycles)
    chunk_max = [tree(s, "or", [
        s.op("permute", [], "f32", sg=4, map=s.b.lane_map(np.where(slot_of == h, 0, -1)),
             feed=("rmax", [sc[ci][h]], {"seg": m})) for h in range(n_heads)])
        for ci, (c, m) in enumerate(chunks)]
    mx = s.op("muli", [tree(s, "max", chunk_max + [cur])], "f32", imm=scale)
    # the scores packed per window of head_dim positions: lane h*hd + i holds head h's score of
    # position w*hd + i, so the softmax runs on a few vectors whatever the heads, and one
    # permute per position then broadcasts its weights to every head's lanes. Lanes of no
    # position stay 0 (a permute's -1), in the last window -inf (so the max ignores them);
    # lanes of no head are 0 throughout, and stay finite (exp(0 - 0) = 1)
    windows = []
    for w0 in range(0, n, head_dim):
        parts = []
        for h in range(n_heads):
            for ci, (c, m) in enumerate(chunks):
                src = w0 + lane % head_dim - c  # the chunk lane of each destination's position
                ok = (slot_of == h) & (src >= 0) & (src < m) & (w0 + lane % head_dim < n)
                if ok.any():
                    parts.append(s.op("permute", [sc[ci][h]], "f32", sg=4,
                                      map=s.b.lane_map(np.where(ok, src, -1))))
        tail = n - w0
        if tail <= head_dim:  # this step's position is in this window
            parts.append(s.op("and", [cur, s.const_bits(
                f"const.att.pos{n_heads}.{tail - 1}", "f32",
                np.where((slot_of >= 0) & (lane % head_dim == tail - 1), 0xFFFFFFFF, 0))],
                "f32"))
        if tail < head_dim:
            parts.append(s.const_bits(f"const.att.ninf{n_heads}.{tail}", "f32", np.where(
                (slot_of >= 0) & (lane % head_dim >= tail), 0xFF800000, 0)))
        windows.append(s.op("muli", [tree(s, "or", parts)], "f32", imm=scale))
    es = [s.op("exp", [s.op("sub", [y, mx], "f32")], "f32") for y in windows]
    r = s.op("recip", [tree(s, "add", [s.op("rsum", [e], "f32", seg=head_dim) for e in es])],
             "f32")
    e16 = _weights16(s, es)

    def product(t: int) -> tuple:  # e16 broadcast for position t, times its V: a feed
        w, i = divmod(t, head_dim)
        bmap = np.where(slot_of >= 0, slot_of * head_dim + i, -1)
        return ("mul", [vc[t]], {}, ("permute", [e16[t % len(e16)][w]],
                                     {"sg": 4, "map": s.b.lane_map(bmap)}))

    if n * head_vectors >= WS_CHAIN_WORK:  # running sums, interleaved
        terms: list[Vec] = []
        n_runs = -(-n // WS_RUN)
        for t in range(n):
            if t < n_runs:
                terms.append(s.op("mul", [vc[t]], "f32", feed=product(t)[3]))
            else:
                terms[t % n_runs] = s.op("add", [terms[t % n_runs]], "f32", feed=product(t))
        return s.op("mul", [tree(s, "add", terms), r], "f32")
    # the add tree's first level takes the odd position's product straight off its stream
    # (and each multiply its broadcast from the SXM); the even one's is written. Sums paired
    # at the next level are kept apart (else one is copied first)
    terms = []
    for t in range(0, n, 2):
        even = s.op("mul", [vc[t]], "f32", feed=product(t)[3])
        terms.append(even if t + 1 == n else s.op(
            "add", [even], "f32", feed=product(t + 1),
            avoid=terms[-1].slices if len(terms) % 2 else ()))
    return s.op("mul", [tree(s, "add", terms), r], "f32")

