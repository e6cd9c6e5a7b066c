"""Sources of run-to-run and token-to-token variation on a GPU, each sized, seeded, switchable.

Launch jitter, clock wander, DRAM refresh phase, L2 residency, and other requests sharing the GPU
(continuous batching under load). Every draw comes from one numpy Generator seeded by the user's
seed, so the same seed gives the same numbers; a source switched off contributes its mean effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoadModel:
    """Other requests sharing the GPU under continuous batching (vLLM-style scheduler).

    Requests arrive as a Poisson process, decode alongside ours (their tokens join every step's
    batch, their KV caches are read), and each new request's prompt is prefilled inside the step
    it arrives in (prefill-prioritised scheduling without chunking, vLLM's long-time default).
    Sizes are assumed, chosen as a moderately loaded chat server: about 16 other requests in
    flight, prompts lognormal around the 512-token inputs common in serving benchmarks (long
    tail up to 4096) and outputs of mean 256 tokens.
    """

    concurrency: float = 16.0          # mean other requests decoding at once
    mean_output_tokens: float = 256.0  # geometric output length of the others
    prompt_median: float = 512.0       # lognormal prompt length of the others
    prompt_sigma: float = 1.0
    prompt_max: int = 4096


@dataclass(frozen=True)
class Variation:
    """Which sources of variation are on, and how large each is (all assumed, see docs/gpu.md)."""

    jitter: bool = True     # launch gaps: lognormal around the measured mean
    clock: bool = True      # SM clock wander token to token (boost governor)
    refresh: bool = True    # HBM refresh phase relative to each kernel
    l2: bool = True         # L2 capacity left to us varies (other data, hash conflicts)
    load: LoadModel | None = None  # other requests sharing the GPU; None = idle GPU
    # Sizes. Small on purpose: published batch-1 runs are steady to ~1 %.
    gap_sigma: float = 0.05         # lognormal sigma of a launch gap
    host_sigma: float = 0.10        # lognormal sigma of an eager host launch interval
    hiccup_prob: float = 1e-4       # per eager launch: the host thread is descheduled
    hiccup_us: float = 20.0         # mean length of such a hiccup (exponential)
    clock_sigma: float = 0.003      # relative SM clock wander (AR(1) over tokens)
    clock_rho: float = 0.9
    l2_sigma: float = 0.03          # relative L2 capacity left to this model

    @staticmethod
    def off() -> Variation:
        """Every source off: the model's mean behaviour, identical every run."""
        return Variation(jitter=False, clock=False, refresh=False, l2=False, load=None)


@dataclass
class Draws:
    """Random numbers for `runs` x `steps` x `kernels`, drawn up front (the JIT takes arrays)."""

    gap: np.ndarray        # [R, T, K] multiplicative factor on the GPU-side launch gap
    host: np.ndarray       # [R, T, K] multiplicative factor on the eager host interval
    hiccup: np.ndarray     # [R, T, K] extra host delay in ns (mostly 0)
    clock: np.ndarray      # [R, T] SM clock factor (1 = nominal boost)
    l2cap: np.ndarray      # [R, T] fraction of L2 capacity available
    phase: np.ndarray      # [R] refresh phase in ns (used only when refresh is on)


def draw(var: Variation, rng: np.random.Generator, runs: int, steps: int, kernels: int,
         trefi_ns: float) -> Draws:
    """Draw every random number a simulation needs, in a fixed order (same seed, same bits)."""
    shape = (runs, steps, kernels)
    # Each draw is made whether or not its source is on, so that switching one source off does
    # not shift the random streams of the others.
    z_gap = rng.standard_normal(shape)
    z_host = rng.standard_normal(shape)
    u_hic = rng.random(shape)
    e_hic = rng.exponential(1.0, shape)
    z_clk = rng.standard_normal((runs, steps))
    z_l2 = rng.standard_normal((runs, steps))
    phase = rng.random(runs) * trefi_ns

    def lognormal_mean1(z: np.ndarray, s: float) -> np.ndarray:
        return np.exp(s * z - 0.5 * s * s)  # E = 1, so the mean gap stays the measured one

    if var.jitter:
        gap = lognormal_mean1(z_gap, var.gap_sigma)
        host = lognormal_mean1(z_host, var.host_sigma)
        hiccup = np.where(u_hic < var.hiccup_prob, e_hic * var.hiccup_us * 1e3, 0.0)
    else:
        gap = np.ones(shape)
        host = np.ones(shape)
        hiccup = np.zeros(shape)
    if var.clock:
        clk = np.empty((runs, steps))
        x = z_clk[:, 0] * var.clock_sigma
        for t in range(steps):  # AR(1): the governor moves slowly, token to token
            if t:
                x = var.clock_rho * x + np.sqrt(1 - var.clock_rho ** 2) * var.clock_sigma \
                    * z_clk[:, t]
            clk[:, t] = x
        clock = 1.0 + np.clip(clk, -0.05, 0.05)
    else:
        clock = np.ones((runs, steps))
    if var.l2:
        l2cap = np.clip(1.0 - np.abs(z_l2) * var.l2_sigma, 0.5, 1.0)
    else:
        l2cap = np.ones((runs, steps))
    return Draws(gap=gap, host=host, hiccup=hiccup, clock=clock, l2cap=l2cap,
                 phase=phase if var.refresh else np.zeros(runs))


@dataclass
class StepLoad:
    """What each step of each run processes: arrays [R, T]."""

    tokens: np.ndarray     # tokens through the matrix products (decodes + prefill tokens)
    seqs: np.ndarray       # sequences decoding (ours + others)
    kv_pos: np.ndarray     # cached positions read by attention, summed over decoding sequences
    prefill: np.ndarray    # prompt tokens prefilled in the step
    prefill_sq: np.ndarray  # sum over prefilled prompts of P*(P+1)/2 (causal attention pairs)
    others: np.ndarray     # other requests decoding in the step


def step_load(load: LoadModel | None, rng: np.random.Generator, runs: int, steps: int,
              batch: int, context: int) -> StepLoad:
    """Our batch of `batch` sequences at `context` cached positions, growing by one per step,
    plus (under load) other requests arriving, decoding and leaving."""
    t = np.arange(steps)
    ours_kv = batch * (context + t)  # our sequences' cached positions at each step
    shape = (runs, steps)
    tokens = np.full(shape, float(batch))
    seqs = np.full(shape, float(batch))
    kv = np.broadcast_to(ours_kv.astype(np.float64), shape).copy()
    pre = np.zeros(shape)
    pre_sq = np.zeros(shape)
    others = np.zeros(shape)
    # The load process draws from its own stream (spawned), so the other sources' draws do not
    # depend on whether load is on.
    lrng = np.random.default_rng(rng.integers(0, 2**63 - 1))
    if load is None:
        return StepLoad(tokens, seqs, kv, pre, pre_sq, others)
    p_end = 1.0 / load.mean_output_tokens
    lam = load.concurrency * p_end  # Little's law: arrivals per step = in flight / duration
    for r in range(runs):
        # start in steady state: Poisson(concurrency) requests, part-way through their outputs
        n0 = lrng.poisson(load.concurrency)
        ctx = [_prompt(load, lrng) + int(lrng.geometric(p_end)) for _ in range(n0)]
        for s in range(steps):
            ctx = [c + 1 for c in ctx if lrng.random() >= p_end]
            new = [_prompt(load, lrng) for _ in range(lrng.poisson(lam))]
            pre[r, s] = float(sum(new))
            pre_sq[r, s] = float(sum(p * (p + 1) / 2 for p in new))
            others[r, s] = len(ctx)
            tokens[r, s] += len(ctx) + pre[r, s]
            seqs[r, s] += len(ctx)
            kv[r, s] += float(sum(ctx))
            ctx.extend(new)
    return StepLoad(tokens, seqs, kv, pre, pre_sq, others)


def _prompt(load: LoadModel, rng: np.random.Generator) -> int:
    p = round(float(load.prompt_median * np.exp(load.prompt_sigma * rng.standard_normal())))
    return int(min(max(p, 1), load.prompt_max))
