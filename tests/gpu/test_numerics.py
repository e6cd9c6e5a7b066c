"""GPU numerics: the shared recipe in a GPU reduction order agrees with a plain numpy decoder."""

from __future__ import annotations

import numpy as np
import pytest

from lpu.gpu.numerics import GpuNumerics, decode_runs, greedy_decode, round_bf16
from tests.gpu import naive
from tests.gpu.fixtures import WIDE, random_weights, tiny_gpt2, tiny_llama

PROMPT = [3, 1, 4, 1, 5]
# Tolerance on logits vs the naive decoder, relative to the largest logit: both sum fp32
# products in different orders, and an activation that lands on an fp16 rounding boundary can
# round one way in one order and the other way in the other (one fp16 ulp, 2^-11).
REL_TOL = 2e-3


@pytest.mark.parametrize("make", [tiny_llama, tiny_gpt2, lambda: random_weights(WIDE)],
                         ids=["llama", "gpt2", "wide"])
@pytest.mark.parametrize("int8", [False, True], ids=["fp16", "int8"])
def test_tokens_equal_the_naive_decoder_and_logits_are_close(make, int8):
    w = make()
    ids, logits = greedy_decode(w, PROMPT, 12, weights_dtype="int8" if int8 else "fp16")
    ref_ids, ref_logits = naive.decode(w, PROMPT, 12, int8=int8)
    assert ids == ref_ids
    assert logits.shape == (len(PROMPT) + 11, w.config.vocab_size)
    assert np.abs(logits - ref_logits).max() <= REL_TOL * np.abs(ref_logits).max()


def test_tree_order_is_deterministic_to_the_bit():
    w = random_weights(WIDE)
    a = greedy_decode(w, PROMPT, 6)[1]
    b = greedy_decode(w, PROMPT, 6)[1]
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_split_k_atomics_change_low_bits_run_to_run_but_not_tokens():
    w = random_weights(WIDE)
    ids1, l1 = greedy_decode(w, PROMPT, 8, split_k_atomics=True, seed=1)
    ids2, l2 = greedy_decode(w, PROMPT, 8, split_k_atomics=True, seed=2)
    _ids3, l3 = greedy_decode(w, PROMPT, 8, split_k_atomics=True, seed=1)
    assert ids1 == ids2
    assert not np.array_equal(l1, l2)
    assert np.abs(l1 - l2).max() <= 1e-3 * np.abs(l1).max()
    assert np.array_equal(l1, l3)  # the same seed replays the same arrival order


def test_bf16_inputs_round_like_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(10000).astype(np.float32) * 100
    x[:3] = [1.00390625, 1.01171875, -2.0000001]  # ties and near-ties
    ref = torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy()
    assert np.array_equal(round_bf16(x), ref)


def test_bf16_mode_decodes_the_same_tokens_on_a_well_separated_model():
    w = tiny_gpt2()
    assert greedy_decode(w, PROMPT, 8, dtype="bf16")[0] == greedy_decode(w, PROMPT, 8)[0]


def test_gemv_reduction_matches_a_float64_dot_closely():
    rng = np.random.default_rng(1)
    wm = rng.standard_normal((64, 1000)).astype(np.float16).astype(np.float32)
    x = rng.standard_normal(1000).astype(np.float32)
    y = GpuNumerics().matvec(wm, x)
    exact = wm.astype(np.float64) @ x.astype(np.float16).astype(np.float64)
    assert np.abs(y - exact).max() < 1e-4 * np.abs(exact).max() + 1e-5


def test_fp8_numerics_are_refused_as_timing_only():
    with pytest.raises(ValueError, match="timing-only"):
        greedy_decode(tiny_llama(), PROMPT, 2, weights_dtype="fp8")


def test_repeated_runs_with_atomics_agree_on_tokens_but_not_on_bits():
    out = decode_runs(random_weights(WIDE), PROMPT, 6, runs=3, seed=0)
    assert out.tokens_identical and not out.bit_identical
    tree = decode_runs(random_weights(WIDE), PROMPT, 6, runs=3, split_k_atomics=False)
    assert tree.tokens_identical and tree.bit_identical
