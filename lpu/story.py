"""The side-by-side story: the same decode on the emulated LPU and on the GPU model, R runs each.

`compare()` returns the interfaces.md object for `lpu compare`; `lpu demo` renders the same
numbers. Both sides run for real every run: nothing is copied from one run to the next.
"""

from __future__ import annotations

import numpy as np

from lpu.errors import LpuError


def _pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if a.size else 0.0


def side_stats(per_token_ms: np.ndarray) -> dict:
    """p50/p99/min/max, tokens/s and the run spread of a [runs, tokens] latency array."""
    a = np.asarray(per_token_ms, np.float64)
    spread = float((a.max(axis=0) - a.min(axis=0)).max()) if a.size else 0.0
    return {"p50_ms": _pct(a, 50), "p99_ms": _pct(a, 99), "min_ms": float(a.min()),
            "max_ms": float(a.max()), "mean_ms": float(a.mean()),
            "tokens_per_s": float(1e3 / a.mean()) if a.mean() > 0 else 0.0,
            "run_spread_ms": spread}


def compare(weights, *, chip: str = "tsp-v1", gpu: str = "h100-sxm", tokens: int = 8,
            runs: int = 3, seed: int = 0, prompt_ids: list[int] | None = None,
            weights_dtype: str = "fp16", load: bool = False, progress=None) -> dict:
    """Decode `tokens` new tokens R times on both machines and compare."""
    from lpu.gpu.api import simulate
    from lpu.gpu.numerics import decode_runs
    from lpu.kernels.runtime import LpuDecoder

    if runs < 1 or tokens < 1:
        raise LpuError("--runs and --tokens must be at least 1")
    cfg = weights.config
    prompt = list(prompt_ids or [0])
    steps = len(prompt) + tokens - 1
    dec = LpuDecoder(weights, chip, weights_dtype, max_context=steps)
    lpu_ms, lpu_tokens, lpu_logits = [], [], []
    done = 0
    for _ in range(runs):
        res = dec.decode(prompt, tokens,
                         progress=(lambda i, n, d=done: progress(d + i, runs * steps * 2))
                         if progress else None)
        done += steps
        lpu_ms.append(np.asarray(res.latency_us_per_token) / 1e3)
        lpu_tokens.append(res.tokens)
        lpu_logits.append(res.logits)
    lpu_ms_a = np.stack(lpu_ms)
    lpu_side = {"model": cfg.name, "chip": dec.chip.name, "chips": 1,
                "weights_dtype": weights_dtype, "prompt_ids": prompt, "tokens": lpu_tokens[0],
                "cycles_per_token": res.cycles_per_token,
                "latency_us_per_token": res.latency_us_per_token,
                "deterministic": res.deterministic and bool((lpu_ms_a == lpu_ms_a[0]).all()),
                "per_token_ms_runs": lpu_ms_a.tolist(), **side_stats(lpu_ms_a),
                "bit_identical": all(np.array_equal(lg, lpu_logits[0]) for lg in lpu_logits)
                and all(t == lpu_tokens[0] for t in lpu_tokens)}
    g = simulate(cfg, gpu, batch=1, context=len(prompt), tokens=steps, runs=runs, seed=seed,
                 graph=True, load=load, weights_dtype=weights_dtype)
    num = decode_runs(weights, prompt, tokens, runs=runs, seed=seed, dtype="fp16",
                      weights_dtype=weights_dtype if weights_dtype == "int8" else None,
                      split_k_atomics=True)
    if progress:
        progress(runs * steps * 2, runs * steps * 2)
    gj = g.to_json()
    gpu_side = {**gj, **side_stats(np.asarray(g.per_token_ms)),
                "tokens": list(num.tokens[0]), "bit_identical": bool(num.bit_identical),
                "per_token_ms_runs": np.asarray(g.per_token_ms).tolist()}
    return {"model": cfg.name, "lpu": lpu_side, "gpu": gpu_side,
            "tokens_match": list(num.tokens[0]) == lpu_tokens[0], "runs": runs,
            "memory_wall": memory_wall(cfg, weights_dtype, g)}


def memory_wall(cfg, weights_dtype: str, g) -> dict:
    """Bytes each token must read ÷ peak HBM bandwidth: the GPU's floor per token, beside what
    the GPU model predicts."""
    per_token = float(np.mean(g.bytes_per_token))
    return {"bytes_per_token": per_token, "hbm_peak_bytes_per_s": float(g.peak_bw),
            "floor_ms": per_token / float(g.peak_bw) * 1e3,
            "gpu_p50_ms": float(g.p50_ms)}
