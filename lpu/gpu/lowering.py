"""Lowering a decode step to the kernel sequence a real GPU engine launches.

One decode step of a Llama- or GPT-2-family model becomes the kernels that vLLM/TensorRT-LLM-
style engines launch (fused QKV, RoPE + KV write, flash-decoding attention, output projection,
residual + norm, fused gate/up, activation, down, final norm, LM head, argmax), as arrays of
per-kernel constants; the timing model scales them by the tokens and cached positions of a step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpu.kernels.config import DTYPE_BYTES, ModelConfig

# Kernel kinds (the timing kernel switches on these codes).
K_ELEM = 0       # norms, RoPE, activations, residual adds: activation traffic only
K_GEMV = 1       # weight matrix product (GEMV at batch 1, skinny GEMM above)
K_ATTN = 2       # flash-decoding attention over the KV cache
K_COMBINE = 3    # reduction of flash-decoding splits
K_ALLREDUCE = 4  # tensor-parallel all-reduce / all-gather over NVLink
K_SAMPLE = 5     # argmax over the logits
K_EMBED = 6      # embedding row gather

KIND_NAMES = {K_ELEM: "elementwise", K_GEMV: "gemv", K_ATTN: "attention",
              K_COMBINE: "combine", K_ALLREDUCE: "allreduce", K_SAMPLE: "sample",
              K_EMBED: "embed"}

# Peak-throughput class a kernel's arithmetic runs on.
P_FP32, P_BF16, P_FP8, P_INT8 = 0, 1, 2, 3

ACT_BYTES = 2    # activations enter matrix products as fp16/bf16
RES_BYTES = 4    # the residual stream and norms are fp32 (SPEC-models numeric recipe)
KV_BYTES = 2     # the KV cache is stored as fp16


@dataclass(frozen=True)
class StepProgram:
    """The kernels of one decode step on one GPU of a tensor-parallel group, as arrays.

    Per kernel k (all float64/int64 arrays of length K):
      kind, peak          codes above
      w_bytes             weight bytes read once per step (independent of batch)
      buf                 L2-residency buffer id of the weights (-1: none)
      act_tok             activation bytes read+written per token
      flops_tok           FLOPs per token
      out_rows            output features (sets the GEMV grid)
      kv_pos              KV bytes per cached position per sequence (attention)
      attn_flops_pos      FLOPs per cached position per token (attention)
      heads               KV heads on this GPU (sets the attention grid)
      layer               layer index (-1 outside layers); the KV buffer id is n_bufs + layer
    """

    names: list[str]
    kind: np.ndarray
    peak: np.ndarray
    w_bytes: np.ndarray
    buf: np.ndarray
    act_tok: np.ndarray
    flops_tok: np.ndarray
    out_rows: np.ndarray
    kv_pos: np.ndarray
    attn_flops_pos: np.ndarray
    heads: np.ndarray
    layer: np.ndarray
    n_bufs: int
    n_layers: int
    weight_bytes: float        # all weight bytes one step reads on this GPU
    kv_bytes_per_pos: float    # KV bytes per cached position per sequence on this GPU
    matmul_params: float       # weights multiplied per token on this GPU (FLOPs/2)

    def __len__(self) -> int:
        return len(self.names)


def weight_peak(weights_dtype: str, gpu_has_fp8: bool) -> int:
    """Which tensor-core peak the matrix products use for a weight dtype.

    int8/fp8 are weight-only quantisation with fp16 activations in the decode kernels (as
    gpt-fast/torchao int8wo and TensorRT-LLM weight-only GEMV); fp8 on an FP8-capable GPU runs
    W8A8 on FP8 tensor cores (TensorRT-LLM/vLLM FP8), which matters once a step is compute-bound.
    """
    if weights_dtype == "fp8" and gpu_has_fp8:
        return P_FP8
    return P_BF16


def lower_decode_step(cfg: ModelConfig, *, weights_dtype: str = "fp16", gpus: int = 1,
                      gpu_has_fp8: bool = True) -> StepProgram:
    """The kernel sequence of one decode step on each of `gpus` tensor-parallel GPUs."""
    if weights_dtype not in DTYPE_BYTES or weights_dtype == "fp32":
        raise ValueError(f"unsupported weights dtype {weights_dtype!r}")
    if gpus < 1:
        raise ValueError("gpus must be >= 1")
    for what, n in (("n_heads", cfg.n_heads), ("n_kv_heads", cfg.n_kv_heads),
                    ("d_ff", cfg.d_ff)):
        if n % gpus:
            raise ValueError(f"model {cfg.name!r}: {what} {n} does not split over {gpus} GPUs")
    wb = DTYPE_BYTES[weights_dtype]
    peak_w = weight_peak(weights_dtype, gpu_has_fp8)
    d, hd = cfg.d_model, cfg.head_dim
    hq, hkv, ff = cfg.n_heads // gpus, cfg.n_kv_heads // gpus, cfg.d_ff // gpus
    qd, kvd = hq * hd, hkv * hd
    llama = cfg.family == "llama"
    rows: list[tuple] = []
    bufs = [0]

    def k(name, kind, peak=P_FP32, w=0.0, act=0.0, flops=0.0, out=0, kvp=0.0, afl=0.0,
          heads=0, layer=-1, has_buf=False):
        buf = -1
        if has_buf:
            buf = bufs[0]
            bufs[0] += 1
        rows.append((name, kind, peak, w, buf, act, flops, out, kvp, afl, heads, layer))

    def gemv(name, out, inp, layer, bias=False):
        # weights once per step; per token: read the fp16 input vector, write the fp32 output
        w = out * inp * wb + (out * 2 if bias else 0)
        k(name, K_GEMV, peak_w, w=w, act=inp * ACT_BYTES + out * RES_BYTES,
          flops=2.0 * out * inp, out=out, layer=layer, has_buf=True)

    def elem(name, width, layer, reads=2, flops_per=5.0):
        # `reads` fp32 vectors of `width` read, one written
        k(name, K_ELEM, act=(reads + 1) * width * RES_BYTES, flops=flops_per * width, out=width,
          layer=layer)

    def allreduce(name, width, layer):
        if gpus > 1:
            k(name, K_ALLREDUCE, act=width * ACT_BYTES, out=width, layer=layer)

    k("embed", K_EMBED, act=d * (ACT_BYTES + RES_BYTES), out=d)
    for i in range(cfg.n_layers):
        p = f"l{i}."
        if i == 0:
            elem(p + "attn_norm", d, i, reads=1)
        if llama:
            gemv(p + "qkv", qd + 2 * kvd, d, i)
            # RoPE on q and k, and the K/V append to the cache (fp16)
            k(p + "rope_kv_write", K_ELEM, act=(qd + 2 * kvd) * (RES_BYTES + ACT_BYTES),
              flops=6.0 * (qd + kvd), out=qd + 2 * kvd, layer=i)
        else:
            gemv(p + "qkv", qd + 2 * kvd, d, i, bias=True)
            k(p + "kv_write", K_ELEM, act=2 * kvd * (RES_BYTES + ACT_BYTES), flops=0.0,
              out=2 * kvd, layer=i)
        # scores q.k and p.V: 2 FLOPs each per head_dim element, per query head, per position
        k(p + "attention", K_ATTN, peak=P_BF16, act=qd * (ACT_BYTES + RES_BYTES),
          kvp=2.0 * kvd * KV_BYTES, afl=4.0 * qd, heads=hkv, out=qd, layer=i)
        k(p + "attn_combine", K_COMBINE, act=3 * qd * RES_BYTES, flops=4.0 * qd, out=qd,
          layer=i)
        gemv(p + "o", d, qd, i, bias=not llama)
        allreduce(p + "allreduce_attn", d, i)
        elem(p + "residual_mlp_norm", d, i, reads=2)
        if llama:
            gemv(p + "gate_up", 2 * ff, d, i)
            elem(p + "silu_mul", ff, i, reads=2, flops_per=8.0)
            gemv(p + "down", d, ff, i)
        else:
            gemv(p + "fc", ff, d, i, bias=True)
            elem(p + "gelu", ff, i, reads=1, flops_per=12.0)
            gemv(p + "proj", d, ff, i, bias=True)
        allreduce(p + "allreduce_mlp", d, i)
        # residual add fused with the next layer's input norm (or the final norm)
        elem(p + "residual_norm" if i + 1 < cfg.n_layers else "residual_final_norm", d, i,
             reads=2)
    vocab = cfg.vocab_size // gpus if cfg.vocab_size % gpus == 0 else cfg.vocab_size
    gemv("lm_head", vocab, d, -1)
    if gpus > 1 and vocab != cfg.vocab_size:
        k("logits_allgather", K_ALLREDUCE, act=cfg.vocab_size * RES_BYTES,
          out=cfg.vocab_size)
    k("argmax", K_SAMPLE, act=cfg.vocab_size * RES_BYTES, flops=cfg.vocab_size,
      out=cfg.vocab_size)

    cols = list(zip(*rows))

    def f64(i: int) -> np.ndarray:
        return np.asarray(cols[i], dtype=np.float64)

    def i64(i: int) -> np.ndarray:
        return np.asarray(cols[i], dtype=np.int64)

    w_bytes = f64(3)
    kind = i64(1)
    return StepProgram(
        names=list(cols[0]), kind=kind, peak=i64(2), w_bytes=w_bytes, buf=i64(4),
        act_tok=f64(5), flops_tok=f64(6), out_rows=i64(7), kv_pos=f64(8),
        attn_flops_pos=f64(9), heads=i64(10), layer=i64(11), n_bufs=bufs[0],
        n_layers=cfg.n_layers, weight_bytes=float(w_bytes.sum()),
        kv_bytes_per_pos=float(f64(8).sum()),
        matmul_params=float(f64(6)[kind == K_GEMV].sum() / 2.0))
