"""Lowering a decode step to the kernel sequence of a real engine."""

from __future__ import annotations

import pytest

from lpu.gpu.lowering import K_ALLREDUCE, K_GEMV, lower_decode_step
from lpu.kernels.config import preset


def test_llama_step_has_the_engine_kernel_sequence():
    prog = lower_decode_step(preset("llama-2-7b"))
    layer0 = [n for n in prog.names if n.startswith("l0.")]
    assert layer0 == ["l0.attn_norm", "l0.qkv", "l0.rope_kv_write", "l0.attention",
                      "l0.attn_combine", "l0.o", "l0.residual_mlp_norm", "l0.gate_up",
                      "l0.silu_mul", "l0.down", "l0.residual_norm"]
    assert prog.names[0] == "embed" and prog.names[-2:] == ["lm_head", "argmax"]
    # about 9 kernels a layer, ~290 a token for a 32-layer model
    assert 280 <= len(prog) <= 360


def test_weights_read_per_step_equal_the_matrix_parameters():
    cfg = preset("llama-2-7b")
    prog = lower_decode_step(cfg)
    assert prog.weight_bytes == pytest.approx(cfg.weight_bytes_per_token("fp16"))
    assert prog.kv_bytes_per_pos == pytest.approx(cfg.kv_bytes_per_token("fp16"))
    assert lower_decode_step(cfg, weights_dtype="int8").weight_bytes == pytest.approx(
        cfg.weight_bytes_per_token("int8"))


def test_tensor_parallel_splits_weights_and_adds_two_allreduces_a_layer():
    cfg = preset("llama-2-70b")
    one = lower_decode_step(cfg)
    four = lower_decode_step(cfg, gpus=4)
    assert four.weight_bytes == pytest.approx(one.weight_bytes / 4)
    n_ar = int((four.kind == K_ALLREDUCE).sum())
    assert n_ar == 2 * cfg.n_layers + 1  # + the logits all-gather
    assert int((four.kind == K_GEMV).sum()) == int((one.kind == K_GEMV).sum())


def test_gpt2_step_uses_a_fused_qkv_with_bias_and_gelu():
    prog = lower_decode_step(preset("gpt2-small"))
    assert "l0.gelu" in prog.names and "l0.fc" in prog.names
    assert "l0.rope_kv_write" not in prog.names


def test_a_model_that_does_not_split_is_refused():
    with pytest.raises(ValueError, match="does not split over 3 GPUs"):
        lower_decode_step(preset("llama-2-7b"), gpus=3)
