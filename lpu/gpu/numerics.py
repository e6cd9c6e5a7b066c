"""The GPU's arithmetic for a decode step: the reference recipe in a GPU-like reduction order.

Same math as the shared recipe (SPEC-models: fp16 or bf16 inputs to every product, fp32
accumulation, fp32 elementwise), but summed the way GPU kernels sum: each CTA reduces a K tile
of 128 products with a warp-shuffle tree, the tiles are combined by a tree (a deterministic
second pass), or, with split-K atomics, added into one fp32 accumulator in an order that changes
run to run (seeded here), which is why a GPU's low logit bits can differ between runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from lpu.kernels.config import ModelConfig

TILE = 128          # K elements one CTA reduces (GEMV); attention splits by 256 positions
ATTN_CHUNK = 256


class WeightsLike(Protocol):
    config: ModelConfig
    tensors: dict[str, np.ndarray]


def round_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (round to nearest, ties to even), returned as float32."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    lsb = (b >> 16) & 1
    r = ((b + np.uint32(0x7FFF) + lsb) & np.uint32(0xFFFF0000)).view(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), r).astype(np.float32)


def round_fp16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to float16 (numpy astype: round to nearest even), as float32."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def _tree_sum(x: np.ndarray) -> np.ndarray:
    """Sum the last axis as a pairwise halving tree in fp32 (zero-padded to a power of two)."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[-1]
    p = 1 << max(n - 1, 0).bit_length()
    if p != n:
        pad = np.zeros(x.shape[:-1] + (p - n,), dtype=np.float32)
        x = np.concatenate([x, pad], axis=-1)
    while x.shape[-1] > 1:
        h = x.shape[-1] // 2
        x = x[..., :h] + x[..., h:]
    return x[..., 0]


