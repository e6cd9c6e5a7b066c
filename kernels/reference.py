"""The numpy reference decoder: the numeric recipe of SPEC-models.md, written to be read.

fp16 (or int8) weights, matrix products on fp16-rounded inputs with fp32 sums, everything else
fp32; the LPU compiler and the GPU model are checked against this, and this against transformers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lpu.errors import LpuError
from lpu.kernels.config import ModelConfig

F32 = np.float32


# ---- building blocks (all take and return float32 arrays) ---------------------------------------
def to_fp16(x: np.ndarray) -> np.ndarray:
    """x rounded to the nearest fp16 value (ties to even), kept as float32."""
    return np.asarray(x, F32).astype(np.float16).astype(F32)


def quantize_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-row int8: scale = max|w|/127 (fp32; zero row -> 1),
    q = clip(rint(w / scale), -127, 127). w: (out, in) -> q int8 (out, in), scale f32 (out,)."""
    w32 = np.asarray(w, F32)
    amax = np.abs(w32).max(axis=1)
    scale = np.where(amax > 0, amax / F32(127.0), F32(1.0)).astype(F32)
    q = np.clip(np.rint(w32 / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


@dataclass
class Linear:
    """y = W x (+ b) with W (out, in) fp16, or int8 with per-row fp32 scales."""

    w: np.ndarray  # (out, in) float32 holding the fp16 (or int8) values exactly
    scale: np.ndarray | None = None  # (out,) f32 for int8
    bias: np.ndarray | None = None  # (out,) f32

    # with a norm folded in (Reference(folded=True)): c1 = W gamma, c2 = W beta + bias
    c1: np.ndarray | None = None
    c2: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return matmul_fp16(self.w, x, self.scale, self.bias)

    def fold(self, gamma: np.ndarray, beta: np.ndarray | None) -> Linear:
        """This product with the norm before it folded in (see folded())."""
        if beta is None:  # RMSNorm: nothing to take back but the bias, added last
            return Linear(self.w, self.scale, None, None, self.bias)
        wd = self.w.astype(np.float64)
        if self.scale is not None:
            wd = wd * self.scale.astype(np.float64)[:, None]
        c2 = wd @ beta.astype(np.float64)
        if self.bias is not None:
            c2 = c2 + self.bias.astype(np.float64)
        return Linear(self.w, self.scale, None, (wd @ gamma.astype(np.float64)).astype(F32),
                      c2.astype(F32))

    def folded(self, u: np.ndarray, r: F32, mean: F32 | None) -> np.ndarray:
        """W norm(x) from u = fp16(gamma * x) and the norm's statistics: for LayerNorm
        ((W u) * scale - mean * c1) * r + c2, for RMSNorm (W u) * scale * r (+ bias); the same
        as W (((x - mean) * r) * gamma + beta) + bias up to where the rounding to fp16 happens."""
        y = np.asarray(self.w, F32) @ u
        if self.scale is not None:
            y = y * self.scale
        if self.c1 is not None:
            y = y - F32(mean) * self.c1
        y = y * F32(r)
        if self.c2 is not None:
            y = y + self.c2
        return y.astype(F32)


def matmul_fp16(w: np.ndarray, x: np.ndarray, scale: np.ndarray | None = None,
                bias: np.ndarray | None = None) -> np.ndarray:
    """y[o] = (scale[o] *) sum_i w[o,i] * fp16(x[i]) (+ bias[o]); float32 sum (float32 w holds
    the fp16 or int8 values exactly, so each product is exact before the fp32 sum)."""
    y = np.asarray(w, F32) @ to_fp16(x)
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y.astype(F32)


def rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """x * 1/sqrt(mean(x^2) + eps) * w, fp32."""
    r, _ = norm_stats(x, eps, centred=False)
    return (x * r * w).astype(F32)


def layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """(x - mean) * 1/sqrt(var + eps) * w + b, var = mean((x - mean)^2), fp32."""
    r, mean = norm_stats(x, eps, centred=True)
    return ((x - mean) * r * w + b).astype(F32)


def norm_stats(x: np.ndarray, eps: float, centred: bool) -> tuple[F32, F32 | None]:
    """(r, mean) of LayerNorm (centred) or (r, None) of RMSNorm: r = 1/sqrt(var + eps) with
    var = mean((x - mean)^2), or of mean(x^2) + eps, fp32."""
    mean = np.mean(x, dtype=F32) if centred else None
    xc = x - mean if centred else x
    ms = np.mean(xc * xc, dtype=F32)
    return F32(F32(1.0) / np.sqrt(ms + F32(eps))), mean


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), fp32 (GPT-2's gelu_new)."""
    c = F32(math.sqrt(2 / math.pi))
    return (F32(0.5) * x * (F32(1) + np.tanh(c * (x + F32(0.044715) * x * x * x)))).astype(F32)


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x), fp32."""
    return (x / (F32(1) + np.exp(-x))).astype(F32)


def softmax(s: np.ndarray) -> np.ndarray:
    """Max-subtracted softmax over the last axis, fp32."""
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True, dtype=F32)).astype(F32)


def rope_tables(pos: int, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin of shape (head_dim,) for one position: angles pos / theta^(2i/hd) in float64,
    each half repeated (HF Llama layout), rounded to fp32."""
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    ang = np.concatenate([pos * inv, pos * inv])
    return np.cos(ang).astype(F32), np.sin(ang).astype(F32)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """x: (heads, hd). x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]."""
    h = x.shape[-1] // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], axis=-1)
    return (x * cos + rot * sin).astype(F32)


# ---- the decoder ------------------------------------------------------------------------------
@dataclass
class KVCache:
    """Per layer, K (after RoPE) and V rounded to fp16 (kept as f32): (positions, kv_heads, hd)."""

    k: list[list[np.ndarray]] = field(default_factory=list)
    v: list[list[np.ndarray]] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.k[0]) if self.k else 0


