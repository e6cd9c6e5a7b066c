"""The coursework chip runs a whole transformer: `tiny` decodes on `mini` exactly like the
reference (same tokens; logits within the fp16-rounding tolerance of the tsp-v1 tests)."""

import numpy as np
import pytest

from lpu.kernels.reference import Reference
from lpu.kernels.runtime import LpuDecoder
from lpu.kernels.weights import load_weights


@pytest.mark.parametrize("wdt", ["fp16", "int8"])
def test_tiny_decodes_on_mini_like_the_reference(wdt):
    w = load_weights("tiny", seed=0)
    ref_tokens, ref_logits = Reference(w, wdt, folded=True).decode([1, 2, 3], 3)
    res = LpuDecoder(w, "mini", wdt, max_context=8).decode([1, 2, 3], 3)
    assert res.tokens == ref_tokens
    assert res.deterministic
    # same bound as tests/kernels/test_compiler_vs_reference.py: 2e-3 of the row's largest logit
    scale = np.abs(ref_logits).max(axis=1, keepdims=True)
    assert np.all(np.abs(res.logits - ref_logits) <= 2e-3 * scale)


@pytest.mark.parametrize("wdt", ["fp16", "int8"])
def test_the_mxm_worker_thread_gives_the_same_bits(wdt, monkeypatch):
    # LPU_THREADS=2: every run hands lw transposes and mv products to a second thread;
    # LPU_THREADS=1: the interpreter does them itself. Logits, tokens and cycles must agree.
    w = load_weights("tiny", seed=0)
    out = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("LPU_THREADS", threads)
        res = LpuDecoder(w, "mini", wdt, max_context=8).decode([1, 2, 3], 3)
        out[threads] = (res.tokens, res.logits.tobytes(), [s.cycles for s in res.steps])
    assert out["1"] == out["2"]


@pytest.mark.parametrize("threads", ["1", "2"])
def test_the_weights_stay_where_the_first_step_put_them(threads, monkeypatch):
    # a chip keeps its weights in place: every step's program puts each weight word at the
    # same (slice, address) (one shared placement), so after the first step the machine
    # copies no weight again, whether this process or the compile helper compiled the step.
    # tiny-gpt2 on mini with int8 weights: before, 8 of its 13 matrices moved between steps
    # (which stream carried a row, and so its slice, followed the cycles its block shared)
    from lpu.machine import Machine

    monkeypatch.setenv("LPU_THREADS", threads)
    placed: list[str] = []
    real = Machine._place

    def spy(self, name, words):
        placed.append(name)
        return real(self, name, words)

    monkeypatch.setattr(Machine, "_place", spy)
    dec = LpuDecoder(load_weights("tiny-gpt2", seed=0), "mini", "int8", max_context=6)
    res = dec.decode([1, 2, 3], 3)
    weights = [s.name for s in res.steps[0].compiled.program.segments if s.name.endswith(".W")]
    assert len(weights) == 13
    assert all(placed.count(n) == 1 for n in weights)
    for st in res.steps[1:]:
        segs = {s.name: s for s in st.compiled.program.segments}
        for n in weights:
            assert segs[n].runs is res.steps[0].compiled.program.segment(n).runs
    if threads == "2":
        assert dec.from_helper  # some steps came from the helper
