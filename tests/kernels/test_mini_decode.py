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
