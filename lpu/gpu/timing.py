"""The event-driven timing model of a GPU running decode steps, kernel by kernel.

Each kernel starts when the previous one has drained and the next launch has arrived (eager:
host-limited launches; graph: a fixed GPU-side gap), then runs in waves of CTAs over the SMs;
each wave's memory time follows Little's law (bytes in flight / latency, capped by the HBM
channels' bandwidth), its compute time the tensor-core or CUDA-core peak; L2 hits come from a
reuse-distance model across kernels and tokens; HBM refresh stalls follow the absolute clock.
The hot loop `_simulate` is private, compiled, and takes arrays only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from lpu.gpu.lowering import (
    K_ALLREDUCE,
    K_ATTN,
    K_COMBINE,
    K_GEMV,
    P_BF16,
    P_FP8,
    P_INT8,
    StepProgram,
)
from lpu.gpu.presets import GpuPreset
from lpu.gpu.variation import Draws, StepLoad

# Grid shapes of the kernels (assumed, typical of decode engines): a GEMV CTA computes a few
# output rows; above GEMM_MIN_TOKENS tokens the product runs as 128x128-tile GEMM, split along K
# to fill the GPU, keeping the engines' bytes in flight per CTA; an
# elementwise CTA covers 4096 elements; flash-decoding splits a sequence into >= 64-position
# chunks (at most 128 splits, FlashAttention-2's cap).
GEMV_ROWS_PER_CTA = 4
GEMM_MIN_TOKENS = 16
GEMM_TILE = 128
GEMM_MIN_SPLIT_K = 256     # split-K slices of at least 256 K elements
MAX_SPLIT_K = 16
MAX_ATTN_SPLITS = 128       # FlashAttention-2's split-KV heuristic caps at 128 splits
ATTN_MIN_CHUNK = 64
ELEM_PER_CTA = 4096

# Index of each GPU parameter in the float array the compiled kernel takes.
(I_SMS, I_CPS, I_CIF, I_HBM_BW, I_HBM_LAT, I_TREFI, I_TRFC, I_CH, I_L2, I_L2_BW, I_L2_LAT,
 I_F32, I_BF16, I_FP8, I_INT8, I_GEFF, I_GAP, I_HOST, I_GRAPH, I_NVL, I_AR_LAT, I_STEP,
 I_REFRESH, I_GPUS, N_PARAMS) = range(25)


def gpu_params(gpu: GpuPreset, *, graph: bool, refresh: bool, gpus: int) -> np.ndarray:
    """The preset as the float array `_simulate` reads (times in ns, bandwidths in B/ns)."""
    p = np.zeros(N_PARAMS)
    f_ref = gpu.hbm_trfc_ns / gpu.hbm_trefi_ns
    p[I_SMS] = gpu.sms
    p[I_CPS] = gpu.ctas_per_sm
    p[I_CIF] = gpu.cta_bytes_in_flight
    # The measured streaming bandwidth includes refresh; the channels' own rate is higher by
    # the refresh duty cycle, which is then charged explicitly.
    p[I_HBM_BW] = gpu.hbm_stream_bw / (1.0 - f_ref) / 1e9
    p[I_HBM_LAT] = gpu.hbm_latency_ns
    p[I_TREFI] = gpu.hbm_trefi_ns
    p[I_TRFC] = gpu.hbm_trfc_ns
    p[I_CH] = gpu.hbm_channels
    p[I_L2] = gpu.l2_bytes
    p[I_L2_BW] = gpu.l2_bw / 1e9
    p[I_L2_LAT] = gpu.l2_latency_ns
    p[I_F32] = gpu.flops_fp32 / 1e9
    p[I_BF16] = gpu.flops_bf16 / 1e9
    p[I_FP8] = (gpu.flops_fp8 or gpu.flops_bf16) / 1e9
    p[I_INT8] = gpu.flops_int8 / 1e9
    p[I_GEFF] = gpu.gemm_efficiency
    # A tiny kernel back to back costs the measured launch figure; its body is about one memory
    # round trip, which the kernel model charges itself, so the gap is the rest.
    p[I_GAP] = max(gpu.launch_graph_us * 1e3 - gpu.hbm_latency_ns, 0.0)
    p[I_HOST] = gpu.launch_eager_us * 1e3
    p[I_GRAPH] = 1.0 if graph else 0.0
    p[I_NVL] = gpu.nvlink_bw / 1e9
    p[I_AR_LAT] = gpu.allreduce_latency_us * 1e3
    p[I_STEP] = gpu.step_overhead_us * 1e3
    p[I_REFRESH] = 1.0 if refresh else 0.0
    p[I_GPUS] = gpus
    return p


@njit(cache=True)
def _wave(a, bh, bl, fc, cif, hbm_bw, hbm_lat, l2_bw, l2_lat, peak, sms):
    """Time (ns) of one wave of `a` CTAs each moving bh HBM and bl L2 bytes and fc FLOPs."""
    inflight = a * cif
    t = 0.0
    if bh > 0.0:
        t += a * bh / min(hbm_bw, inflight / hbm_lat)   # Little's law, capped by the channels
    if bl > 0.0:
        t += a * bl / min(l2_bw, inflight / l2_lat)
    if fc > 0.0:
        tc = a * fc / (peak * min(1.0, a / sms))
        t = max(t, tc)
    return t


@njit(cache=True)
def _kernel(ctas, hbm_bytes, l2_bytes, flops, cif, p, peak, clk):
    """Duration (ns) of a kernel of `ctas` CTAs, wave by wave, and its HBM-busy part."""
    sms = p[I_SMS]
    slots = sms * p[I_CPS]
    n = max(ctas, 1.0)
    full = math.floor(n / slots)
    rem = n - full * slots
    bh = hbm_bytes / n
    bl = l2_bytes / n
    fc = flops / n
    l2_bw = p[I_L2_BW] * clk
    lat = p[I_HBM_LAT] if hbm_bytes > 0.0 else p[I_L2_LAT]
    t = lat  # the first bytes arrive one round trip after the first CTA starts
    if full > 0:
        t += full * _wave(slots, bh, bl, fc, cif, p[I_HBM_BW], p[I_HBM_LAT], l2_bw,
                          p[I_L2_LAT], peak, sms)
    if rem > 0:
        t += _wave(rem, bh, bl, fc, cif, p[I_HBM_BW], p[I_HBM_LAT], l2_bw, p[I_L2_LAT], peak,
                   sms)
    t_hbm = hbm_bytes / p[I_HBM_BW] if hbm_bytes > 0.0 else 0.0
    return t, t_hbm


@njit(cache=True)
def _gemv_grid(rows, slots):
    """CTAs of a GEMV: the rows-per-CTA config (2, 4 or 8) whose grid fills its last wave
    best, as an engine's kernel heuristic would pick (ties: GEMV_ROWS_PER_CTA)."""
    best = math.ceil(rows / GEMV_ROWS_PER_CTA)
    best_eff = (best / slots) / math.ceil(best / slots)
    for r in (2.0, 8.0):
        n = math.ceil(rows / r)
        eff = (n / slots) / math.ceil(n / slots)
        if eff > best_eff + 1e-9:
            best, best_eff = n, eff
    return best


