"""The public face of the GPU model: resolve a model, simulate decode, return a GpuResult.

`simulate()` validates its inputs, lowers the decode step to kernels, draws the seeded random
numbers, runs the compiled timing model and turns its arrays into a result with per-token
latencies, percentiles, model-bandwidth utilisation, the roofline bound and a kernel trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lpu.errors import LpuError
from lpu.gpu.lowering import KIND_NAMES, StepProgram, lower_decode_step
from lpu.gpu.presets import GpuPreset, gpu_preset
from lpu.gpu.timing import gpu_params, simulate_steps
from lpu.gpu.variation import LoadModel, Variation, draw, step_load
from lpu.kernels.config import DTYPE_BYTES, ModelConfig

WEIGHT_DTYPES = ("fp16", "bf16", "int8", "fp8")


def resolve_config(spec: str | ModelConfig) -> ModelConfig:
    """A model shape from a preset name or a checkpoint directory (its config.json).

    Timing needs only the shape, never the weights: this is the shared loader's
    `resolve_model`, which reads config.json without touching any tensor.
    """
    if isinstance(spec, ModelConfig):
        return spec
    from lpu.kernels.weights import resolve_model

    return resolve_model(spec)


@dataclass
class KernelRecord:
    """One kernel of the first measured decode step (for traces)."""

    name: str
    kind: str
    start_ns: float
    dur_ns: float
    bytes: float          # bytes moved (HBM + L2)
    l2_hit_bytes: float


@dataclass
class GpuResult:
    """What a simulated GPU decode produced. Latencies in ms, [runs, tokens]."""

    model: str
    gpu: str
    gpus: int
    weights_dtype: str
    batch: int
    context: int
    graph: bool
    load: bool
    seed: int
    per_token_ms: np.ndarray
    bytes_per_token: np.ndarray     # [tokens] weight + our KV bytes read per step, per GPU
    roofline_ms: np.ndarray         # [tokens] lower bound per step from peak HBM bw / FLOPs
    peak_bw: float
    kernels: list[KernelRecord] = field(default_factory=list)
    others: np.ndarray | None = None  # [runs, tokens] co-running requests under --load

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.per_token_ms, 50))

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.per_token_ms, 99))

    @property
    def mean_ms(self) -> float:
        return float(self.per_token_ms.mean())

    @property
    def mbu(self) -> float:
        """Model-bandwidth utilisation: bytes a step must read / (time x peak bandwidth)."""
        t = self.per_token_ms.mean(axis=0) * 1e-3
        return float(np.mean(self.bytes_per_token / (t * self.peak_bw)))

    @property
    def run_spread_ms(self) -> float:
        """Largest, over token positions, of (max - min) latency across runs."""
        return float((self.per_token_ms.max(axis=0) - self.per_token_ms.min(axis=0)).max())

    def to_json(self) -> dict:
        """The `lpu gpu --json` object (interfaces.md), plus extra fields."""
        return {
            "model": self.model, "gpu": self.gpu, "gpus": self.gpus,
            "weights_dtype": self.weights_dtype, "batch": self.batch,
            "per_token_ms": [float(x) for x in self.per_token_ms[0]],
            "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "mbu": self.mbu,
            "context": self.context, "graph": self.graph, "load": self.load, "seed": self.seed,
            "runs": int(self.per_token_ms.shape[0]), "mean_ms": self.mean_ms,
            "per_token_ms_runs": [[float(x) for x in run] for run in self.per_token_ms],
            "run_spread_ms": self.run_spread_ms,
            "roofline_ms": float(self.roofline_ms.mean()),
            "bytes_per_token": float(self.bytes_per_token.mean()),
            "kernels_per_token": sum(1 for k in self.kernels if k.dur_ns >= 0),
            "timing_only": True,
        }


def simulate(cfg: ModelConfig | str, gpu: str | GpuPreset = "h100-sxm", *, batch: int = 1,
             context: int = 128, tokens: int = 128, runs: int = 1, seed: int = 0,
             graph: bool = True, load: bool | LoadModel = False, weights_dtype: str = "fp16",
             gpus: int = 1, variation: Variation | None = None) -> GpuResult:
    """Simulate `tokens` decode steps of `batch` sequences starting at `context` cached positions.

    Every step is one token per sequence; the KV cache grows by one position per step. `load`
    adds other requests sharing the GPU (True: the default LoadModel). `variation` switches the
    sources of variation (default: all on); the same seed gives the same numbers.
    """
    cfg = resolve_config(cfg)
    try:
        g = gpu_preset(gpu)
    except KeyError as e:
        raise LpuError(str(e.args[0])) from None
    if weights_dtype not in WEIGHT_DTYPES:
        raise LpuError(f"unknown weights dtype {weights_dtype!r}; known: "
                       f"{', '.join(WEIGHT_DTYPES)}")
    for what, v, lo in (("batch", batch, 1), ("tokens", tokens, 1), ("runs", runs, 1),
                        ("gpus", gpus, 1), ("context", context, 0)):
        if v < lo:
            raise LpuError(f"{what} must be >= {lo}, got {v}")
    var = variation if variation is not None else Variation()
    if load is True:
        var = Variation(**{**var.__dict__, "load": LoadModel()})
    elif isinstance(load, LoadModel):
        var = Variation(**{**var.__dict__, "load": load})
    try:
        prog = lower_decode_step(cfg, weights_dtype=weights_dtype, gpus=gpus,
                                 gpu_has_fp8=g.flops_fp8 > 0)
    except ValueError as e:
        raise LpuError(str(e)) from None
    _check_fits(cfg, g, prog, batch, context + tokens, gpus)

    # One warm-up step first (dropped): a real benchmark measures after warm-up, so weights
    # that fit in L2 are already resident at the first measured token.
    steps = tokens + 1
    rng = np.random.default_rng(seed)
    draws = draw(var, rng, runs, steps, len(prog), g.hbm_trefi_ns)
    sl = step_load(var.load, rng, runs, steps, batch, max(context - 1, 0))
    params = gpu_params(g, graph=graph, refresh=var.refresh, gpus=gpus)
    ns, trace = simulate_steps(prog, params, sl, draws, trace_step=1)
    per_token_ms = ns[:, 1:] / 1e6

    t = np.arange(tokens)
    kv = batch * (context + t) * prog.kv_bytes_per_pos
    bytes_per_token = prog.weight_bytes + kv
    flops = 2.0 * batch * prog.matmul_params
    peak_flops = g.flops_fp8 if (weights_dtype == "fp8" and g.flops_fp8) else g.flops_bf16
    roofline_ms = np.maximum(bytes_per_token / g.hbm_peak_bw, flops / peak_flops) * 1e3
    kernels = [KernelRecord(prog.names[k], KIND_NAMES[int(prog.kind[k])],
                            float(trace["start"][k]), float(trace["dur"][k]),
                            float(trace["hbm"][k] + trace["l2"][k]), float(trace["l2"][k]))
               for k in range(len(prog))]
    return GpuResult(model=cfg.name, gpu=g.name, gpus=gpus, weights_dtype=weights_dtype,
                     batch=batch, context=context, graph=graph, load=var.load is not None,
                     seed=seed, per_token_ms=per_token_ms, bytes_per_token=bytes_per_token,
                     roofline_ms=roofline_ms, peak_bw=g.hbm_peak_bw, kernels=kernels,
                     others=sl.others[:, 1:] if var.load is not None else None)


def _check_fits(cfg: ModelConfig, g: GpuPreset, prog: StepProgram, batch: int, positions: int,
                gpus: int) -> None:
    """Refuse a run whose weights and KV cache cannot fit in the GPUs' memory."""
    need = prog.weight_bytes + batch * positions * prog.kv_bytes_per_pos
    if need > g.hbm_bytes:
        raise LpuError(
            f"{cfg.name} needs {need / 1e9:.1f} GB per GPU ({prog.weight_bytes / 1e9:.1f} GB "
            f"weights + KV cache) but {g.name} has {g.hbm_bytes / 1e9:.0f} GB",
            hint=f"use more GPUs (--gpus {2 * gpus}) or smaller weights (--weights-dtype int8)")


def kv_bytes_per_token(cfg: ModelConfig) -> float:
    """KV bytes one cached position adds (fp16 cache), all layers."""
    return cfg.kv_bytes_per_token("fp16")


__all__ = [
    "DTYPE_BYTES",
    "GpuResult",
    "KernelRecord",
    "LoadModel",
    "Variation",
    "resolve_config",
    "simulate",
]
