"""A straightforward numpy decoder of the shared numeric recipe, the oracle for the GPU path.

Plain fp32 matrix products (BLAS order) on fp16-rounded inputs, a full softmax per step, no
tiling: the same math as lpu.gpu.numerics in a different summation order.
"""

from __future__ import annotations

import numpy as np


def f16(x):
    return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)


def decode(w, prompt, max_new, int8=False):
    cfg, t = w.config, w.tensors
    hd, nh, nkv = cfg.head_dim, cfg.n_heads, cfg.n_kv_heads
    inv = (cfg.rope_theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
           if cfg.family == "llama" else None)
    ks = [[] for _ in range(cfg.n_layers)]
    vs = [[] for _ in range(cfg.n_layers)]

    def lin(name, x, bias=None):
        wm = t[name].astype(np.float32)
        if int8:
            amax = np.abs(wm).max(axis=1)
            sc = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
            q = np.clip(np.rint(wm / sc[:, None]), -127, 127).astype(np.float32)
            y = sc * (q @ f16(x))
        else:
            y = wm @ f16(x)
        if bias is not None:
            y = y + t[bias].astype(np.float32)
        return y.astype(np.float32)

    def norm(x, p):
        if cfg.family == "llama":
            return x / np.sqrt(np.mean(x * x) + np.float32(cfg.norm_eps)) * t[p + ".weight"]
        c = x - x.mean()
        return (c / np.sqrt(np.mean(c * c) + np.float32(cfg.norm_eps)) * t[p + ".weight"]
                + t[p + ".bias"])

    def rope(x, pos):
        a = pos * inv
        cos = np.cos(np.concatenate([a, a])).astype(np.float32)
        sin = np.sin(np.concatenate([a, a])).astype(np.float32)
        h = hd // 2
        return x * cos + np.concatenate([-x[..., h:], x[..., :h]], -1) * sin

    def step(tok, pos):
        x = t["tok_emb"][tok].astype(np.float32)
        if cfg.family == "gpt2":
            x = x + t["pos_emb"][pos].astype(np.float32)
        for i in range(cfg.n_layers):
            p = f"layers.{i}."
            h = norm(x, p + "attn_norm").astype(np.float32)
            if cfg.family == "llama":
                q = rope(lin(p + "q.weight", h).reshape(nh, hd), pos)
                k = rope(lin(p + "k.weight", h).reshape(nkv, hd), pos)
                v = lin(p + "v.weight", h).reshape(nkv, hd)
            else:
                qkv = lin(p + "qkv.weight", h, p + "qkv.bias")
                q = qkv[:nh * hd].reshape(nh, hd)
                k = qkv[nh * hd:(nh + nkv) * hd].reshape(nkv, hd)
                v = qkv[(nh + nkv) * hd:].reshape(nkv, hd)
            ks[i].append(f16(k))
            vs[i].append(f16(v))
            K, V = np.stack(ks[i]), np.stack(vs[i])
            out = np.zeros((nh, hd), np.float32)
            for head in range(nh):
                g = head // (nh // nkv)
                s = (K[:, g, :] @ f16(q[head])) / np.float32(np.sqrt(hd))
                e = np.exp(s - s.max())
                pr = e / e.sum()
                out[head] = f16(pr) @ V[:, g, :]
            x = x + lin(p + "o.weight", out.reshape(-1), None if cfg.family == "llama"
                        else p + "o.bias")
            h = norm(x, p + "mlp_norm").astype(np.float32)
            if cfg.family == "llama":
                g = lin(p + "gate.weight", h)
                a = g / (1 + np.exp(-g)) * lin(p + "up.weight", h)
                x = x + lin(p + "down.weight", a)
            else:
                f = lin(p + "fc.weight", h, p + "fc.bias")
                a = 0.5 * f * (1 + np.tanh(np.sqrt(2 / np.pi) * (f + 0.044715 * f ** 3)))
                x = x + lin(p + "proj.weight", a.astype(np.float32), p + "proj.bias")
            x = x.astype(np.float32)
        return lin("lm_head.weight", norm(x, "final_norm").astype(np.float32))

    rows, out, pos = [], [], 0
    for tok in prompt:
        logits = step(tok, pos)
        rows.append(logits)
        pos += 1
    for n in range(max_new):
        nxt = int(np.argmax(logits))
        out.append(nxt)
        if n + 1 == max_new:
            break
        logits = step(nxt, pos)
        rows.append(logits)
        pos += 1
    return out, np.stack(rows)