@dataclass
class GpuNumerics:
    """How the GPU rounds and sums: input dtype, and split-K atomics (seeded order) or not."""

    dtype: str = "fp16"           # "fp16" | "bf16": what products' inputs are rounded to
    split_k_atomics: bool = False
    seed: int = 0
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.dtype not in ("fp16", "bf16"):
            raise ValueError(f"GPU numerics take fp16 or bf16 inputs, not {self.dtype!r}")
        self._rng = np.random.default_rng(self.seed)

    def round(self, x: np.ndarray) -> np.ndarray:
        return round_fp16(x) if self.dtype == "fp16" else round_bf16(x)

    def dot_tiles(self, prods: np.ndarray) -> np.ndarray:
        """Reduce the last axis of fp32 products: per-tile trees, then tiles combined."""
        k = prods.shape[-1]
        nt = -(-k // TILE)
        if nt * TILE != k:
            pad = np.zeros(prods.shape[:-1] + (nt * TILE - k,), dtype=np.float32)
            prods = np.concatenate([prods, pad], axis=-1)
        partial = _tree_sum(prods.reshape(prods.shape[:-1] + (nt, TILE)))  # (..., nt)
        if not self.split_k_atomics or nt == 1:
            return _tree_sum(partial)
        # atomicAdd of each tile's partial into an fp32 accumulator, in arrival order
        acc = np.zeros(partial.shape[:-1], dtype=np.float32)
        for t in self._rng.permutation(nt):
            acc = acc + partial[..., t]
        return acc

    def matvec(self, w: np.ndarray, x: np.ndarray, scale: np.ndarray | None = None
               ) -> np.ndarray:
        """y[o] = sum_i w[o, i] * x[i]: w already rounded (or int8 values), x rounded here."""
        xr = self.round(x)
        prods = w.astype(np.float32) * xr[None, :]   # exact: products of 11-bit mantissas
        y = self.dot_tiles(prods)
        if scale is not None:
            y = (scale * y).astype(np.float32)
        return y


@dataclass
class KVCache:
    """Per layer K (after RoPE) and V, rounded to the input dtype: lists of (kv_heads, hd)."""

    k: list[list[np.ndarray]]
    v: list[list[np.ndarray]]

    @staticmethod
    def empty(n_layers: int) -> KVCache:
        return KVCache([[] for _ in range(n_layers)], [[] for _ in range(n_layers)])


class GpuDecoder:
    """Token-by-token decoding of one sequence with the GPU's rounding and reduction order."""

    def __init__(self, weights: WeightsLike, numerics: GpuNumerics | None = None,
                 weights_dtype: str = "fp16") -> None:
        self.cfg = weights.config
        self.num = numerics or GpuNumerics()
        if weights_dtype not in ("fp16", "bf16", "int8"):
            raise ValueError(f"GPU numerics support fp16, bf16 and int8 weights, not "
                             f"{weights_dtype!r} (fp8 is timing-only)")
        self.t = weights.tensors
        self.int8 = weights_dtype == "int8"
        self._mats: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        self.cache = KVCache.empty(self.cfg.n_layers)
        hd = self.cfg.head_dim
        self._inv_freq = np.zeros(hd // 2)
        if self.cfg.family == "llama":  # RoPE frequencies theta^(-2i/hd), in float64
            self._inv_freq = self.cfg.rope_theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)

    # -- weights, prepared once in the form the kernels read
    def _mat(self, name: str) -> tuple[np.ndarray, np.ndarray | None]:
        if name not in self._mats:
            w = np.asarray(self.t[name], dtype=np.float32)
            if self.int8:
                amax = np.abs(w).max(axis=1)
                scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
                q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.float32)
                self._mats[name] = (q, scale)
            else:
                self._mats[name] = (self.num.round(w), None)
        return self._mats[name]

    def _linear(self, name: str, x: np.ndarray, bias: str | None = None) -> np.ndarray:
        w, scale = self._mat(name)
        y = self.num.matvec(w, x, scale)
        if bias is not None:
            y = (y + np.asarray(self.t[bias], dtype=np.float32)).astype(np.float32)
        return y

    def _vec(self, name: str) -> np.ndarray:
        return np.asarray(self.t[name], dtype=np.float32)

    def _norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        d = np.float32(x.shape[-1])
        eps = np.float32(self.cfg.norm_eps)
        if self.cfg.family == "llama":
            ms = _tree_sum(x * x) / d
            return (x * (np.float32(1) / np.sqrt(ms + eps)) * self._vec(prefix + ".weight")
                    ).astype(np.float32)
        mean = _tree_sum(x) / d
        c = x - mean
        var = _tree_sum(c * c) / d
        return (c * (np.float32(1) / np.sqrt(var + eps)) * self._vec(prefix + ".weight")
                + self._vec(prefix + ".bias")).astype(np.float32)

    def _rope(self, x: np.ndarray, pos: int) -> np.ndarray:
        """Rotate-half RoPE on (heads, hd); tables in float64 rounded to fp32."""
        ang = pos * self._inv_freq
        cos = np.cos(np.concatenate([ang, ang])).astype(np.float32)
        sin = np.sin(np.concatenate([ang, ang])).astype(np.float32)
        h = x.shape[-1] // 2
        rot = np.concatenate([-x[..., h:], x[..., :h]], axis=-1)
        return (x * cos + rot * sin).astype(np.float32)

    def _attention(self, layer: int, q: np.ndarray) -> np.ndarray:
        """Flash-decoding: per 256-position chunk an online softmax, chunks combined after."""
        cfg = self.cfg
        hd, group = cfg.head_dim, cfg.n_heads // cfg.n_kv_heads
        keys = np.stack(self.cache.k[layer])          # (pos, kv_heads, hd)
        vals = np.stack(self.cache.v[layer])
        qh = self.num.round(q.reshape(cfg.n_heads, hd))
        kv_of = np.arange(cfg.n_heads) // group
        scale = np.float32(1.0 / np.sqrt(hd))
        # scores (heads, pos): q.k reduced over head_dim in one tile tree
        s = _tree_sum(qh[:, None, :] * keys[:, kv_of, :].transpose(1, 0, 2)) * scale
        n = s.shape[1]
        ms, ls, os_ = [], [], []
        for c0 in range(0, n, ATTN_CHUNK):
            sc = s[:, c0:c0 + ATTN_CHUNK]
            m = sc.max(axis=1)
            p = np.exp(sc - m[:, None]).astype(np.float32)
            ls.append(_tree_sum(p))
            pv = self.num.round(p)[:, :, None] * vals[c0:c0 + ATTN_CHUNK, kv_of, :].transpose(
                1, 0, 2)                                   # (heads, chunk, hd)
            os_.append(_tree_sum(pv.transpose(0, 2, 1)))   # (heads, hd)
            ms.append(m)
        mx = np.max(np.stack(ms), axis=0)
        num = np.zeros((cfg.n_heads, hd), dtype=np.float32)
        den = np.zeros(cfg.n_heads, dtype=np.float32)
        for m, lsum, o in zip(ms, ls, os_):
            f = np.exp(m - mx).astype(np.float32)
            num = num + f[:, None] * o
            den = den + f * lsum
        return (num / den[:, None]).reshape(-1).astype(np.float32)

    def step(self, token: int, pos: int) -> np.ndarray:
        """Consume `token` at position `pos` (== cached positions so far); return fp32 logits."""
        cfg = self.cfg
        if pos != len(self.cache.k[0]):
            raise ValueError(f"position {pos} but the cache holds {len(self.cache.k[0])}")
        x = np.asarray(self.t["tok_emb"][token], dtype=np.float32)
        if cfg.family == "gpt2":
            x = (x + np.asarray(self.t["pos_emb"][pos], dtype=np.float32)).astype(np.float32)
        hd, qd, kvd = cfg.head_dim, cfg.q_dim, cfg.kv_dim
        for i in range(cfg.n_layers):
            p = f"layers.{i}."
            h = self._norm(x, p + "attn_norm")
            if cfg.family == "llama":
                q = self._linear(p + "q.weight", h)
                k = self._linear(p + "k.weight", h)
                v = self._linear(p + "v.weight", h)
                q = self._rope(q.reshape(cfg.n_heads, hd), pos).reshape(-1)
                k = self._rope(k.reshape(cfg.n_kv_heads, hd), pos).reshape(-1)
            else:
                qkv = self._linear(p + "qkv.weight", h, p + "qkv.bias")
                q, k, v = qkv[:qd], qkv[qd:qd + kvd], qkv[qd + kvd:]
            self.cache.k[i].append(self.num.round(k.reshape(cfg.n_kv_heads, hd)))
            self.cache.v[i].append(self.num.round(v.reshape(cfg.n_kv_heads, hd)))
            a = self._attention(i, q)
            bias = None if cfg.family == "llama" else p + "o.bias"
            x = (x + self._linear(p + "o.weight", a, bias)).astype(np.float32)
            h = self._norm(x, p + "mlp_norm")
            if cfg.family == "llama":
                g = self._linear(p + "gate.weight", h)
                u = self._linear(p + "up.weight", h)
                act = (g / (np.float32(1) + np.exp(-g)) * u).astype(np.float32)
                x = (x + self._linear(p + "down.weight", act)).astype(np.float32)
            else:
                f = self._linear(p + "fc.weight", h, p + "fc.bias")
                c = np.float32(np.sqrt(2.0 / np.pi))
                act = (np.float32(0.5) * f * (np.float32(1) + np.tanh(
                    c * (f + np.float32(0.044715) * f * f * f)))).astype(np.float32)
                x = (x + self._linear(p + "proj.weight", act, p + "proj.bias")).astype(
                    np.float32)
        h = self._norm(x, "final_norm")
        return self._linear("lm_head.weight", h)


