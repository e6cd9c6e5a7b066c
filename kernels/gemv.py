"""Matrix-vector products tiled over the MXM planes, with weight streaming at full stream rate.

Each hemisphere streams weight rows from its MEM slices over all its streams toward its MXM
planes, alternating planes so one installs while the other loads; the activation rides the same
streams in a one-cycle slot per block, and results flow back to MEM in the other direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lpu.errors import LpuError
from lpu.isa.chips import Chip, get_chip
from lpu.isa.dtypes import nbytes
from lpu.isa.program import Program
from lpu.kernels.builder import Builder
from lpu.kernels.timing import EAST, WEST, lat, stream


@dataclass
class Hemisphere:
    """The parts of one hemisphere a GEMV uses."""

    name: str  # "w" or "e"
    planes: list[int]
    plane_stage: int
    to_plane: int  # stream direction from MEM toward the planes
    weight_slices: list[str]  # MEM queues streaming weights, one stream each
    x_slices: list[str]  # MEM queues holding the activation's byte planes
    y_slices: dict[int, list[str]]  # per plane: MEM queues receiving the result's 4 planes


def hemispheres(chip: Chip, x_bytes: int = 2) -> list[Hemisphere]:
    """Split each hemisphere's slices: the ones nearest the VXM hold x and y, the rest stream
    weights (as many as there are streams)."""
    out = []
    p = chip.mxm_planes_per_hemisphere
    for h in ("w", "e"):
        planes = list(range(p)) if h == "w" else list(range(p, 2 * p))
        n_spare = x_bytes + 4 * p
        n = chip.mem_slices_per_hemisphere
        if n <= n_spare:
            raise LpuError(f"chip {chip.name} has too few MEM slices per hemisphere for a "
                           f"streamed GEMV ({n} <= {n_spare})")
        names = [f"mem.{h}{i}" for i in range(n)]
        spare, rest = names[:n_spare], names[n_spare:]
        ys = {pl: spare[x_bytes + 4 * i: x_bytes + 4 * i + 4] for i, pl in enumerate(planes)}
        stage = 0 if h == "w" else chip.n_stages - 1
        out.append(Hemisphere(h, planes, stage, WEST if h == "w" else EAST,
                              rest[:chip.streams], spare[:x_bytes], ys))
    return out


@dataclass
class GemvResult:
    program: Program
    predicted_cycles: int
    blocks: int
    feed_cycles: int  # cycles the planes spent receiving weights (per hemisphere, max)
    notes: dict = field(default_factory=dict)


class _Alloc:
    """Next free address per MEM slice."""

    def __init__(self, chip: Chip) -> None:
        self.chip = chip
        self.next: dict[str, int] = {}

    def take(self, q: str, n: int, bank: int = 0) -> int:
        base = bank * self.chip.bank_words
        a = self.next.get((q, bank), base)
        if a + n > base + self.chip.bank_words:
            raise LpuError(f"GEMV does not fit: slice {q} bank {bank} is full")
        self.next[(q, bank)] = a + n
        return a


def build_gemv(M: int, K: int, wdt: str = "f16", chip: Chip | str = "tsp-v1",
               weights: np.ndarray | None = None, x: np.ndarray | None = None) -> GemvResult:
    """y (M,) f32 = W (M, K) @ x (K,) with W in `wdt` (f16 or i8) and x in f16.

    Segments: W (M, K) wdt, x (K,) f16 (west copy) and x_e (east copy), y (M,) f32.
    """
    chip = get_chip(chip) if isinstance(chip, str) else chip
    L = chip.lanes
    g = nbytes(wdt)
    if wdt not in ("f16", "i8"):
        raise LpuError("GEMV weights must be f16 or i8")
    mb, kb = -(-M // L), -(-K // L)
    b = Builder(chip, source=f"<gemv {M}x{K} {wdt}>")
    alloc = _Alloc(chip)
    hems = hemispheres(chip)
    lw_lat, iw_lat, mv_lat, acc_lat = (lat(chip, m) for m in ("lw", "iw", "mv", "acc"))
    rd_lat, wr_lat = lat(chip, "read"), lat(chip, "write")

    # Output blocks split between hemispheres; within one, planes take turns.
    split = -(-mb // 2)
    m_of = [list(range(split)), list(range(split, mb))]
    w_slots = np.full((M, kb, g, 2), -1, np.int64)  # (slice, addr) of every weight word
    y_slots = np.full((mb, 4, 2), -1, np.int64)
    x_words: dict[str, list[tuple[str, int]]] = {}
    t0 = max(len(h.weight_slices) for h in hems) + 2 * rd_lat + chip.n_stages  # pipeline fill
    last_event = 0
    feed_max = 0
    for hem, ms in zip(hems, m_of, strict=True):
        if not ms:
            continue
        ws = hem.weight_slices
        n_streams = (len(ws) // g) * g
        rows = n_streams // g
        ncyc = -(-L // rows)
        stage_of = {q: chip.queue(q).stage for q in ws + hem.x_slices}
        for ys in hem.y_slices.values():
            stage_of.update({q: chip.queue(q).stage for q in ys})
        # activation: plane j of vector k in x_slices[j] at address k
        xname = "x" if hem.name == "w" else "x_e"
        xa = [alloc.take(q, kb) for q in hem.x_slices]
        x_words[xname] = [(q, a) for q, a in zip(hem.x_slices, xa, strict=True)]
        # block order: pairs of output blocks interleaved over the planes
        blocks = []
        P = len(hem.planes)
        for i in range(0, len(ms), P):
            group = ms[i:i + P]
            for k in range(kb):
                for j, m in enumerate(group):
                    blocks.append((m, k, hem.planes[j]))
        used: set[int] = set()
        cursor = t0
        plane_ready = {p: t0 for p in hem.planes}
        prev_mv = {p: -1 for p in hem.planes}
        slot_of_m: dict[int, int] = {}
        m_count = {p: 0 for p in hem.planes}
        last_mv_of_m: dict[int, int] = {}
        for m, k, p in blocks:
            c = max(cursor, plane_ready[p])
            wc = []
            while len(wc) < ncyc:
                if c not in used:
                    wc.append(c)
                c += 1
            iw_t = wc[-1] + 1
            if prev_mv[p] >= iw_t:
                raise AssertionError("plane reinstalled before its previous product")
            mv_t = wc[-1] + 1 + iw_lat
            while mv_t in used:
                mv_t += 1
            used.update(wc)
            used.add(mv_t)
            cursor = wc[-1] + 1
            plane_ready[p] = iw_t + 1
            prev_mv[p] = mv_t
            if m not in slot_of_m:
                slot_of_m[m] = m_count[p] % chip.mxm_acc_slots
                m_count[p] += 1
            slot = slot_of_m[m]
            # weights: lw at each plane cycle; stream j carries row r plane j % g
            for ci, tc in enumerate(wc):
                nrows = min(rows, L - ci * rows)
                b.at(f"mxm{p}.w", tc, "lw", dt=wdt, a=stream(hem.to_plane, 0), n=nrows,
                     row=ci * rows)
                for j in range(nrows * g):
                    q = ws[j]
                    addr = alloc.take(q, 1)
                    r = m * L + ci * rows + j // g
                    if r < M:
                        w_slots[r, k, j % g] = (chip.queue(q).index, addr)
                    t_rd = tc - lw_lat * 0 - rd_lat - abs(stage_of[q] - hem.plane_stage)
                    b.at(q, t_rd, "read", addr=addr, z=stream(hem.to_plane, j))
            b.at(f"mxm{p}.w", iw_t, "iw")
            # activation k on streams 0..1 in the slot
            for j, (q, a0) in enumerate(x_words[xname]):
                t_rd = mv_t - rd_lat - abs(stage_of[q] - hem.plane_stage)
                b.at(q, t_rd, "read", addr=a0 + k, z=stream(hem.to_plane, j))
            b.at(f"mxm{p}.a", mv_t, "mv", dt="f16", a=stream(hem.to_plane, 0), acc=slot,
                 add=0 if k == 0 else 1)
            last_mv_of_m[m] = mv_t
            feed_max = max(feed_max, mv_t - t0 + 1)
            if k == kb - 1:  # result out: acc -> 4 streams away from the plane -> 4 slices
                out_dir = EAST if hem.name == "w" else WEST
                pi = hem.planes.index(p)
                t_acc = mv_t + mv_lat
                b.at(f"mxm{p}.r", t_acc, "acc", acc=slot, z=stream(out_dir, 4 * pi))
                for j, q in enumerate(hem.y_slices[p]):
                    a = alloc.take(q, 1, bank=1)
                    y_slots[m, j] = (chip.queue(q).index, a)
                    t_wr = t_acc + acc_lat + abs(stage_of[q] - hem.plane_stage)
                    b.at(q, t_wr, "write", addr=a, a=stream(out_dir, 4 * pi + j))
                    last_event = max(last_event, t_wr + wr_lat)

    def runs(slots: np.ndarray) -> list[tuple[int, int, int]]:
        s = slots.reshape(-1, 2)
        return [(int(a), int(c), 1) for a, c in s]

    wr = w_slots.reshape(-1, 2)
    if (wr < 0).any():
        raise AssertionError("a weight word was not placed")
    b.data("W", wdt, (M, K), runs(w_slots), weights)
    for xname, words in x_words.items():
        placement = []
        for k in range(kb):
            for q, a0 in words:
                placement.append((q, a0 + k, 1))
        b.data(xname, "f16", (K,), placement, x)
    b.data("y", "f32", (M,), runs(y_slots))
    prog = b.build()
    predicted = last_event + 1 + chip.skew
    return GemvResult(prog, predicted, mb * kb, feed_max,
                      {"rows_per_cycle": rows, "cycles_per_block": ncyc})
