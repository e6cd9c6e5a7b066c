"""Attention over the KV cache with the scores on an MXM plane: the cached K rows of a head vector
are the plane's weights, q masked to one head at a time its activations.

A step at position pos reads K and V of pos + 1 positions. On the VXM alone each (position, head
vector) costs ~8 operations on fp32 vectors, whose reads and writes fill the issue slots of the
MEM slices beside the VXM. Here a plane loads a head vector's K rows (fp16, as the cache holds
them) and one product per head gives that head's scores of up to `lanes` positions as one
vector; the softmax then runs on those, a few operations per head whatever the context. The
weighted sum stays on the VXM (it sums over positions, which a plane could only do with V
transposed, i.e. positions along lanes, and a step adds one position to every row): per
position one SXM permute broadcasts each head's weight over the head's lanes, one multiply by
the cached V, one add. Same recipe as kernels/reference.py: fp16(q) . fp16(k) summed in fp32
(a plane sums lanes in order, the masked lanes adding zeros), max-subtracted exp, fp16(e)
weights on V, normalised after the sum.
"""

from __future__ import annotations

import numpy as np

from lpu.kernels.gemv import hemispheres, read_out
from lpu.kernels.sched import Scheduler, Vec
from lpu.kernels.timing import lat
from lpu.kernels.vector_ops import round16, tree

# A step scores on the MXM once the positions it attends to (its own included) times the head
# vectors reach this; below, the VXM path is shorter: its ~8 operations per position and head
# vector fill the MEM slices beside the VXM, but the plane path adds ~200 cycles of latency a
# layer on tsp-v1 (the plane, and two more SXM round trips). Measured crossovers (cycles of
# both paths, `lpu compile`, int8): gpt2-small (3 head vectors) 24-32 positions, demo (1) ~50;
# on mini, tiny and tiny-gpt2 (4 each) 2-3 positions. Other chips take tsp-v1's.
MXM_FROM_WORK = {"tsp-v1": 64, "mini": 8}


