"""Model weights under their canonical names: checking, seeded random weights, loading a SPEC.

A SPEC is a preset name (seeded random weights of that shape) or a Hugging Face checkpoint
directory; every consumer (LPU compiler, numpy reference, GPU model) gets the same ModelWeights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lpu.errors import LpuError
from lpu.kernels.config import PRESETS, ModelConfig

# Random weights for a preset are made in memory; above this many parameters (4 GB of fp16)
# that is a mistake rather than a wish, so we refuse (a real checkpoint directory is fine).
MAX_RANDOM_PARAMS = 2_000_000_000

# Random numbers are drawn in float32 chunks of this many values, then rounded to fp16, so a
# large model never needs a float64 (or full float32) copy of itself.
_CHUNK = 1 << 22


@dataclass
class ModelWeights:
    """A model's shape and its tensors by canonical name (SPEC-models.md), fp16 arrays."""

    config: ModelConfig
    tensors: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.tensors[name]

    @property
    def tied(self) -> bool:
        return self.tensors.get("lm_head.weight") is self.tensors.get("tok_emb")


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every canonical tensor a model of this shape has, in a fixed order, with its shape."""
    d, v = cfg.d_model, cfg.vocab_size
    gpt2 = cfg.family == "gpt2"
    out: dict[str, tuple[int, ...]] = {"tok_emb": (v, d)}
    if gpt2:
        out["pos_emb"] = (cfg.max_positions, d)
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        out[p + "attn_norm.weight"] = (d,)
        if gpt2:
            out[p + "attn_norm.bias"] = (d,)
        for name, o, n_in in cfg.layer_matrices():
            if name in ("gate", "up", "down", "fc", "proj"):
                continue
            out[p + f"{name}.weight"] = (o, n_in)
            if gpt2:
                out[p + f"{name}.bias"] = (o,)
        out[p + "mlp_norm.weight"] = (d,)
        if gpt2:
            out[p + "mlp_norm.bias"] = (d,)
        for name, o, n_in in cfg.layer_matrices():
            if name not in ("gate", "up", "down", "fc", "proj"):
                continue
            out[p + f"{name}.weight"] = (o, n_in)
            if gpt2:
                out[p + f"{name}.bias"] = (o,)
    out["final_norm.weight"] = (d,)
    if gpt2:
        out["final_norm.bias"] = (d,)
    out["lm_head.weight"] = (v, d)
    return out


def validate(weights: ModelWeights) -> None:
    """Every expected tensor present, of its shape and fp16; tied heads share tok_emb."""
    cfg, t = weights.config, weights.tensors
    where = f"model {cfg.name!r}"
    for name, shape in expected_shapes(cfg).items():
        if name not in t:
            raise LpuError(f"{where}: tensor {name!r} is missing (expected shape {shape})")
        arr = t[name]
        if tuple(arr.shape) != shape:
            raise LpuError(f"{where}: tensor {name!r} has shape {tuple(arr.shape)}, "
                           f"expected {shape}")
        if arr.dtype != np.float16:
            raise LpuError(f"{where}: tensor {name!r} is {arr.dtype}, expected float16")
    if cfg.tie_embeddings and t["lm_head.weight"] is not t["tok_emb"]:
        raise LpuError(f"{where}: embeddings are tied but lm_head.weight is not tok_emb")


def _normal16(rng: np.random.Generator, shape: tuple[int, ...], std: float,
              mean: float = 0.0) -> np.ndarray:
    """N(mean, std) drawn in float32 chunks, rounded once to fp16."""
    out = np.empty(shape, np.float16)
    flat = out.reshape(-1)
    for a in range(0, flat.size, _CHUNK):
        n = min(_CHUNK, flat.size - a)
        x = rng.standard_normal(n, dtype=np.float32)
        x *= np.float32(std)
        if mean:
            x += np.float32(mean)
        flat[a:a + n] = x  # float32 -> float16, round to nearest even
    return out


def random_weights(cfg: ModelConfig, seed: int = 0) -> ModelWeights:
    """Seeded random weights: the same (cfg, seed) gives the same bits in any process.

    Matrices and token embeddings are N(0, std) with std = 0.04 * sqrt(768 / d): twice GPT-2's
    0.02 init at d = 768, and scaled so that a logit's spread (~std * sqrt(d) = 1.1) is the same
    for every width. At 0.02 greedy decoding of tiny-gpt2 and gpt2-small collapsed to one
    repeated token whatever the prompt (tried: 1x, 2x, 4x, 8x; 2x gives varied tokens for
    tiny, tiny-gpt2 and demo). Position embeddings get half that std (so the token, not the
    position, dominates the input), norm weights N(1, 0.02), biases N(0, 0.01).
    """
    if cfg.param_count() > MAX_RANDOM_PARAMS:
        raise LpuError(f"preset {cfg.name!r} has {cfg.param_count() / 1e9:.1f}e9 parameters; "
                       f"random weights are made only up to {MAX_RANDOM_PARAMS / 1e9:.0f}e9",
                       hint="use a smaller preset, or a checkpoint directory")
    rng = np.random.default_rng(seed)
    std = 0.04 * math.sqrt(768 / cfg.d_model)
    t: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(cfg).items():
        if name == "lm_head.weight" and cfg.tie_embeddings:
            t[name] = t["tok_emb"]
        elif "norm." in name and name.endswith(".weight"):
            t[name] = _normal16(rng, shape, 0.02, 1.0)
        elif name.endswith(".bias"):
            t[name] = _normal16(rng, shape, 0.01)
        elif name == "pos_emb":
            t[name] = _normal16(rng, shape, std / 2)
        else:
            t[name] = _normal16(rng, shape, std)
    return ModelWeights(cfg, t)


def resolve_model(spec: str) -> ModelConfig:
    """The shape a SPEC names (preset or checkpoint directory), without loading any weights."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if path.is_dir():
        from lpu.kernels.checkpoint import read_config

        return read_config(path)
    if path.name == "config.json" and path.is_file():
        from lpu.kernels.checkpoint import read_config

        return read_config(path.parent)
    raise LpuError(f"model {spec!r} is neither a preset nor a directory",
                   hint=f"presets: {', '.join(PRESETS)}")


def load_weights(spec: str, seed: int = 0) -> ModelWeights:
    """Weights for a SPEC: a checkpoint directory's (seed unused) or a preset's random ones."""
    path = Path(spec)
    if spec not in PRESETS and (path.is_dir() or (path.name == "config.json" and path.is_file())):
        from lpu.kernels.checkpoint import load_checkpoint

        w = load_checkpoint(path if path.is_dir() else path.parent)
    else:
        w = random_weights(resolve_model(spec), seed)
    validate(w)
    return w