class Reference:
    """Greedy decoding by the numeric recipe, one token per step, in plain numpy."""

    def __init__(self, weights, weights_dtype: str = "fp16", folded: bool = False) -> None:
        """folded: the LPU compiler's variant of the recipe, in which normalisations move
        past the product that follows them, so that the product need not wait for their
        statistics. A product that takes a norm's output takes fp16(gamma * x) instead, and the
        norm is finished on its output (Linear.folded); attention weighs V by fp16(exp(s - max))
        and divides the sum by sum(exp(s - max)) after. The same math with fp16 roundings
        moved (the same number of them in series). Also, a residual's bias is added to the
        residual first, (W a) + (x + b), so that one add waits for the product."""
        if weights_dtype not in ("fp16", "int8"):
            raise LpuError(f"the reference takes fp16 or int8 weights, not {weights_dtype}")
        self.cfg: ModelConfig = weights.config
        self.weights_dtype = weights_dtype
        self.folded = folded
        t = weights.tensors
        cfg = self.cfg

        def lin(name: str, bias: str | None = None) -> Linear:
            w = t[name]
            b = t[bias].astype(F32) if bias else None
            if weights_dtype == "int8":
                q, s = quantize_int8(w)
                return Linear(q.astype(F32), s, b)
            return Linear(w.astype(np.float16).astype(F32), None, b)

        self.tok_emb = t["tok_emb"]
        self.pos_emb = t.get("pos_emb")
        self.layers: list[dict] = []
        for i in range(cfg.n_layers):
            p = f"layers.{i}."
            L: dict = {"attn_norm": t[p + "attn_norm.weight"].astype(F32),
                       "mlp_norm": t[p + "mlp_norm.weight"].astype(F32)}
            if cfg.family == "llama":
                for nm in ("q", "k", "v", "o", "gate", "up", "down"):
                    L[nm] = lin(p + nm + ".weight")
            else:
                L["attn_norm_b"] = t[p + "attn_norm.bias"].astype(F32)
                L["mlp_norm_b"] = t[p + "mlp_norm.bias"].astype(F32)
                d = cfg.d_model
                qkv = lin(p + "qkv.weight", p + "qkv.bias")
                for j, nm in enumerate("qkv"):  # the fused matrix split by output rows
                    sl = slice(j * d, (j + 1) * d)
                    L[nm] = Linear(qkv.w[sl], None if qkv.scale is None else qkv.scale[sl],
                                   qkv.bias[sl])
                for nm in ("o", "fc", "proj"):
                    L[nm] = lin(p + nm + ".weight", p + nm + ".bias")
            if folded:
                for nm in ("q", "k", "v"):
                    L[nm] = L[nm].fold(L["attn_norm"], L.get("attn_norm_b"))
                for nm in ("gate", "up", "fc"):
                    if nm in L:
                        L[nm] = L[nm].fold(L["mlp_norm"], L.get("mlp_norm_b"))
            self.layers.append(L)
        self.final_norm = t["final_norm.weight"].astype(F32)
        self.final_norm_b = t["final_norm.bias"].astype(F32) if cfg.family == "gpt2" else None
        self.lm_head = lin("lm_head.weight")
        if folded:
            self.lm_head = self.lm_head.fold(self.final_norm, self.final_norm_b)

    def new_cache(self) -> KVCache:
        n = self.cfg.n_layers
        return KVCache([[] for _ in range(n)], [[] for _ in range(n)])

    def _normed(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                lins: list[Linear]) -> list[np.ndarray]:
        """Each product of norm(x) (RMSNorm when b is None, else LayerNorm)."""
        eps = self.cfg.norm_eps
        if self.folded:
            u = to_fp16(x * w)
            r, mean = norm_stats(x, eps, b is not None)
            return [lin.folded(u, r, mean) for lin in lins]
        h = rmsnorm(x, w, eps) if b is None else layernorm(x, w, b, eps)
        return [lin(h) for lin in lins]

    def _residual(self, x: np.ndarray, lin: Linear, a: np.ndarray) -> np.ndarray:
        """x + lin(a); folded: (W a) + (x + bias)."""
        if self.folded and lin.bias is not None:
            return (matmul_fp16(lin.w, a, lin.scale) + (x + lin.bias)).astype(F32)
        return (x + lin(a)).astype(F32)

    def embed(self, token_id: int, pos: int) -> np.ndarray:
        cfg = self.cfg
        if not 0 <= token_id < cfg.vocab_size:
            raise LpuError(f"token id {token_id} is outside the vocabulary "
                           f"(0..{cfg.vocab_size - 1})")
        if not 0 <= pos < cfg.max_positions:
            raise LpuError(f"position {pos} is beyond the model's {cfg.max_positions}")
        x = self.tok_emb[token_id].astype(F32)
        if self.pos_emb is not None:
            x = x + self.pos_emb[pos].astype(F32)
        return x

    def _attention(self, q: np.ndarray, ks: np.ndarray, vs: np.ndarray) -> np.ndarray:
        """q (heads, hd) f32; ks, vs (T, kv_heads, hd) fp16 values -> (heads * hd,) f32."""
        cfg = self.cfg
        group = cfg.n_heads // cfg.n_kv_heads
        scale = F32(1.0 / math.sqrt(cfg.head_dim))
        out = np.empty((cfg.n_heads, cfg.head_dim), F32)
        q16 = to_fp16(q)
        for h in range(cfg.n_heads):
            kv = h // group
            scores = (ks[:, kv, :] @ q16[h]).astype(F32) * scale  # (T,)
            if self.folded:  # normalised after the weighted sum
                e = np.exp(scores - scores.max())
                out[h] = (to_fp16(e) @ vs[:, kv, :]) * (F32(1) / e.sum(dtype=F32))
            else:
                out[h] = to_fp16(softmax(scores)) @ vs[:, kv, :]
        return out.reshape(-1)

    def step(self, token_id: int, pos: int, cache: KVCache) -> np.ndarray:
        """Consume one token at position pos (== cache length); returns logits (vocab,) f32."""
        cfg = self.cfg
        if pos != cache.length:
            raise LpuError(f"step at position {pos} but the cache holds {cache.length}")
        x = self.embed(token_id, pos)
        hd = cfg.head_dim
        if cfg.family == "llama":
            cos, sin = rope_tables(pos, hd, cfg.rope_theta)
        for i, L in enumerate(self.layers):
            q, k, v = self._normed(x, L["attn_norm"], L.get("attn_norm_b"),
                                   [L["q"], L["k"], L["v"]])
            q = q.reshape(cfg.n_heads, hd)
            k = k.reshape(cfg.n_kv_heads, hd)
            v = v.reshape(cfg.n_kv_heads, hd)
            if cfg.family == "llama":
                q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            cache.k[i].append(to_fp16(k))
            cache.v[i].append(to_fp16(v))
            att = self._attention(q, np.stack(cache.k[i]), np.stack(cache.v[i]))
            x = self._residual(x, L["o"], att)
            if cfg.family == "llama":
                g, u = self._normed(x, L["mlp_norm"], None, [L["gate"], L["up"]])
                x = self._residual(x, L["down"], silu(g) * u)
            else:
                (f,) = self._normed(x, L["mlp_norm"], L["mlp_norm_b"], [L["fc"]])
                x = self._residual(x, L["proj"], gelu_tanh(f))
        (logits,) = self._normed(x, self.final_norm, self.final_norm_b, [self.lm_head])
        return logits

    def decode(self, prompt_ids: list[int], max_new_tokens: int) -> tuple[list[int], np.ndarray]:
        """Greedy decoding: (generated ids, logits [positions, vocab] f32), row i the logits
        after input position i (every prompt token, then every generated token but the last)."""
        if not prompt_ids:
            raise LpuError("the prompt needs at least one token")
        if max_new_tokens < 1:
            raise LpuError("max_new_tokens must be at least 1")
        cache = self.new_cache()
        ids = list(prompt_ids)
        rows = []
        for pos in range(len(prompt_ids) + max_new_tokens - 1):
            logits = self.step(ids[pos], pos, cache)
            rows.append(logits)
            if pos >= len(prompt_ids) - 1:
                ids.append(int(np.argmax(logits)))
        return ids[len(prompt_ids):], np.stack(rows)

    def forward(self, ids: list[int]) -> np.ndarray:
        """Teacher-forced logits [len(ids), vocab] f32: row i after consuming ids[: i + 1]."""
        cache = self.new_cache()
        return np.stack([self.step(t, pos, cache) for pos, t in enumerate(ids)])
