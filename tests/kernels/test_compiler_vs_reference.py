"""The compiled LPU decode (emulated tsp-v1) against the numpy reference, fp16 and int8.

Both follow SPEC-models.md in its folded variant (Reference(folded=True): each norm finished
after the product that takes it, softmax normalised after the weighted sum, as the compiler
schedules them); they differ only within fp32 rounding: the order of fp32 sums (the
LPU adds a product's terms in lane order and reduces attention in a tree, numpy's BLAS in its
own blocked order), the last bit of exp/tanh/sigmoid/rsqrt (the emulator rounds float64 libm
results once, numpy computes in float32) and GELU's form (x sigmoid(2z) against
0.5 x (1 + tanh z)). Those results differ in the last fp32 bit now and then; when such a
one-ulp difference lands on an fp16 rounding boundary of the next product's input, that input moves by one fp16 ulp (2^-11
relative) and the logits by a few 1e-4 (int8 x fp16 products have fewer significant bits, so
int8 sums are exact more often and int8 rows often agree to ~1e-7, but not always).
TOL: |lpu - reference| <= 2e-3 * max|reference row| (four fp16 ulps of the largest logit;
measured on these decodes: at most 8.1e-4 relative; against the unfolded reference the same
decodes differ by up to 1.6e-3, which is why the folded one is the check). The reference is
run teacher-forced on the tokens the LPU fed itself, so every row compares the same inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from lpu.kernels.config import PRESETS
from lpu.kernels.reference import Reference
from lpu.kernels.runtime import LpuDecoder
from lpu.kernels.weights import load_weights, random_weights

TOL = 2e-3
PROMPT = [3, 17, 42]
NEW = 4


def _check(weights, dtype: str) -> None:
    res = LpuDecoder(weights, "tsp-v1", dtype, max_context=len(PROMPT) + NEW).decode(PROMPT, NEW)
    match_reference(res, weights, dtype, PROMPT, NEW)


def match_reference(res, weights, dtype: str, prompt: list[int], new: int) -> None:
    """res (an LPU decode of prompt and `new` tokens) against the folded reference run
    teacher-forced on the tokens the LPU fed itself: logits within TOL, greedy tokens equal
    wherever the reference's top-2 margin is clear of it."""
    ref = Reference(weights, dtype, folded=True)
    want = ref.forward(prompt + res.tokens[:-1])
    assert res.logits.shape == want.shape
    row_max = np.abs(want).max(axis=1)
    err = np.abs(res.logits - want).max(axis=1)
    assert (err <= TOL * row_max).all(), (err / row_max).max()
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * TOL * row_max
    for k, row in enumerate(range(len(prompt) - 1, len(prompt) - 1 + new)):
        if clear[row]:
            assert res.tokens[k] == int(want[row].argmax())
    # with no flips at all the LPU decode is the reference decode, token for token
    if (err < 1e-5).all():
        assert res.tokens == ref.decode(prompt, new)[0]


@pytest.mark.parametrize("dtype", ["fp16", "int8"])
@pytest.mark.parametrize("name", ["tiny", "tiny-gpt2"])
def test_lpu_decode_of_a_preset_matches_the_reference(name, dtype):
    _check(random_weights(PRESETS[name], 0), dtype)


@pytest.mark.parametrize("dtype", ["fp16", "int8"])
def test_lpu_decode_of_a_llama_checkpoint_matches_the_reference(llama_dir, dtype):
    _check(load_weights(str(llama_dir)), dtype)


@pytest.mark.parametrize("dtype", ["fp16", "int8"])
def test_lpu_decode_of_a_gpt2_checkpoint_matches_the_reference(gpt2_dir, dtype):
    _check(load_weights(str(gpt2_dir)), dtype)


@pytest.mark.parametrize("int8", [False, True])
def test_the_folded_norm_sums_do_not_depend_on_how_the_rows_are_chunked(int8):
    # the compiler sums W gamma and W beta in float64 a few rows at a time (an LM head in one
    # piece would be ~300 MB of float64): the same float32 values whatever the chunk, and the
    # same as the whole float64 product the reference computes
    from lpu.kernels.compiler import folded_sums

    rng = np.random.default_rng(3)
    shape = (1000, 192)
    if int8:
        w = rng.integers(-127, 128, shape).astype(np.int8)
        scale = (rng.random(shape[0]) * 0.01).astype(np.float32)
    else:
        w = rng.standard_normal(shape).astype(np.float16)
        scale = None
    gamma, beta = (rng.standard_normal(shape[1]).astype(np.float32) for _ in range(2))
    bias = rng.standard_normal(shape[0]).astype(np.float32)
    whole = folded_sums(w, scale, gamma, beta, bias, rows=shape[0])
    for rows in (1, 7, 256):
        parts = folded_sums(w, scale, gamma, beta, bias, rows=rows)
        for a, b in zip(parts, whole, strict=True):
            assert a.dtype == np.float32 and np.array_equal(a, b)
    wd = w.astype(np.float64) * (1.0 if scale is None else scale.astype(np.float64)[:, None])
    np.testing.assert_array_equal(whole[0], (wd @ gamma.astype(np.float64)).astype(np.float32))
    np.testing.assert_array_equal(
        whole[1], (wd @ beta.astype(np.float64) + bias.astype(np.float64)).astype(np.float32))
