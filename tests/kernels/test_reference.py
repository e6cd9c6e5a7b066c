"""The numpy reference decoder against transformers (float32 on the same fp16 weights), int8
against fp16, and its building blocks against their formulas.

Tolerances. FP16_REL: the recipe rounds every matrix product's input to fp16 (relative error
<= 2^-11 = 4.9e-4 each); a logit of these 2-layer models sits behind about ten such roundings
in series (q/k/v input, q, K and V cache, p, o input, MLP inputs, LM-head input), so its error
is bounded by ~10 * 4.9e-4 = 5e-3 of the row's largest logit (measured: <= 2.0e-3 over three
seeds of each family). INT8_RMS: symmetric per-row int8 has step max|w|/127 with max|w| ~ 2.5
sigma for 64-256 Gaussian entries, a rounding error of step/sqrt(12) ~ 0.6% of sigma per weight,
so ~0.6% relative per product output; about 13 quantized products lie in series (q or k, v, o,
gate, up, down per layer, 2 layers, LM head) and add in quadrature to ~2.5%. Measured RMS
relative differences are larger, 1.8% to 5.0% (tiny, tiny-gpt2, three seeds of each tiny
checkpoint family; attention scores amplify their errors through the softmax), so we allow 6%.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hf_models import _make_model, hf_logits, rewrite_config, save

from lpu.kernels import reference as R
from lpu.kernels.config import PRESETS
from lpu.kernels.reference import Reference
from lpu.kernels.weights import load_weights, random_weights

FP16_REL = 5e-3
INT8_RMS = 0.06
PROMPT = [1, 5, 9, 3, 7, 100, 20]


def _assert_matches_hf(weights, model, n_new: int = 10, folded: bool = False) -> None:
    toks, logits = Reference(weights, folded=folded).decode(PROMPT, n_new)
    want = hf_logits(model, PROMPT + toks[:-1])
    assert logits.shape == want.shape == (len(PROMPT) + n_new - 1, weights.config.vocab_size)
    row_max = np.abs(want).max(axis=1)
    err = np.abs(logits - want).max(axis=1)
    assert (err <= FP16_REL * row_max).all(), (err / row_max).max()
    # greedy tokens equal wherever transformers' top-2 margin exceeds twice the tolerance
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * FP16_REL * row_max
    gen_rows = np.arange(len(PROMPT) - 1, len(PROMPT) - 1 + n_new)
    hf_next = want.argmax(axis=1)
    for k, r in enumerate(gen_rows):
        if clear[r]:
            assert toks[k] == hf_next[r]
    assert clear[gen_rows].sum() >= n_new // 2  # the check is not vacuous


# folded (the LPU compiler's variant) moves one fp16 rounding per norm from the norm's
# output to gamma * x: the same count of roundings in series, so the same tolerance
@pytest.mark.parametrize("fold", [False, True])
def test_llama_with_gqa_matches_transformers(llama_model, llama_dir, fold):
    _assert_matches_hf(load_weights(str(llama_dir)), llama_model, folded=fold)


@pytest.mark.parametrize("fold", [False, True])
def test_gpt2_matches_transformers(gpt2_model, gpt2_dir, fold):
    _assert_matches_hf(load_weights(str(gpt2_dir)), gpt2_model, folded=fold)


@pytest.mark.parametrize("where", ["rope_parameters", "top_level"])
def test_a_non_default_rope_theta_matches_transformers(tmp_path, where):
    model = _make_model("llama", 3, rope_theta=500.0)
    d = save(model, tmp_path / "theta")
    if where == "top_level":
        rewrite_config(d, rope_parameters=None, rope_theta=500.0)
    w = load_weights(str(d))
    assert w.config.rope_theta == 500.0
    _assert_matches_hf(w, model, n_new=6)


def test_a_bf16_checkpoint_matches_transformers_on_the_same_values(llama_model, tmp_path):
    import copy

    import torch

    d = save(llama_model, tmp_path / "bf16", dtype=torch.bfloat16)
    oracle = copy.deepcopy(llama_model)
    with torch.no_grad():
        for p in oracle.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float16).to(torch.float32))
    _assert_matches_hf(load_weights(str(d)), oracle, n_new=6)


@pytest.mark.parametrize("name", ["tiny", "tiny-gpt2"])
def test_int8_weights_stay_close_to_fp16(name, llama_dir):
    w = random_weights(PRESETS[name], 0)
    ids = list(range(3, 40, 3))
    a, b = Reference(w).forward(ids), Reference(w, "int8").forward(ids)
    rms = np.sqrt(((a - b) ** 2).mean(axis=1) / (a ** 2).mean(axis=1))
    assert (rms <= INT8_RMS).all(), rms.max()
    assert rms.min() > 0  # int8 really changed the numbers


def test_int8_of_a_checkpoint_stays_close_to_fp16(llama_dir):
    w = load_weights(str(llama_dir))
    a, b = Reference(w).forward(PROMPT), Reference(w, "int8").forward(PROMPT)
    rms = np.sqrt(((a - b) ** 2).mean(axis=1) / (a ** 2).mean(axis=1))
    assert (rms <= INT8_RMS).all(), rms.max()


def test_decode_rows_are_the_teacher_forced_logits_of_the_fed_tokens():
    ref = Reference(random_weights(PRESETS["tiny"], 0))
    toks, logits = ref.decode([4, 8], 5)
    assert len(toks) == 5 and logits.shape == (6, 256) and logits.dtype == np.float32
    np.testing.assert_array_equal(logits, ref.forward([4, 8] + toks[:-1]))
    assert toks == [int(np.argmax(r)) for r in logits[1:]]


def test_decode_is_bit_identical_run_to_run():
    w = random_weights(PRESETS["tiny-gpt2"], 0)
    a, b = Reference(w).decode([1, 2], 6), Reference(w).decode([1, 2], 6)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


def test_quantize_int8_rounds_half_to_even_and_gives_zero_rows_scale_one():
    w = np.array([[127.0, 0.5, 1.5, -2.5], [0, 0, 0, 0]], np.float32)
    q, s = R.quantize_int8(w)
    assert s.tolist() == [1.0, 1.0]
    assert q.tolist() == [[127, 0, 2, -2], [0, 0, 0, 0]]
    q, s = R.quantize_int8(np.array([[-0.254, 0.127]], np.float16))
    assert q.tolist() == [[-127, 64]] and s.dtype == np.float32


@pytest.mark.parametrize("dtype", ["fp16", "int8"])
@pytest.mark.parametrize("centred", [False, True])
def test_a_folded_norm_is_the_norm_then_the_product(dtype, centred):
    """Linear.folded(fp16(gamma * x), stats) is W norm(x) + bias up to fp16 rounding, which
    the check removes by comparing both in float64 without it."""
    rng = np.random.default_rng(5)
    n, m = 96, 40
    x = (rng.standard_normal(n) * 3 + (1.5 if centred else 0)).astype(np.float32)
    gamma = (1 + 0.2 * rng.standard_normal(n)).astype(np.float32)
    beta = (0.1 * rng.standard_normal(n)).astype(np.float32) if centred else None
    w = (0.2 * rng.standard_normal((m, n))).astype(np.float32)
    bias = (0.1 * rng.standard_normal(m)).astype(np.float32)
    if dtype == "int8":
        q, sc = R.quantize_int8(w)
        lin = R.Linear(q.astype(np.float32), sc, bias)
        wd = q.astype(np.float64) * sc.astype(np.float64)[:, None]
    else:
        lin = R.Linear(w.astype(np.float16).astype(np.float32), None, bias)
        wd = lin.w.astype(np.float64)
    r, mean = R.norm_stats(x, 1e-5, centred)
    xc = x.astype(np.float64) - (float(mean) if centred else 0.0)
    h = xc * float(r) * gamma + (beta if centred else 0.0)
    want = wd @ h + bias
    got = lin.fold(gamma, beta).folded(R.to_fp16(gamma * x), r, mean)
    # the only rounding of note: gamma * x to fp16 (2^-11 relative per element)
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err < 2e-3, err
    # and the folded form is not the plain one by accident: it drops the bias when folding
    assert lin.fold(gamma, beta).bias is None


def test_matmul_rounds_its_input_to_fp16_and_sums_in_fp32():
    x = np.array([1 + 2 ** -12, 3.0], np.float32)  # 1 + 2^-12 rounds to 1.0 in fp16
    w = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
    np.testing.assert_array_equal(R.matmul_fp16(w, x), [1.0, 4.0])
    np.testing.assert_array_equal(R.matmul_fp16(w, x, np.array([2, 1], np.float32),
                                                np.array([0, 0.5], np.float32)), [2.0, 4.5])


def test_norms_follow_their_formulas():
    x = np.array([1.0, -2.0, 3.0, 4.0], np.float32)
    w = np.array([1, 2, 1, 0.5], np.float32)
    want = x / math.sqrt((x ** 2).mean() + 1e-5) * w
    np.testing.assert_allclose(R.rmsnorm(x, w, 1e-5), want, rtol=1e-6)
    b = np.full(4, 0.25, np.float32)
    want = (x - x.mean()) / math.sqrt(x.var() + 1e-5) * w + b
    np.testing.assert_allclose(R.layernorm(x, w, b, 1e-5), want, rtol=1e-6)


def test_rope_rotates_pairs_i_and_i_plus_half_and_keeps_the_norm():
    cos, sin = R.rope_tables(3, 8, 10000.0)
    assert cos.dtype == np.float32 and cos[0] == np.float32(math.cos(3.0))
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 8)
    y = R.apply_rope(x, cos, sin)
    assert y[0, 0] == pytest.approx(1 * math.cos(3) - 5 * math.sin(3), rel=1e-6)
    assert y[0, 4] == pytest.approx(5 * math.cos(3) + 1 * math.sin(3), rel=1e-6)
    assert np.linalg.norm(y) == pytest.approx(np.linalg.norm(x), rel=1e-6)


def test_activations_and_softmax():
    x = np.array([-3.0, -0.5, 0.0, 0.7, 2.0], np.float32)
    np.testing.assert_allclose(R.silu(x), x / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
    g = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x.astype(np.float64) ** 3)))
    np.testing.assert_allclose(R.gelu_tanh(x), g, rtol=1e-6, atol=1e-7)
    p = R.softmax(np.array([1000.0, 1000.0, -np.inf], np.float32))
    np.testing.assert_array_equal(p, [0.5, 0.5, 0.0])


def test_a_llama_with_tied_embeddings_matches_transformers(tmp_path):
    model = _make_model("llama", 4, tie_word_embeddings=True)
    w = load_weights(str(save(model, tmp_path / "tied")))
    assert w.config.tie_embeddings and w.tensors["lm_head.weight"] is w.tensors["tok_emb"]
    _assert_matches_hf(w, model, n_new=6)
