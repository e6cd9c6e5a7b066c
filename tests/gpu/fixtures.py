"""Tiny seeded models with the canonical weight names (SPEC-models), for the GPU-path tests.

Weights are random, stored as float16 like lpu.kernels.weights.ModelWeights; scaled by
1/sqrt(fan_in) so that activations and logits stay O(1) and greedy tokens are well separated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpu.kernels.config import ModelConfig, preset

# A model wide enough that its matrix products span several 128-element K tiles (split-K).
WIDE = ModelConfig("wide-test", "llama", 256, 384, 1, 6, 2, 64, 768, 64)


@dataclass
class TinyWeights:
    """ModelWeights-like: a config and the canonical tensors."""

    config: ModelConfig
    tensors: dict[str, np.ndarray]


def random_weights(cfg: ModelConfig, seed: int = 0) -> TinyWeights:
    rng = np.random.default_rng(seed)

    def mat(out: int, inp: int) -> np.ndarray:
        return (rng.standard_normal((out, inp)) / np.sqrt(inp)).astype(np.float16)

    def vec(n: int, base: float = 1.0, spread: float = 0.1) -> np.ndarray:
        return (base + spread * rng.standard_normal(n)).astype(np.float16)

    d, t = cfg.d_model, {}
    t["tok_emb"] = rng.standard_normal((cfg.vocab_size, d)).astype(np.float16)
    if cfg.family == "gpt2":
        t["pos_emb"] = (0.1 * rng.standard_normal((cfg.max_positions, d))).astype(np.float16)
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        t[p + "attn_norm.weight"] = vec(d)
        t[p + "mlp_norm.weight"] = vec(d)
        for name, out, inp in cfg.layer_matrices():
            t[p + name + ".weight"] = mat(out, inp)
            if cfg.family == "gpt2":
                t[p + name + ".bias"] = vec(out, 0.0, 0.02)
        if cfg.family == "gpt2":
            t[p + "attn_norm.bias"] = vec(d, 0.0)
            t[p + "mlp_norm.bias"] = vec(d, 0.0)
    t["final_norm.weight"] = vec(d)
    if cfg.family == "gpt2":
        t["final_norm.bias"] = vec(d, 0.0)
    t["lm_head.weight"] = t["tok_emb"] if cfg.tie_embeddings else mat(cfg.vocab_size, d)
    return TinyWeights(cfg, t)


def tiny_llama(seed: int = 0) -> TinyWeights:
    return random_weights(preset("tiny"), seed)


def tiny_gpt2(seed: int = 0) -> TinyWeights:
    return random_weights(preset("tiny-gpt2"), seed)