@njit(cache=True)
def _split_k(base, slots, k_in, min_slice, max_split):
    """The split factor an engine's heuristic picks for `base` CTAs of work: the one whose
    grid fills its last wave of CTAs best (ties: fewer splits), slices of K (or of cached
    positions) of at least `min_slice`, at most `max_split` of them."""
    best, best_eff = 1.0, 0.0
    top = max(1.0, min(max_split, math.floor(k_in / min_slice)))
    s = 1.0
    while s <= top:
        n = base * s
        eff = (n / slots) / math.ceil(n / slots)
        if eff > best_eff + 1e-9:
            best, best_eff = s, eff
        s += 1.0
    return best


@njit(cache=True)
def _refresh_stall(t0, t_hbm, p, phase):
    """Refresh stalls while a kernel streams from HBM for t_hbm ns starting at t0.

    Channels refresh staggered, one every tREFI/channels ns across the device; each refresh
    takes one channel of `channels` away for tRFC. Off: the mean duty cycle.
    """
    if t_hbm <= 0.0:
        return 0.0
    if p[I_REFRESH] == 0.0:
        return t_hbm * p[I_TRFC] / p[I_TREFI]
    period = p[I_TREFI] / p[I_CH]
    count = math.floor((t0 + t_hbm + phase) / period) - math.floor((t0 + phase) / period)
    return count * p[I_TRFC] / p[I_CH]