def mxm_from(chip: str, head_vectors: int) -> int:
    """The first attended-position count whose step scores on the MXM."""
    return -(-MXM_FROM_WORK.get(chip, MXM_FROM_WORK["tsp-v1"]) // head_vectors)


def _plane_stage(s: Scheduler, p: int) -> int:
    return next(h.plane_stage for h in hemispheres(s.chip) if p in h.planes)


def scores_on_plane(s: Scheduler, rows: list[Vec], acts: list[Vec]) -> list[Vec]:
    """y_i = K @ a_i for each activation a_i (f16), K being `rows` (f16 vectors, at most lanes of
    them) loaded into the plane free soonest: row r of the plane is rows[r]. Rows ready early
    load early (the staging buffer is free once the plane's last install is done); the last
    waits for its vector. Returns one f32 vector per activation; lanes past len(rows) hold
    whatever the plane's stale rows give (mask them)."""
    chip = s.chip
    st8 = s.mxm_state
    planes = [p for h in hemispheres(chip) for p in h.planes]
    p = min(planes, key=lambda q: (st8["ready"].get(q, 0), q))
    stage = _plane_stage(s, p)
    wq = f"mxm{p}.w"
    ready = st8["ready"].get(p, 0)
    last = -1
    for r, v in enumerate(rows):  # one row a cycle, on the highest free streams
        c = ready
        while True:
            if s.res.queue_free(wq, c):
                plan = s._fetch_plan(v, stage, c, True)
                if plan is not None:
                    break
            c += 1
        s.res.take_queue(wq, c)
        name = s._take_fetch(v, stage, c, plan)
        s.b.at(wq, c, "lw", dt="f16", a=name, n=1, row=r)
        last = max(last, c)
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
        out.append(read_out(s, stage, p, slot, t + mv_lat))
        t_min = t + 1
    return out


def attention_mxm(s: Scheduler, q: Vec, kc: list[Vec], vc: list[Vec], n_heads: int,
                  head_dim: int, scale: float) -> Vec:
    """One head vector's attention output (f32, head-aligned lanes like q) over the cached
    positions kc (f16 K rows) and vc (f32 V vectors holding fp16 values), this step's included.
    n_heads: heads in this vector (the first n_heads slots of head_dim lanes)."""
    L = s.chip.lanes
    n = len(kc)
    lane = np.arange(L)
    slot_of = np.where(lane < n_heads * head_dim, lane // head_dim, -1)
    # q masked to each head, fp16: the plane's activations
    q16 = s.op("cvt", [q], "f16", **{"from": "f32", "to": "f16"})
    q16m = [s.op("and", [q16, s.const_bits(f"const.att.head{h}.f16", "f16",
                                                 np.where(slot_of == h, 0xFFFF, 0))], "f16")
            for h in range(n_heads)]
    # scores: per head, one vector per chunk of L positions (lane t - chunk * L)
    chunks = [(c, min(L, n - c)) for c in range(0, n, L)]
    sc = [scores_on_plane(s, kc[c:c + m], q16m) for c, m in chunks]
    # a single chunk's reductions take its valid lanes as their segment (the stale lanes are
    # segments of their own); with several, the last chunk's stale lanes become -inf
    seg = chunks[0][1] if len(chunks) == 1 else L
    scores = [[] for _ in range(n_heads)]
    for (_, m), ys in zip(chunks, sc, strict=True):
        for h, y in enumerate(ys):
            if m < seg:  # and, then or the -inf bits in
                y = s.op("and", [y, s.lane_mask(m)], "f32")
                y = s.op("or", [y, s.const_bits(f"const.att.ninf{m}", "f32",
                                                np.where(lane < m, 0, 0xFF800000))], "f32")
            scores[h].append(s.op("muli", [y], "f32", imm=scale))
    e16, sums = [], []
    for h in range(n_heads):
        mx = s.op("rmax", [tree(s, "max", scores[h])], "f32", seg=seg)
        es = [s.op("exp", [s.op("sub", [y, mx], "f32")], "f32") for y in scores[h]]
        sums.append(tree(s, "add", [s.op("rsum", [e], "f32", seg=seg) for e in es]))
        e16.append([round16(s, e) for e in es])
    # the weights packed per window of head_dim positions: lane h*hd + i holds head h's weight
    # of position w*hd + i, so one permute broadcasts a position's weights to all heads' lanes
    windows = []
    for w0 in range(0, n, head_dim):
        parts = []
        for h in range(n_heads):
            for ci, (c, m) in enumerate(chunks):
                src = w0 + lane % head_dim - c  # the chunk lane of each destination's position
                ok = (slot_of == h) & (src >= 0) & (src < m) & (w0 + lane % head_dim < n)
                if ok.any():
                    parts.append(s.op("permute", [e16[h][ci]], "f32", sg=4,
                                      map=s.b.lane_map(np.where(ok, src, -1))))
        windows.append(tree(s, "or", parts))
    terms = []
    for t in range(n):
        w, i = divmod(t, head_dim)
        bmap = np.where(slot_of >= 0, slot_of * head_dim + i, -1)
        b = s.op("permute", [windows[w]], "f32", sg=4, map=s.b.lane_map(bmap),
                 avoid=vc[t].slices)
        # the add tree pairs terms 2k and 2k+1: apart, neither is copied first
        terms.append(s.op("mul", [b, vc[t]], "f32", avoid=terms[-1].slices if t % 2 else ()))
    # 1 / sum per head over its lanes (lanes of no head: 1, so they stay finite); a sum is
    # in lane 0 of its vector (and every lane of its segment)
    packed = [s.op("permute", [sm], "f32", sg=4, map=s.b.lane_map(np.where(slot_of == h, 0, -1)))
              for h, sm in enumerate(sums)]
    if n_heads * head_dim < L:
        packed.append(s.const_bits(f"const.att.one{n_heads}", "f32", np.where(
            slot_of < 0, np.float32(1).view(np.uint32), 0)))
    r = s.op("recip", [tree(s, "or", packed)], "f32")
    return s.op("mul", [tree(s, "add", terms), r], "f32")

