"""Model configurations: the shape of a transformer decoder, and the named presets.

One ModelConfig describes a Llama-family or GPT-2-family decoder; the LPU compiler, the numpy
reference and the GPU model all read the same object, so a shape is written down once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

Family = Literal["llama", "gpt2"]

# Bytes per weight for each storage dtype the tools accept.
DTYPE_BYTES: dict[str, float] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "fp8": 1}


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a decoder-only transformer (no weights)."""

    name: str
    family: Family
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    max_positions: int
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0  # Llama only
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        for f in ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff",
                  "max_positions"):
            if getattr(self, f) <= 0:
                raise ValueError(f"model {self.name!r}: {f} must be positive")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"model {self.name!r}: n_heads {self.n_heads} is not a multiple of "
                             f"n_kv_heads {self.n_kv_heads}")
        if self.family not in ("llama", "gpt2"):
            raise ValueError(f"model {self.name!r}: unsupported family {self.family!r}")

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def activation(self) -> str:
        return "silu" if self.family == "llama" else "gelu_tanh"

    def layer_matrices(self) -> list[tuple[str, int, int]]:
        """The weight matrices of one layer as (name, out_features, in_features)."""
        d, q, kv, ff = self.d_model, self.q_dim, self.kv_dim, self.d_ff
        if self.family == "llama":
            return [("q", q, d), ("k", kv, d), ("v", kv, d), ("o", d, q),
                    ("gate", ff, d), ("up", ff, d), ("down", d, ff)]
        return [("qkv", q + 2 * kv, d), ("o", d, q), ("fc", ff, d), ("proj", d, ff)]

    def matmul_params(self) -> int:
        """Weights read by every decode step's matrix products, LM head included."""
        per_layer = sum(o * i for _, o, i in self.layer_matrices())
        return self.n_layers * per_layer + self.vocab_size * self.d_model

    def param_count(self) -> int:
        """All parameters, embeddings and norms included (tied embeddings counted once)."""
        d = self.d_model
        norms = (2 * self.n_layers + 1) * d * (1 if self.family == "llama" else 2)
        biases = 0
        if self.family == "gpt2":
            biases = self.n_layers * sum(o for _, o, _ in self.layer_matrices())
        emb = self.vocab_size * d
        pos = self.max_positions * d if self.family == "gpt2" else 0
        head = 0 if self.tie_embeddings else self.vocab_size * d
        per_layer = sum(o * i for _, o, i in self.layer_matrices())
        return self.n_layers * per_layer + norms + biases + emb + pos + head

    def weight_bytes_per_token(self, dtype: str = "fp16") -> float:
        """Bytes of weights a batch-1 decode step must read (matrix weights incl. LM head)."""
        return self.matmul_params() * DTYPE_BYTES[dtype]

    def kv_bytes_per_token(self, dtype: str = "fp16") -> float:
        """KV-cache bytes one token adds: 2 (K and V) * kv_dim * layers * bytes."""
        return 2 * self.kv_dim * self.n_layers * DTYPE_BYTES[dtype]

    def to_dict(self) -> dict:
        return asdict(self)

    def with_name(self, name: str) -> ModelConfig:
        return replace(self, name=name)


def _llama(name: str, vocab: int, d: int, layers: int, heads: int, kv: int, ff: int,
           ctx: int = 4096, theta: float = 10000.0, eps: float = 1e-5,
           tie: bool = False) -> ModelConfig:
    return ModelConfig(name, "llama", vocab, d, layers, heads, kv, d // heads, ff, ctx, eps,
                       theta, tie)


def _gpt2(name: str, d: int, layers: int, heads: int, vocab: int = 50257,
          ctx: int = 1024) -> ModelConfig:
    return ModelConfig(name, "gpt2", vocab, d, layers, heads, heads, d // heads, 4 * d, ctx,
                       1e-5, 0.0, True)


# Shapes from each model's published Hugging Face config.json.
PRESETS: dict[str, ModelConfig] = {
    # Small enough for the `mini` chip: every weight fits its SRAM (see lpu info --chip mini).
    "tiny": _llama("tiny", 256, 64, 2, 4, 2, 128, ctx=64),
    # The embedded default of `lpu demo`: big enough to show the story, quick to emulate.
    "demo": _llama("demo", 512, 256, 4, 8, 4, 688, ctx=128),
    "tiny-gpt2": ModelConfig("tiny-gpt2", "gpt2", 256, 64, 2, 4, 4, 16, 256, 64, 1e-5, 0.0, True),
    "gpt2-small": _gpt2("gpt2-small", 768, 12, 12),
    "gpt2-medium": _gpt2("gpt2-medium", 1024, 24, 16),
    "gpt2-large": _gpt2("gpt2-large", 1280, 36, 20),
    "gpt2-xl": _gpt2("gpt2-xl", 1600, 48, 25),
    "tinyllama-1.1b": _llama("tinyllama-1.1b", 32000, 2048, 22, 32, 4, 5632, ctx=2048),
    "llama-2-7b": _llama("llama-2-7b", 32000, 4096, 32, 32, 32, 11008),
    "llama-2-13b": _llama("llama-2-13b", 32000, 5120, 40, 40, 40, 13824),
    "llama-2-70b": _llama("llama-2-70b", 32000, 8192, 80, 64, 8, 28672),
    "llama-3-8b": _llama("llama-3-8b", 128256, 4096, 32, 32, 8, 14336, ctx=8192, theta=500000.0),
    "llama-3-70b": _llama("llama-3-70b", 128256, 8192, 80, 64, 8, 28672, ctx=8192,
                          theta=500000.0),
    "mistral-7b": _llama("mistral-7b", 32000, 4096, 32, 32, 8, 14336, ctx=32768,
                         theta=1000000.0),
}


def preset(name: str) -> ModelConfig:
    """Look up a model preset by name, with the list of names in the error."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}") from None