@njit(cache=True)
def _simulate(kind, peak_cls, w_bytes, buf, act_tok, flops_tok, out_rows, kv_pos, afl, heads,
              layer, n_bufs, n_layers, p, tokens, seqs, kvp, pre, pre_sq, gapj, hostj,
              hiccup, clock, l2cap, phase, trace_step, trace_start, trace_dur, trace_hbm, trace_l2):
    """Per-step latency (ns) for every run and step: out[r, t]; kernel trace of run 0, step
    `trace_step` (start relative to the step's start, duration, HBM and L2 bytes)."""
    runs, steps = tokens.shape
    nk = kind.shape[0]
    out = np.zeros((runs, steps))
    cif = p[I_CIF]
    slots = p[I_SMS] * p[I_CPS]
    graph = p[I_GRAPH] != 0.0
    for r in range(runs):
        last = np.full(n_bufs + n_layers, -1.0)   # L2 reuse: byte counter at last access end
        counter = 0.0
        now = 0.0
        for s in range(steps):
            t0 = now
            clk = clock[r, s]
            cap = p[I_L2] * l2cap[r, s]
            m = tokens[r, s]
            nseq = seqs[r, s]
            prev_end = t0
            host_t = t0
            splits = 1.0
            for k in range(nk):
                kd = kind[k]
                if kd == K_COMBINE and splits <= 1.0:
                    if r == 0 and s == trace_step:
                        trace_start[k] = prev_end - t0
                        trace_dur[k] = -1.0  # not launched
                    continue
                # --- launch: when can this kernel start?
                gap = p[I_GAP] * gapj[r, s, k] / clk
                start = prev_end + gap
                if not graph:
                    host_t += p[I_HOST] * hostj[r, s, k] + hiccup[r, s, k]
                    start = max(start, host_t)
                # --- traffic, FLOPs and grid of the kernel
                act = act_tok[k] * m
                hit_act = 1.0 if act <= cap else cap / act  # activations just written by the
                w = w_bytes[k]                               # previous kernel sit in L2
                hit_w = 0.0
                b = buf[k]
                size = w
                if kd == K_ATTN:
                    b = n_bufs + layer[k]
                    size = kv_pos[k] * kvp[r, s]
                    w = size
                if b >= 0 and size > 0.0:
                    if last[b] >= 0.0:
                        dist = counter - last[b]  # bytes touched by others since last use
                        hit_w = min(max((cap - dist) / size, 0.0), 1.0)
                    counter += size + act
                    last[b] = counter
                else:
                    counter += act
                hbm = w * (1.0 - hit_w) + act * (1.0 - hit_act)
                l2 = w * hit_w + act * hit_act
                hbm_moved, l2_moved = hbm, l2  # what the trace reports (timing may differ)
                flops = flops_tok[k] * m
                pk = p[I_F32]
                if peak_cls[k] == P_BF16:
                    pk = p[I_BF16] * p[I_GEFF]
                elif peak_cls[k] == P_FP8:
                    pk = p[I_FP8] * p[I_GEFF]
                elif peak_cls[k] == P_INT8:
                    pk = p[I_INT8] * p[I_GEFF]
                pk *= clk
                if kd == K_GEMV:
                    if m <= GEMM_MIN_TOKENS:
                        ctas = _gemv_grid(out_rows[k], slots)
                    else:
                        base = math.ceil(out_rows[k] / GEMM_TILE) * math.ceil(m / GEMM_TILE)
                        k_in = flops_tok[k] / (2.0 * out_rows[k])
                        ctas = base * _split_k(base, slots, k_in, GEMM_MIN_SPLIT_K, MAX_SPLIT_K)
                elif kd == K_ATTN:
                    flops = afl[k] * (kvp[r, s] + pre_sq[r, s])
                    work = nseq * heads[k]
                    avg_ctx = kvp[r, s] / max(nseq, 1.0)
                    # flash-decoding: each (sequence, KV head) is split into chunks of >= 64
                    # positions (at most 128 splits); a wave lasts as long as its longest
                    # chunk, so the grid is timed as if every chunk were full
                    chunk = max(ATTN_MIN_CHUNK, math.ceil(avg_ctx / MAX_ATTN_SPLITS))
                    splits = max(1.0, math.ceil(avg_ctx / chunk))
                    ctas = work * splits
                    if avg_ctx > 0.0:
                        full = nseq * splits * chunk / kvp[r, s]
                        hbm += w * (1.0 - hit_w) * (full - 1.0)
                        l2 += w * hit_w * (full - 1.0)
                    # every split reads its head's query and writes a partial output
                    hbm += act * (1.0 - hit_act) * (splits - 1.0)
                    l2 += act * hit_act * (splits - 1.0)
                    if pre[r, s] > 0.0:
                        ctas = max(ctas, slots)
                else:
                    ctas = max(1.0, math.ceil(out_rows[k] * m / ELEM_PER_CTA))
                # --- duration
                if kd == K_ALLREDUCE:
                    g = p[I_GPUS]
                    dur = p[I_AR_LAT] + 2.0 * (g - 1.0) / g * act / p[I_NVL]
                    t_hbm = 0.0
                else:
                    dur, t_hbm = _kernel(ctas, hbm, l2, flops, cif, p, pk, clk)
                dur += _refresh_stall(start, t_hbm, p, phase[r])
                end = start + dur
                if r == 0 and s == trace_step:
                    trace_start[k] = start - t0
                    trace_dur[k] = dur
                    trace_hbm[k] = hbm_moved
                    trace_l2[k] = l2_moved
                prev_end = end
            now = prev_end + p[I_STEP]
            out[r, s] = now - t0
    return out