def greedy_decode(weights: WeightsLike, prompt_ids: list[int], max_new_tokens: int, *,
                  dtype: str = "fp16", weights_dtype: str | None = None,
                  split_k_atomics: bool = False, seed: int = 0
                  ) -> tuple[list[int], np.ndarray]:
    """Greedy generation on the GPU's numerics: (generated ids, logits [positions, vocab]).

    Logit rows follow the `--logits-out` contract: one per consumed position (every prompt
    token, then every generated token except the last).
    """
    if not prompt_ids:
        raise ValueError("the prompt needs at least one token")
    dec = GpuDecoder(weights, GpuNumerics(dtype, split_k_atomics, seed),
                     weights_dtype or dtype)
    rows, out = [], []
    pos = 0
    for tok in prompt_ids:
        logits = dec.step(int(tok), pos)
        rows.append(logits)
        pos += 1
    for n in range(max_new_tokens):
        nxt = int(np.argmax(logits))   # first index of the maximum
        out.append(nxt)
        if n + 1 == max_new_tokens:
            break
        logits = dec.step(nxt, pos)
        rows.append(logits)
        pos += 1
    return out, np.stack(rows).astype(np.float32)


@dataclass
class RunsOutput:
    """Greedy decoding repeated `runs` times on the GPU's numerics (for `lpu compare`)."""

    tokens: list[list[int]]      # generated ids per run
    logits: list[np.ndarray]     # [positions, vocab] per run
    tokens_identical: bool       # every run generated the same ids
    bit_identical: bool          # every run's logits are identical to the bit


def decode_runs(weights: WeightsLike, prompt_ids: list[int], max_new_tokens: int, *,
                runs: int = 2, seed: int = 0, dtype: str = "fp16",
                weights_dtype: str | None = None, split_k_atomics: bool = True) -> RunsOutput:
    """Decode `runs` times; with split-K atomics each run gets its own arrival order (seed + run),
    as a real GPU does from run to run, so the low logit bits may differ while tokens agree."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    toks, logs = [], []
    for r in range(runs):
        ids, lg = greedy_decode(weights, prompt_ids, max_new_tokens, dtype=dtype,
                                weights_dtype=weights_dtype, split_k_atomics=split_k_atomics,
                                seed=seed + r)
        toks.append(ids)
        logs.append(lg)
    same_tokens = all(t == toks[0] for t in toks)
    same_bits = all(np.array_equal(x.view(np.uint32), logs[0].view(np.uint32)) for x in logs)
    return RunsOutput(toks, logs, same_tokens, same_bits)
