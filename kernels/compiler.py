"""The compiler: a transformer decode step as one static program for one chip.

Weights are laid out once (GEMV order decides every weight word's slice and address); each step
(one program per position, since the attention length is part of the schedule) places every
operation at a fixed cycle. The embedding lookup is a table read done by the host runtime.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lpu.errors import LpuError
from lpu.isa.chips import Chip, get_chip
from lpu.isa.program import Program, tensor_to_words
from lpu.kernels.attention import attention_mxm, mxm_from
from lpu.kernels.config import ModelConfig
from lpu.kernels.gemv import WeightAlloc, gemv, loaded_rows, place_weights
from lpu.kernels.sched import LatencyScheduler, Scheduler, Vec, weight_slices
from lpu.kernels.vector_ops import F16_F32, reduce_all, round16, tree

BIG = 1 << 30  # larger than any vocabulary index: the "no candidate" value of the argmax
ARGMAX_RUN = 8  # the running argmax takes the logits vectors in trees of this many (_argmax)
# The VXM attention path chains its per-position operations from this many positions on
# (gpt2-small int8, compiled for 64 positions, cycles unchained -> chained: position 0
# 10,657 -> 10,712, 1 10,985 -> 10,773, 2 11,045 -> 10,900)
CHAIN_FROM = 2


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8 (the numeric recipe): q = rint(w / s), s = max|w|/127."""
    w32 = np.asarray(w, np.float32)
    amax = np.maximum(w32.max(axis=1), -w32.min(axis=1))  # max |w| without a copy of |w|
    scale = np.where(amax > 0, amax / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = w32 / scale[:, None]
    np.rint(q, out=q)  # in place: an LM head's temporaries are ~150 MB each
    np.clip(q, -127, 127, out=q)
    return q.astype(np.int8), scale


def folded_sums(w: np.ndarray, scale: np.ndarray | None, gamma: np.ndarray, beta: np.ndarray,
                bias: np.ndarray | None, rows: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """c1 = W gamma and c2 = W beta + bias (W = w * scale per row when int8) as float32 of
    float64 sums, rows at a time: a float64 copy of a whole LM head would be ~300 MB. Each
    row is summed by numpy's pairwise reduction over its own elements, so the bits do not
    depend on the chunk, the row count or the BLAS threads."""
    g, b = np.asarray(gamma, np.float64), np.asarray(beta, np.float64)
    c1 = np.empty(w.shape[0], np.float32)
    c2 = np.empty(w.shape[0], np.float32)
    for r0 in range(0, w.shape[0], rows):
        wd = np.asarray(w[r0:r0 + rows], np.float64)
        if scale is not None:
            wd *= np.asarray(scale[r0:r0 + rows], np.float64)[:, None]
        c1[r0:r0 + rows] = np.add.reduce(wd * g, axis=1)
        s2 = np.add.reduce(wd * b, axis=1)
        if bias is not None:
            s2 += np.asarray(bias[r0:r0 + rows], np.float64)
        c2[r0:r0 + rows] = s2
    return c1, c2


@dataclass
class Matrix:
    """One GEMV as the chip sees it: block rows, the valid weight rows in order (fp16 or int8
    values), the output-row map (chip lane -> model row, -1 padding) and per-lane scale/bias."""

    name: str
    block_rows: list[int]
    K: int
    weights: np.ndarray  # (sum(block_rows), K) float16 or int8
    out_rows: np.ndarray  # (n_blocks * lanes,) model row of each output lane, -1 for padding
    scale: np.ndarray | None  # (n_blocks * lanes,) f32, int8 only
    bias: np.ndarray | None  # (n_blocks * lanes,) f32
    # a GEMV that takes a LayerNorm's output takes gamma * x instead (the norm folded in, see
    # Compiler._linear): per lane c1 = W gamma and c2 = W beta + bias (f32 of float64 sums over
    # the dequantized weights), and no bias of its own
    c1: np.ndarray | None = None
    c2: np.ndarray | None = None
    params: int = 0  # the model matrix's weights (a GQA k/v before its heads are repeated)


@dataclass
class Layout:
    """How activations sit in vectors: the q-aligned layout keeps every head inside a vector."""

    lanes: int
    head_dim: int
    heads_per_vec: int
    n_qvec: int

    def head_lanes(self, n_heads: int, kv_of: np.ndarray | None = None) -> np.ndarray:
        """(n_qvec * lanes,) model row (head*hd + i) of each lane; kv_of maps q head -> row head."""
        rows = np.full(self.n_qvec * self.lanes, -1, np.int64)
        for h in range(n_heads):
            src = h if kv_of is None else int(kv_of[h])
            v, slot = divmod(h, self.heads_per_vec)
            base = v * self.lanes + slot * self.head_dim
            rows[base:base + self.head_dim] = src * self.head_dim + np.arange(self.head_dim)
        return rows


def _blocks_from_rows(rows: np.ndarray, lanes: int) -> list[int]:
    """Valid lanes per block for an output-row map whose padding sits at each block's end."""
    out = []
    for b in range(len(rows) // lanes):
        blk = rows[b * lanes:(b + 1) * lanes]
        n = int((blk >= 0).sum())
        if n == 0 or (blk[:n] < 0).any():
            raise AssertionError("padding must sit at the end of a block")
        out.append(n)
    return out


@dataclass
class CompiledStep:
    program: Program
    pos: int
    predicted_cycles: int
    spans: list[dict] = field(default_factory=list)


class Compiler:
    """Compiles decode steps of one model for one chip."""

    def __init__(self, weights, chip: Chip | str = "tsp-v1", weights_dtype: str = "fp16",
                 max_context: int = 64) -> None:
        self.cfg: ModelConfig = weights.config
        self.t = weights.tensors
        self.chip = get_chip(chip) if isinstance(chip, str) else chip
        if weights_dtype not in ("fp16", "int8"):
            raise LpuError(f"the LPU compiler takes fp16 or int8 weights, not {weights_dtype}")
        self.wdt = "i8" if weights_dtype == "int8" else "f16"
        self.weights_dtype = weights_dtype
        cfg, L = self.cfg, self.chip.lanes
        from lpu.kernels.sched import weight_slices

        spare = self.chip.mem_slices_per_hemisphere - len(weight_slices(self.chip, "w"))
        if spare < 4:
            raise LpuError(f"chip {self.chip.name} is too small for the compiler's layout: an fp32 "
                           f"activation needs 4 MEM slices on one side of the VXM, and "
                           f"{self.chip.name} keeps {spare} per hemisphere beside its weight "
                           "slices", hint="compile for tsp-v1")
        self.max_context = min(max_context, cfg.max_positions)
        hd = cfg.head_dim
        if hd > L:
            raise LpuError(f"head_dim {hd} is wider than a {L}-lane vector")
        hpv = L // hd
        self.layout = Layout(L, hd, hpv, -(-cfg.n_heads // hpv))
        self.nd = -(-cfg.d_model // L)
        # steps attending to this many positions or more score on the MXM (kernels/attention.py)
        self.attention_mxm_from = mxm_from(self.chip.name, self.layout.n_qvec)
        self.kv_of = np.arange(cfg.n_heads) // (cfg.n_heads // cfg.n_kv_heads)
        self.mats: dict[str, Matrix] = {}
        self._words: dict[str, tuple[bytes | None, np.ndarray]] = {}  # name: (layout, words)
        self._plans: dict = {}  # weight placement of each GEMV (the same for every step)
        self._runs: dict[str, np.ndarray] = {}  # weight segment: its runs, shared by steps
        # the KV cache's places, and the allocator's state after them (_schedule_step)
        self._kv_places: tuple | None = None
        self._prepare()

    # ---- host-side preparation of every GEMV -------------------------------------------------
    def _matrix(self, name: str, w: np.ndarray, out_rows: np.ndarray,
                bias: np.ndarray | None = None, in_cols: np.ndarray | None = None,
                norm: str | None = None) -> None:
        """w: (out, in) model matrix. out_rows: model row per output lane (-1 = padding);
        in_cols: model column per input lane (-1 = zero) when the input is not natural;
        norm: the norm (tensor prefix) whose output is this GEMV's input, folded in."""
        L = self.chip.lanes
        w = w_model = np.asarray(w)
        scale_rows = None
        if self.wdt == "i8":
            q, scale_rows = quantize_rows(w)
            w = q
        else:
            w = w.astype(np.float16)
        if in_cols is not None:
            wc = np.zeros((w.shape[0], len(in_cols)), w.dtype)
            ok = in_cols >= 0
            wc[:, ok] = w[:, in_cols[ok]]
            w = wc
        valid = out_rows[out_rows >= 0]
        lane_ok = out_rows >= 0
        scale = bias_l = None
        if scale_rows is not None:
            scale = np.zeros(len(out_rows), np.float32)
            scale[lane_ok] = scale_rows[valid]
        if bias is not None:
            bias_l = np.zeros(len(out_rows), np.float32)
            bias_l[lane_ok] = np.asarray(bias, np.float32)[valid]
        m = Matrix(name, _blocks_from_rows(out_rows, L), w.shape[1], w[valid], out_rows, scale,
                   bias_l, params=int(w_model.size))
        beta = None if norm is None else self.t.get(norm + ".bias")
        if beta is not None:  # LayerNorm: the mean and beta come back through c1 and c2
            gamma = self.t[norm + ".weight"]
            c1r, c2r = folded_sums(w, scale_rows, gamma, beta,
                                   None if bias is None else np.asarray(bias, np.float32))
            m.c1, m.c2 = (np.zeros(len(out_rows), np.float32) for _ in range(2))
            m.c1[lane_ok] = c1r[valid]
            m.c2[lane_ok] = c2r[valid]
            m.bias = None
        self.mats[name] = m

    def _natural(self, n: int) -> np.ndarray:
        L = self.chip.lanes
        rows = np.full(-(-n // L) * L, -1, np.int64)
        rows[:n] = np.arange(n)
        return rows

    def _prepare(self) -> None:
        cfg, t = self.cfg, self.t
        lay = self.layout
        q_rows = lay.head_lanes(cfg.n_heads)
        kv_rows = lay.head_lanes(cfg.n_heads, self.kv_of)
        d_rows = self._natural(cfg.d_model)
        for i in range(cfg.n_layers):
            p = f"layers.{i}."
            an, mn = p + "attn_norm", p + "mlp_norm"
            if cfg.family == "llama":
                self._matrix(f"{i}.q", t[p + "q.weight"], q_rows, norm=an)
                self._matrix(f"{i}.k", t[p + "k.weight"], kv_rows, norm=an)
                self._matrix(f"{i}.v", t[p + "v.weight"], kv_rows, norm=an)
                self._matrix(f"{i}.o", t[p + "o.weight"], d_rows, in_cols=q_rows)
                self._matrix(f"{i}.gate", t[p + "gate.weight"], self._natural(cfg.d_ff), norm=mn)
                self._matrix(f"{i}.up", t[p + "up.weight"], self._natural(cfg.d_ff), norm=mn)
                self._matrix(f"{i}.down", t[p + "down.weight"], d_rows)
            else:
                d = cfg.d_model
                wqkv, bqkv = t[p + "qkv.weight"], t[p + "qkv.bias"]
                for j, nm in enumerate("qkv"):
                    rows = q_rows if nm == "q" else kv_rows
                    self._matrix(f"{i}.{nm}", wqkv[j * d:(j + 1) * d], rows,
                                 bias=bqkv[j * d:(j + 1) * d], norm=an)
                self._matrix(f"{i}.o", t[p + "o.weight"], d_rows, bias=t[p + "o.bias"],
                             in_cols=q_rows)
                self._matrix(f"{i}.fc", t[p + "fc.weight"], self._natural(cfg.d_ff),
                             bias=t[p + "fc.bias"], norm=mn)
                self._matrix(f"{i}.proj", t[p + "proj.weight"], d_rows, bias=t[p + "proj.bias"])
        self._matrix("lm_head", t["lm_head.weight"], self._natural(cfg.vocab_size),
                     norm="final_norm")

    # ---- sizes and bounds -------------------------------------------------------------------------
    def weight_words(self) -> int:
        """MEM words the weights take as laid out (rows padded to whole vectors, K tails packed
        in pairs where they fit, byte planes)."""
        g = 1 if self.wdt == "i8" else 2
        L = self.chip.lanes
        return sum(loaded_rows(m.block_rows, m.K, L, self.wdt, True) * g
                   for m in self.mats.values())

    def far_floor(self) -> int | None:
        """The word of every weight slice from which the KV cache and far values may live
        (MemAlloc.open_far): above the weights' even share of the weight slices, with a margin
        for their uneven spread (each block's words go round the slices of the hemisphere whose
        planes take it; gpt2-small int8: 6,870-6,874 words a slice); None if no room is left."""
        chip = self.chip
        n = sum(len(weight_slices(chip, h)) for h in ("w", "e"))
        share = -(-self.weight_words() // n)
        floor = share + share // 50 + 2 * chip.streams
        return floor if floor < chip.mem_words else None

    def roofline(self, step: CompiledStep) -> dict:
        """The lower bound on a step's cycles (tsp.md): the largest of the weight feed, SRAM
        reads, VXM work and the critical path of the step's dataflow."""
        from lpu.schedule import build_schedule

        chip, L = self.chip, self.chip.lanes
        g = 1 if self.wdt == "i8" else 2
        weight_bytes = self.cfg.matmul_params() * g
        sched = build_schedule(step.program, chip)
        ops = np.bincount(sched.opcode, minlength=256)
        from lpu.isa.table import BY_MNEMONIC as B

        reads = int(ops[B["read"].opcode])
        vxm = int(sum(ops[i.opcode] for i in B.values() if i.unit == "vxm"))
        terms = {
            # weights / bytes the streams can carry into the MXMs per cycle (both directions)
            "feed": weight_bytes / (2 * chip.streams * L),
            # every word read / SRAM read words per cycle (one read per slice per cycle: the
            # second bank's port serves writes in this model)
            "sram": reads / chip.mem_slices,
            "vxm": vxm / chip.vxm_queues,
            # the longest chain of dependent operations at their minimum latencies (weights
            # already in the planes, unlimited streams and ports): see critical_path()
            "critical_path": self.critical_path(step.pos),
            # the same with the planes' weight buffers: see buffered_path()
            "buffered_path": self.buffered_path(step.pos),
        }
        bound = max(terms.values())
        bandwidth = max(terms["feed"], terms["sram"], terms["vxm"])
        return {"terms_cycles": terms, "binding": max(terms, key=terms.get),
                "bound_cycles": bound, "cycles": step.predicted_cycles,
                "ratio": step.predicted_cycles / bound,
                # the same against the bandwidth terms alone (as if latency were free)
                "ratio_to_bandwidth": step.predicted_cycles / bandwidth,
                "weight_bytes": weight_bytes,
                "words_read": reads, "vxm_ops": vxm}

    # ---- memory plan ----------------------------------------------------------------------------
    def memory_plan(self, step: CompiledStep | None = None) -> dict:
        """Bytes per region and headroom, from a step's placement (position 0 by default)."""
        step = step or self.compile_step(0)
        L = self.chip.lanes
        per_slice: dict[str, int] = {}
        regions: dict[str, int] = {}
        slice_name = {q.index: q.name for q in self.chip.queues if q.unit == "mem"}
        for seg in step.program.segments:
            nbytes = seg.n_words * L
            kind = ("weights" if seg.name.endswith(".W") else "kv_cache" if ".kv." in seg.name
                    else "constants" if seg.data is not None else "activations_io")
            regions[kind] = regions.get(kind, 0) + nbytes
            sl, cnt = np.unique(seg.runs[:, 0], return_counts=True)
            for a, n in zip(sl, cnt, strict=True):
                nm = slice_name[int(a)]
                per_slice[nm] = per_slice.get(nm, 0) + int(n) * L
        total = sum(regions.values())
        return {"chip": self.chip.name, "sram_bytes": self.chip.sram_bytes,
                "used_bytes": total, "headroom_bytes": self.chip.sram_bytes - total,
                "regions": regions, "per_slice_bytes": per_slice}

    # ---- one decode step -------------------------------------------------------------------------
    def compile_step(self, pos: int) -> CompiledStep:
        if not 0 <= pos < self.max_context:
            raise LpuError(f"position {pos} is beyond the compiled context of "
                           f"{self.max_context} positions")
        s = Scheduler(self.chip, source=f"<{self.cfg.name} step pos={pos}>")
        spans = self._scheduled(s, pos)
        for name, m in self.mats.items():
            plan = self._plans[name]
            key = None if plan.layout is None else plan.layout.tobytes()
            if name not in self._words or self._words[name][0] != key:  # convert once: later
                self._words[name] = (key, tensor_to_words(  # steps, same layout, reuse it
                    plan.arrange(m.weights), self.wdt, self.chip.lanes))
            seg = place_weights(s, f"{name}.W", plan, None, self._words[name][1])
            seg.runs = self.shared_runs(seg.name, seg.runs)
        spans.insert(0, {"name": f"step pos={pos}", "kind": "step", "start": 0,
                         "end": s.last_cycle})
        return CompiledStep(s.build(), pos, s.predicted_cycles(), spans)

    def shared_runs(self, segment: str, runs: np.ndarray) -> np.ndarray:
        """A weight segment's placement as the steps share it: a weight's place does not depend
        on the position (kernels/gemv.py _load_block), so every step's program can hold one
        copy of it (runs itself when it is the first, or differs)."""
        old = self._runs.get(segment)
        if old is not None and np.array_equal(old, runs):
            return old
        self._runs[segment] = runs
        return runs

    def shared_words(self, segment: str) -> tuple[bytes | None, np.ndarray] | None:
        """A weight segment's words as the steps share them, with the layout key they were
        converted for (None if `segment` names no weight segment converted so far)."""
        if not segment.endswith(".W"):
            return None
        return self._words.get(segment[:-2])

    def buffered_path(self, pos: int) -> int:
        """The critical path with the planes' weight buffers (LatencyScheduler(buffered=True)):
        a GEMV's weights beyond what the buffers hold stream after its first input arrives, so
        its last product waits for them. Which output block comes last is the compiler's choice:
        the smaller of the schedules with the first and with the last block waiting."""
        out = []
        for late in ("first", "last"):
            s = LatencyScheduler(self.chip, buffered=True, late_block=late)
            self._scheduled(s, pos)
            out.append(s.predicted_cycles())
        return min(out)

    def critical_path(self, pos: int) -> int:
        """Cycles of the step at `pos` with unlimited queues, streams, SRAM ports and weights
        already in the planes (LatencyScheduler): the longest chain of dependent operations,
        each at its minimum latency. No schedule of this dataflow can be shorter."""
        s = LatencyScheduler(self.chip)
        self._scheduled(s, pos)
        return s.predicted_cycles()

    def _scheduled(self, s: Scheduler, pos: int) -> list[dict]:
        """_schedule_step, saying what did not fit when the slices beside the VXM run out."""
        try:
            return self._schedule_step(s, pos)
        except LpuError as e:
            if not e.message.startswith("out of SRAM"):
                raise
            raise LpuError(f"{self.cfg.name} on {self.chip.name}: the KV cache of "
                           f"{self.max_context} positions and a step's values do not fit in the "
                           "MEM slices beside the VXM (the other slices hold the weights)",
                           hint="decode fewer positions (prompt plus new tokens)") from e

    def _schedule_step(self, s: Scheduler, pos: int) -> list[dict]:
        """Schedule every operation of one step into s; returns the compile spans."""
        cfg, chip = self.cfg, self.chip
        L = chip.lanes
        lay = self.layout
        floor = self.far_floor()
        walloc = WeightAlloc(chip, top=floor)
        if floor is not None:
            s.mem.open_far(floor)
        spans: list[dict] = []
        # persistent state first, in a fixed order, so every step sees the same addresses
        # K in fp16 (the rows an MXM plane loads, see kernels/attention.py), V in fp32 (the
        # VXM multiplies it); both hold fp16 values. Both go to the weight slices' spare room
        # while there is some, spread over all their stages (then beside the VXM): the weighted
        # sum reads every position's V, and beside the VXM those reads took the issue slots its
        # products and sums need (gpt2-small int8 at position 63: 15,602 -> 15,443 cycles);
        # the plane loads every earlier position's K row, and beside the VXM three planes'
        # rows queued for the same 24 slices, one or two rows a cycle (63 / 127: 13,659 /
        # 15,136 -> 13,393 / 14,775; position 0 10,731 -> 10,688, 15 12,138 -> 12,195)
        # The places are the same for every step (and every scheduler: the same MemAlloc from
        # the same state), so they are chosen once and replayed with the allocator's state
        # after them: choosing them took ~half of a step's compile for 1,024 positions
        if self._kv_places is None:
            kc0, vc0 = [], []
            far = [floor is not None]
            for _ in range(cfg.n_layers):
                for cache, dt in ((kc0, "f16"), (vc0, "f32")):
                    cache.append([[self._cache_vector(s, dt, far) for _ in range(lay.n_qvec)]
                                  for _ in range(self.max_context)])
            self._kv_places = (kc0, vc0, dict(s.mem.next), s.mem.taken_after)
        else:
            s.mem.next = dict(self._kv_places[2])
            s.mem.taken_after = self._kv_places[3]
        # this step's own lists: its attention replaces the entries at pos
        kcache = [[list(row) for row in layer] for layer in self._kv_places[0]]
        vcache = [[list(row) for row in layer] for layer in self._kv_places[1]]
        for i in range(cfg.n_layers):
            for cache, nm, dt in ((kcache, "k", "f16"), (vcache, "v", "f32")):
                placement = [(v.slices[j], v.addr, 1) for row in cache[i] for v in row
                             for j in range(v.g)]
                s.b.data(f"{i}.kv.{nm}", dt, (self.max_context, lay.n_qvec * L), placement)
        consts = self._constants(s, pos)
        x = s.place("x0", "f32", None, cfg.d_model)

        def mark(name: str, kind: str, start: int) -> None:
            spans.append({"name": name, "kind": kind, "start": start, "end": s.last_cycle})

        for i in range(cfg.n_layers):
            t_layer = s.last_cycle
            # a layer's values but its output are read only inside it: their places are
            # free for the next layers once those reads are done
            with s.scope() as keep:
                x = self._layer(s, walloc, i, x, consts, kcache[i], vcache[i], pos, mark)
                keep += x
            spans.append({"name": f"layer {i}", "kind": "layer", "start": t_layer,
                          "end": s.last_cycle})
        t0 = s.last_cycle
        h16, nrm = self._norm(s, x, consts, "final_norm")
        logits = self._linear(s, walloc, "lm_head", h16, consts, nrm)
        nv = len(logits)
        rem = cfg.vocab_size - (nv - 1) * L
        if rem < L:  # padding lanes must never win the argmax
            logits[-1] = s.op("add", [logits[-1], consts["neg_pad"]], "f32")
        s.output("logits", logits, cfg.vocab_size)
        mark("lm_head", "kernel", t0)
        t0 = s.last_cycle
        tok = self._argmax(s, logits, consts)
        s.output("token", [tok], 1)
        mark("argmax", "kernel", t0)
        return spans

    def _cache_vector(self, s: Scheduler, dt: str, far: list[bool]) -> Vec:
        """A KV cache vector: in the weight slices' spare room while far[0] (set to False once
        that room is full), else beside the VXM."""
        if far[0]:
            try:
                return s.mem.vector(dt, self.chip.vxm_stage, far=True, groups=self.chip.n_stages)
            except LpuError:
                far[0] = False
        return s.mem.vector(dt, self.chip.vxm_stage)

    def _layer(self, s: Scheduler, walloc: WeightAlloc, i: int, x: list[Vec], consts: dict,
               kc: list[list[Vec]], vc: list[list[Vec]], pos: int,
               mark: Callable[[str, str, int], None]) -> list[Vec]:
        """One transformer layer on the residual x; returns the new residual."""
        cfg = self.cfg
        t_layer = s.last_cycle
        h16, nrm = self._norm(s, x, consts, f"{i}.attn_norm")
        mark(f"layer {i} attn_norm", "kernel", t_layer)
        t0 = s.last_cycle
        q = self._linear(s, walloc, f"{i}.q", h16, consts, nrm)
        k = self._linear(s, walloc, f"{i}.k", h16, consts, nrm)
        v = self._linear(s, walloc, f"{i}.v", h16, consts, nrm)
        mark(f"layer {i} qkv", "kernel", t0)
        t0 = s.last_cycle
        if cfg.family == "llama":
            q = [self._rope(s, qv, consts, j) for j, qv in enumerate(q)]
            k = [self._rope(s, kv, consts, j) for j, kv in enumerate(k)]
        att = self._attention(s, q, k, v, kc, vc, pos)
        mark(f"layer {i} attention", "kernel", t0)
        t0 = s.last_cycle
        a16 = [s.op("cvt", [a], "f16", **{"from": "f32", "to": "f16"}) for a in att]
        x = self._linear(s, walloc, f"{i}.o", a16, consts, res=x)
        mark(f"layer {i} o_proj", "kernel", t0)
        t0 = s.last_cycle
        h16, nrm = self._norm(s, x, consts, f"{i}.mlp_norm")
        if cfg.family == "llama":
            gt = self._linear(s, walloc, f"{i}.gate", h16, consts, nrm)
            up = self._linear(s, walloc, f"{i}.up", h16, consts, nrm)
            act = [s.op("mul", [s.op("mul", [gv, s.op("sigmoid", [gv], "f32")], "f32"),
                                uv], "f32") for gv, uv in zip(gt, up, strict=True)]
            a16 = [s.op("cvt", [a], "f16", **{"from": "f32", "to": "f16"}) for a in act]
            x = self._linear(s, walloc, f"{i}.down", a16, consts, res=x)
        else:
            fc = self._linear(s, walloc, f"{i}.fc", h16, consts, nrm)
            act = [self._gelu(s, fv) for fv in fc]
            a16 = [s.op("cvt", [a], "f16", **{"from": "f32", "to": "f16"}) for a in act]
            x = self._linear(s, walloc, f"{i}.proj", a16, consts, res=x)
        mark(f"layer {i} mlp", "kernel", t0)
        return x

    # ---- building blocks ----------------------------------------------------------------------
    def _constants(self, s: Scheduler, pos: int) -> dict:
        cfg, L, lay = self.cfg, self.chip.lanes, self.layout
        c: dict = {}
        t = self.t

        def vec_const(name: str, values: np.ndarray) -> list[Vec]:
            return s.place(name, "f32", np.asarray(values, np.float32), len(values))

        norms = [f"{i}.{n}" for i in range(cfg.n_layers) for n in ("attn_norm", "mlp_norm")]
        for n in norms + ["final_norm"]:
            key = ("layers." + n) if n != "final_norm" else n
            c[n + ".w"] = vec_const(f"const.{n}.w", t[key + ".weight"].astype(np.float32))
        for name, m in self.mats.items():
            if m.scale is not None:
                c[name + ".scale"] = vec_const(f"const.{name}.scale", m.scale)
            if m.bias is not None:
                c[name + ".bias"] = vec_const(f"const.{name}.bias", m.bias)
            if m.c1 is not None:
                c[name + ".c1"] = vec_const(f"const.{name}.c1", m.c1)
                c[name + ".c2"] = vec_const(f"const.{name}.c2", m.c2)
        if cfg.family == "llama":
            hd = lay.head_dim
            inv = 1.0 / (cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
            ang = pos * inv
            cos = np.concatenate([np.cos(ang), np.cos(ang)]).astype(np.float32)
            sin = np.concatenate([np.sin(ang), np.sin(ang)]).astype(np.float32)
            # rotate_half(x) * sin == permute(x) * (sign * sin)
            sign = np.concatenate([-np.ones(hd // 2), np.ones(hd // 2)]).astype(np.float32)
            rows = lay.head_lanes(cfg.n_heads)
            lane_i = np.where(rows >= 0, rows % hd, 0)
            ok = rows >= 0
            c["cos"] = vec_const("const.rope_cos", np.where(ok, cos[lane_i], 0))
            c["sin"] = vec_const("const.rope_sin", np.where(ok, (sign * sin)[lane_i], 0))
            perm = np.full(L, -1, np.int64)
            for slot in range(lay.heads_per_vec):
                b = slot * hd
                for i in range(hd):
                    perm[b + i] = b + (i + hd // 2) % hd
            c["rot_map"] = s.b.lane_map(perm)
        nv = -(-cfg.vocab_size // L)
        rem = cfg.vocab_size - (nv - 1) * L
        pad = np.where(np.arange(L) < rem, 0.0, -np.inf).astype(np.float32)
        (c["neg_pad"],) = vec_const("const.neg_pad", pad)
        idx = np.arange(nv * L, dtype=np.int32)
        c["idx"] = s.place("const.argmax_idx", "i32", idx, nv * L)
        return c

    def _linear(self, s: Scheduler, walloc: WeightAlloc, name: str, xs: list[Vec],
                consts: dict, nrm: tuple[Vec, Vec | None] | None = None,
                res: list[Vec] | None = None) -> list[Vec]:
        """y = W x, scaled (int8) and biased; with res, res + y as (W x) + (res + bias), so one
        add waits for the products. With nrm = (r, mean) the input is a folded
        norm's fp16(gamma * x) (see _norm) and the norm is finished on the output:
        y = ((acc * scale) - mean * c1) * r + c2 (LayerNorm), (acc * scale) * r (RMSNorm).
        mean * c1 is ready long before the products; two operations wait for r, which comes
        later than the first blocks' products (so they are the ones kept short)."""
        m = self.mats[name]
        # for the buffered path: the LM head delays none of its blocks (its consumer, the
        # argmax, takes them all: see _argmax); v and up wait for their group's weights (see
        # kernels.gemv._gemv_latency)
        kind = name.split(".")[-1]
        late = "group" if kind in ("v", "up") else kind != "lm_head"
        ys, plan = gemv(s, walloc, m.block_rows, m.K, self.wdt, xs, pack=True, split=True,
                        n_weights=m.params, late=late)
        if plan is not None:  # None from a LatencyScheduler
            self._plans[name] = plan
        if m.scale is not None:
            ys = [s.op("mul", [y, sc], "f32") for y, sc in zip(ys, consts[name + ".scale"],
                                                                 strict=True)]
        if nrm is not None:
            r, mean = nrm
            if m.c1 is not None:
                ys = [s.op("sub", [y, s.op("mul", [mean, c1], "f32")], "f32")
                      for y, c1 in zip(ys, consts[name + ".c1"], strict=True)]
            ys = [s.op("mul", [y, r], "f32") for y in ys]
            if m.c2 is not None:
                ys = [s.op("add", [y, c2], "f32") for y, c2 in zip(ys, consts[name + ".c2"],
                                                                    strict=True)]
        if res is not None:
            if m.bias is not None:
                res = [s.op("add", [x, b], "f32") for x, b in zip(res, consts[name + ".bias"],
                                                                   strict=True)]
            return [s.op("add", [y, x], "f32") for y, x in zip(ys, res, strict=True)]
        if m.bias is not None:
            ys = [s.op("add", [y, b], "f32") for y, b in zip(ys, consts[name + ".bias"],
                                                               strict=True)]
        return ys

    def _norm(self, s: Scheduler, xs: list[Vec], consts: dict, name: str
              ) -> tuple[list[Vec], tuple[Vec, Vec | None]]:
        """A norm folded into the GEMVs that take its output: returns fp16(gamma * x), which
        they can take at once, and the statistics (r, mean) that _linear applies to their
        products (r = 1/sqrt(var + eps), or of mean(x^2) + eps for RMSNorm, which has no
        mean). The statistics are computed beside the products instead of before them."""
        cfg = self.cfg
        inv_n = float(np.float32(1.0 / cfg.d_model))
        eps = float(cfg.norm_eps)
        u16 = [s.op("cvt", [s.op("mul", [x, wv], "f32")], "f16", **{"from": "f32", "to": "f16"})
               for x, wv in zip(xs, consts[name + ".w"], strict=True)]
        sq = [s.op("mul", [x, x], "f32") for x in xs]
        ex2 = s.op("muli", [reduce_all(s, "sum", tree(s, "add", sq))], "f32", imm=inv_n)
        ex2 = s.op("addi", [ex2], "f32", imm=eps)  # mean(x^2) + eps
        if cfg.family == "llama":
            return u16, (s.op("rsqrt", [ex2], "f32"), None)
        # one pass: sum(x) and sum(x^2) go through the SXM side by side, so the statistics wait
        # for one cross-lane round trip, not two (var = E[x^2] - mean^2 in fp32; the
        # cancellation costs ~1e-7 * E[x^2] / var relative, far inside the tolerance)
        mean = s.op("muli", [reduce_all(s, "sum", tree(s, "add", xs))], "f32", imm=inv_n)
        ve = s.op("sub", [ex2, s.op("mul", [mean, mean], "f32")], "f32")
        ve = s.op("maxi", [ve], "f32", imm=eps)  # var + eps, never below eps from rounding
        return u16, (s.op("rsqrt", [ve], "f32"), mean)

    def _rope(self, s: Scheduler, x: Vec, consts: dict, j: int) -> Vec:
        rot = s.op("permute", [x], "f32", sg=4, map=consts["rot_map"])
        a = s.op("mul", [x, consts["cos"][j]], "f32")
        return s.op("add", [a, s.op("mul", [rot, consts["sin"][j]], "f32")], "f32")

    def _gelu(self, s: Scheduler, x: Vec) -> Vec:
        # 0.5 x (1 + tanh(z)) = x sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3), and
        # 2z = x (a + b x^2): six dependent operations instead of eight, fp32 throughout (the
        # same function; the sigmoid form also avoids 1 + tanh(z) cancelling for z << 0)
        a = 2 * math.sqrt(2 / math.pi)
        t = s.op("addi", [s.op("muli", [s.op("mul", [x, x], "f32")], "f32", imm=a * 0.044715)],
                 "f32", imm=a)
        return s.op("mul", [x, s.op("sigmoid", [s.op("mul", [t, x], "f32")], "f32")], "f32")

    def _store(self, s: Scheduler, v: Vec, dst: Vec) -> Vec:
        h = s.op("cvt", [v], "f16", **{"from": "f32", "to": "f16"})
        return s.op("cvt", [h], "f32", dst=dst, **{"from": "f16", "to": "f32"})

    def _attention(self, s: Scheduler, q: list[Vec], k: list[Vec], v: list[Vec],
                   kc: list[list[Vec]], vc: list[list[Vec]], pos: int) -> list[Vec]:
        hd = self.layout.head_dim
        for j in range(len(q)):  # append this position's K and V (rounded to fp16)
            kc[pos][j] = s.op("cvt", [k[j]], "f16", dst=kc[pos][j],
                              **{"from": "f32", "to": "f16"})
            vc[pos][j] = self._store(s, v[j], vc[pos][j])
        scale = float(np.float32(1.0 / math.sqrt(hd)))
        if pos + 1 >= self.attention_mxm_from:
            hpv = self.layout.heads_per_vec
            return [attention_mxm(s, qv, [kc[t][j] for t in range(pos + 1)],
                                  [vc[t][j] for t in range(pos + 1)],
                                  min(hpv, self.cfg.n_heads - j * hpv), hd, scale, len(q))
                    for j, qv in enumerate(q)]
        out = []
        # a power of two (head_dim 64: 1/8) scales q once instead of every score: the products
        # and their fp32 sums are then the unscaled ones times 2^k exactly, so the same bits
        # with one operation per position fewer
        pow2 = math.frexp(scale)[0] == 0.5
        # each position's operations chained (Scheduler.op feed=: a result taken off its
        # stream, never written to MEM, saving the slices' issue slots) from CHAIN_FROM
        # positions on; with fewer, the exact alignment a chain needs costs more than it saves
        chain = pos + 1 >= CHAIN_FROM
        for j, qv in enumerate(q):
            q16 = round16(s, qv)
            if pow2:
                q16 = s.op("muli", [q16], "f32", imm=scale)
            scores = []
            for t in range(pos + 1):  # K widened into the product into the sum
                sc = s.op("rsum", [], "f32", dt="f32", seg=hd, chain=chain, feed=(
                    "mul", [q16], {}, ("cvt", [kc[t][j]], F16_F32)))
                scores.append(sc if pow2 else s.op("muli", [sc], "f32", imm=scale))
            m = tree(s, "max", scores)
            e = [s.op("exp", [], "f32", dt="f32", chain=chain, feed=("sub", [sc, m], {}))
                 for sc in scores]
            # normalised after the weighted sum (the recipe's folded form): 1/sum(e) is
            # computed beside the products instead of before them
            r = s.op("recip", [tree(s, "add", e)], "f32")
            terms = [s.op("mul", [vc[t][j]], "f32", chain=chain, feed=(  # fp16(e) weighs V
                "cvt", [], F16_F32, ("cvt", [ei], {"from": "f32", "to": "f16"})))
                for t, ei in enumerate(e)]
            out.append(s.op("mul", [tree(s, "add", terms), r], "f32"))
        return out

    def _argmax(self, s: Scheduler, logits: list[Vec], consts: dict) -> Vec:
        """First index of the maximum. Each lane keeps a running (max, index) over the logits
        vectors as the LM head produces them (a later vector wins a lane only if strictly
        greater, so ties keep the first), which overlaps with the head's weight streaming; then
        lanes equal to the global max offer their index - BIG < 0, the others 0, and the minimum
        over lanes is (first index - BIG)."""
        idx = consts["idx"]

        def pick(a: tuple[Vec, Vec], b: tuple[Vec, Vec]) -> tuple[Vec, Vec]:
            """Per lane, b's (max, index) where b's value is strictly greater, else a's. b's
            indices are larger than a's (a later vector), so the index is max(a's, b's or 0):
            one operation on the running index, not two."""
            gt = s.op("cmplt", [a[0], b[0]], "i32", dt="f32")  # -1 where b wins the lane
            return (s.op("max", [a[0], b[0]], "f32"),
                    s.op("max", [a[1], s.op("and", [gt, b[1]], "i32", dt="i32")], "i32",
                         dt="i32"))

        def tree_pick(pairs: list) -> tuple[Vec, Vec]:  # earlier vectors on the left
            while len(pairs) > 1:
                pairs = [pick(pairs[i], pairs[i + 1]) if i + 1 < len(pairs) else pairs[i]
                         for i in range(0, len(pairs), 2)]
            return pairs[0]

        pairs = list(zip(logits, idx, strict=True))
        if getattr(s, "latency_only", False):
            # the critical path takes the shortest form of the same result: one tree
            m, ix = tree_pick(pairs)
            if getattr(s, "buffered", False):  # the maximum waits for the head's last block
                t = s.gemv_done
                fwd = None if m.fwd is None else (m.fwd[0], max(m.fwd[1], t), m.fwd[2])
                m = dataclasses.replace(m, ready=max(m.ready, t), fwd=fwd)
        else:
            # the head's blocks finish a turn at a time, several at once: a small tree per
            # run of ARGMAX_RUN vectors, and a running pick over the runs, so the running
            # chain is short when the last vectors come out
            m, ix = tree_pick(pairs[:ARGMAX_RUN])
            for i in range(ARGMAX_RUN, len(pairs), ARGMAX_RUN):
                m, ix = pick((m, ix), tree_pick(pairs[i:i + ARGMAX_RUN]))
        top = reduce_all(s, "max", m)
        ixb = s.op("addi", [ix], "i32", dt="i32", imm=-BIG)  # beside the reduction
        cand = s.op("and", [s.op("cmpeq", [m, top], "i32", dt="f32"), ixb], "i32", dt="i32")
        low = reduce_all(s, "min", cand)
        return s.op("addi", [low], "i32", dt="i32", imm=BIG)