def simulate_steps(prog: StepProgram, params: np.ndarray, load: StepLoad, draws: Draws,
                   trace_step: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the compiled model: per-step latency in ns [runs, steps] and one step's trace."""
    nk = len(prog)
    trace = {k: np.zeros(nk) for k in ("start", "dur", "hbm", "l2")}
    out = _simulate(prog.kind, prog.peak, prog.w_bytes, prog.buf, prog.act_tok, prog.flops_tok,
                    prog.out_rows.astype(np.float64), prog.kv_pos, prog.attn_flops_pos,
                    prog.heads.astype(np.float64), prog.layer, prog.n_bufs, prog.n_layers,
                    params, load.tokens, load.seqs, load.kv_pos, load.prefill, load.prefill_sq,
                    draws.gap, draws.host, draws.hiccup, draws.clock, draws.l2cap, draws.phase,
                    trace_step,
                    trace["start"], trace["dur"], trace["hbm"], trace["l2"])
    return out, trace



def gemv_time_ns(gpu: GpuPreset, rows: int, cols: int, bytes_per_weight: float = 2.0, *,
                 l2_hit: float = 0.0, bytes_in_flight_per_sm: float | None = None) -> float:
    """Duration (ns) of one batch-1 GEMV kernel alone (no launch gap): a micro-benchmark.

    `l2_hit` is the fraction of the weights already resident in L2. `bytes_in_flight_per_sm`
    replaces the engines' GEMV design (preset: ctas_per_sm x cta_bytes_in_flight), e.g. to model
    a deeply pipelined hand-tuned kernel. Refresh is charged at its mean duty cycle.
    """
    if rows < 1 or cols < 1:
        raise ValueError("a GEMV needs at least one row and one column")
    p = gpu_params(gpu, graph=True, refresh=False, gpus=1)
    if bytes_in_flight_per_sm is not None:
        p[I_CIF] = bytes_in_flight_per_sm / p[I_CPS]
    w = rows * cols * bytes_per_weight
    act = cols * 2.0 + rows * 4.0  # fp16 input vector in, fp32 output out (from/to L2)
    hbm = w * (1.0 - l2_hit)
    l2 = w * l2_hit + act
    ctas = float(_gemv_grid(float(rows), p[I_SMS] * p[I_CPS]))
    dur, t_hbm = _kernel(ctas, hbm, l2, 2.0 * rows * cols, p[I_CIF], p,
                         p[I_BF16] * p[I_GEFF], 1.0)
    return float(dur + _refresh_stall(0.0, t_hbm, p, 0.0))
