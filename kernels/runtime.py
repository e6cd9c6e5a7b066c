"""The host runtime of an LPU decode: embeddings in, one compiled step per position, tokens out.

The chip runs every transformer step; the host reads the embedding row of each input token (a
table lookup), hands it over, and reads back logits and the argmax token the chip computed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from lpu.errors import LpuError
from lpu.isa.chips import Chip, get_chip
from lpu.kernels.compiler import CompiledStep, Compiler
from lpu.kernels.parallel import Precompiler
from lpu.machine import Machine, RunResult, _cpus
from lpu.traces.record import MAX_DECODE_EVENTS


def embed(weights, token: int, pos: int) -> np.ndarray:
    """The step's input vector: the token's embedding row (+ its position's, GPT-2), fp32."""
    cfg, t = weights.config, weights.tensors
    if not 0 <= token < cfg.vocab_size:
        raise LpuError(f"token id {token} is outside the vocabulary (0..{cfg.vocab_size - 1})")
    x = t["tok_emb"][token].astype(np.float32)
    if cfg.family == "gpt2":
        x = x + t["pos_emb"][pos].astype(np.float32)
    return x


@dataclass
class StepRecord:
    pos: int
    token_in: int
    cycles: int
    predicted: int
    token_out: int
    result: RunResult | None = None  # None once a decode's trace could keep spans only
    compiled: CompiledStep | None = None
    instances: int = 0  # instructions issued (the trace events this step would have)


@dataclass
class DecodeResult:
    prompt_ids: list[int]
    tokens: list[int]  # generated ids
    logits: np.ndarray  # [positions, vocab] f32
    steps: list[StepRecord] = field(default_factory=list)
    chip: Chip | None = None

    @property
    def cycles_per_token(self) -> list[int]:
        return [s.cycles for s in self.steps]

    @property
    def latency_us_per_token(self) -> list[float]:
        return [c / (self.chip.clock_ghz * 1e3) for c in self.cycles_per_token]

    @property
    def deterministic(self) -> bool:
        """Every step took exactly the cycles its static schedule said (so equal shapes take
        equal cycles, whatever the data)."""
        return all(s.cycles == s.predicted for s in self.steps)


def _weight_capacity_words(chip: Chip) -> int:
    from lpu.kernels.sched import weight_slices

    return sum(len(weight_slices(chip, h)) for h in ("w", "e")) * chip.mem_words


def chips_needed(comp: Compiler) -> int:
    """Chips the weights need, counting what the weight slices of one chip can hold."""
    return max(1, -(-comp.weight_words() // _weight_capacity_words(comp.chip)))


def chips_needed_for(cfg, weights_dtype: str, chip: Chip | str = "tsp-v1") -> int:
    """The same count from the model's shape alone (no weights needed): every matrix row takes
    ceil(in / lanes) words per byte of its type (heads padded to whole vectors aside)."""
    chip = get_chip(chip) if isinstance(chip, str) else chip
    g = 1 if weights_dtype == "int8" else 2
    L = chip.lanes
    words = cfg.n_layers * sum(o * (-(-i // L)) * g for _, o, i in cfg.layer_matrices())
    words += cfg.vocab_size * (-(-cfg.d_model // L)) * g
    return max(1, -(-words // _weight_capacity_words(chip)))


def check_fits(spec: str, weights_dtype: str, chip: str) -> None:
    """Stop cleanly, before loading any weights, when a model needs more than one chip."""
    from lpu.kernels.weights import resolve_model

    cfg = resolve_model(spec)
    n = chips_needed_for(cfg, weights_dtype, chip)
    if n > 1:
        raise LpuError(f"{cfg.name} with {weights_dtype} weights needs {n} {chip} chips (its "
                       "weights do not fit one chip's SRAM); scale-out is not modelled yet",
                       hint="try --weights-dtype int8 or a smaller model; lpu gpu runs any size")


class LpuDecoder:
    """Greedy decoding on the emulated chip, one compiled program per position."""

    def __init__(self, weights, chip: Chip | str = "tsp-v1", weights_dtype: str = "fp16",
                 max_context: int = 64) -> None:
        self.weights = weights
        self.chip = get_chip(chip) if isinstance(chip, str) else chip
        self.compiler = Compiler(weights, self.chip, weights_dtype, max_context)
        n = chips_needed(self.compiler)
        if n > 1:
            raise LpuError(f"{weights.config.name} with {weights_dtype} weights needs {n} "
                           f"{self.chip.name} chips; scale-out is not modelled yet",
                           hint="try --weights-dtype int8 or a smaller model")
        self._steps: dict[int, CompiledStep] = {}
        self.machine: Machine | None = None
        self._helper: Precompiler | None = None
        self.from_helper: set[int] = set()  # positions whose program the helper compiled

    def step_program(self, pos: int) -> CompiledStep:
        if pos not in self._steps:
            st = None
            if self._helper is not None:
                st = self._helper.take(pos, self.compiler)
                if st is not None:
                    self.from_helper.add(pos)
            self._steps[pos] = st or self.compiler.compile_step(pos)
        return self._steps[pos]

    def _start_helper(self, positions: range) -> None:
        """With two CPUs, a forked helper compiles every other position not yet compiled (the
        second, fourth, ...) while this process compiles and runs the others."""
        todo = [p for p in positions if p not in self._steps]
        theirs = todo[1::2]
        if (not theirs or not hasattr(os, "fork") or _cpus() < 2
                or os.environ.get("LPU_THREADS") == "1"):
            return
        self._helper = Precompiler(self.compiler, theirs)

    def reset(self) -> None:
        """Start a new sequence. The machine (and its SRAM) is kept: step `pos` writes the KV
        cache at `pos` before anything reads it, so nothing stale is ever read."""

    def run_step(self, token: int, pos: int) -> tuple[StepRecord, np.ndarray]:
        st = self.step_program(pos)
        if self.machine is None:
            self.machine = Machine(st.program)
        else:
            self.machine.swap_program(st.program)
        self.machine.load("x0", embed(self.weights, token, pos))
        res = self.machine.run()
        logits = self.machine.dump("logits").astype(np.float32)
        tok = int(self.machine.dump("token").reshape(-1)[0])
        return StepRecord(pos, token, res.cycles, st.predicted_cycles, tok, res, st,
                          len(res.schedule)), logits

    def decode(self, prompt_ids: list[int], max_new_tokens: int,
               progress=None) -> DecodeResult:
        if not prompt_ids:
            raise LpuError("the prompt needs at least one token")
        if max_new_tokens < 1:
            raise LpuError("--max-new-tokens must be at least 1")
        total = len(prompt_ids) + max_new_tokens - 1
        if total > self.compiler.max_context:
            raise LpuError(f"prompt + new tokens need {total} positions; compiled for "
                           f"{self.compiler.max_context}")
        self.reset()
        ids = list(prompt_ids)
        steps, rows = [], []
        self._start_helper(range(total))
        events = 0
        try:
            for pos in range(total):
                rec, logits = self.run_step(ids[pos], pos)
                # a step's run keeps its decoded table and schedule (~70 MB for gpt2-small) for
                # the trace's instruction events; past what a decode trace keeps, let them go,
                # or a long decode grows without bound
                events += rec.instances
                if events > MAX_DECODE_EVENTS:
                    for r in steps + [rec]:
                        r.result = None
                steps.append(rec)
                rows.append(logits)
                if pos >= len(prompt_ids) - 1:
                    ids.append(rec.token_out)
                if progress:
                    progress(pos + 1, total)
        finally:
            if self._helper is not None:
                self._helper.close()
                self._helper = None
        gen = ids[len(prompt_ids):]
        return DecodeResult(list(prompt_ids), gen, np.stack(rows), steps, self.chip)
