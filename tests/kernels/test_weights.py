"""Canonical weights: seeded random weights, shape validation and SPEC resolution."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from lpu.errors import LpuError
from lpu.kernels.config import PRESETS
from lpu.kernels.weights import (
    ModelWeights,
    expected_shapes,
    load_weights,
    random_weights,
    resolve_model,
    validate,
)


def _digest(w: ModelWeights) -> str:
    h = hashlib.sha256()
    for name in sorted(w.tensors):
        h.update(name.encode())
        h.update(w.tensors[name].tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", ["tiny", "tiny-gpt2"])
def test_random_weights_hold_every_canonical_tensor_as_fp16_of_its_shape(name):
    w = random_weights(PRESETS[name], seed=0)
    validate(w)
    assert set(w.tensors) == set(expected_shapes(w.config))
    assert all(a.dtype == np.float16 for a in w.tensors.values())


def test_tied_lm_head_is_the_embedding_array_itself():
    w = random_weights(PRESETS["tiny-gpt2"], seed=0)
    assert w.tensors["lm_head.weight"] is w.tensors["tok_emb"]
    untied = random_weights(PRESETS["tiny"], seed=0)
    assert untied.tensors["lm_head.weight"] is not untied.tensors["tok_emb"]


def test_same_seed_gives_the_same_bits_and_another_seed_other_bits():
    a, b = random_weights(PRESETS["tiny"], 7), random_weights(PRESETS["tiny"], 7)
    assert _digest(a) == _digest(b)
    assert _digest(random_weights(PRESETS["tiny"], 8)) != _digest(a)


def test_random_weights_are_the_same_bits_in_another_process():
    code = ("import hashlib; from lpu.kernels.weights import load_weights; w = "
            "load_weights('tiny', seed=3); h = hashlib.sha256()\n"
            "for n in sorted(w.tensors): h.update(n.encode()); h.update(w.tensors[n].tobytes())\n"
            "print(h.hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == _digest(random_weights(PRESETS["tiny"], 3))


def test_norm_weights_sit_near_one_and_matrices_near_zero():
    w = random_weights(PRESETS["tiny"], 0)
    norm = w.tensors["layers.0.attn_norm.weight"].astype(np.float32)
    q = w.tensors["layers.0.q.weight"].astype(np.float32)
    assert abs(norm.mean() - 1) < 0.01 and norm.std() < 0.05
    assert abs(q.mean()) < 0.01 and 0.1 < q.std() < 0.2  # 0.04 * sqrt(768 / 64) = 0.139


def test_validate_names_a_missing_tensor():
    w = random_weights(PRESETS["tiny"], 0)
    del w.tensors["layers.1.up.weight"]
    with pytest.raises(LpuError, match=r"layers\.1\.up\.weight.*missing.*\(128, 64\)"):
        validate(w)


def test_validate_names_a_tensor_of_the_wrong_shape_with_both_shapes():
    w = random_weights(PRESETS["tiny"], 0)
    w.tensors["layers.0.k.weight"] = np.zeros((64, 64), np.float16)
    with pytest.raises(LpuError, match=r"layers\.0\.k\.weight.*\(64, 64\).*expected \(32, 64\)"):
        validate(w)


def test_validate_refuses_float32_tensors():
    w = random_weights(PRESETS["tiny"], 0)
    w.tensors["final_norm.weight"] = w.tensors["final_norm.weight"].astype(np.float32)
    with pytest.raises(LpuError, match="final_norm.weight.*float32"):
        validate(w)


def test_resolve_model_reads_a_preset_or_a_config_only_directory(tmp_path):
    assert resolve_model("gpt2-small") is PRESETS["gpt2-small"]
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
           "vocab_size": 128256, "rope_theta": 500000.0, "max_position_embeddings": 8192}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    got = resolve_model(str(tmp_path))  # no weights there: only the shape is read
    assert (got.d_model, got.n_kv_heads, got.rope_theta, got.head_dim) == (4096, 8, 5e5, 128)
    assert got.param_count() == PRESETS["llama-3-8b"].param_count()


def test_an_unknown_spec_lists_the_presets():
    with pytest.raises(LpuError, match="neither a preset nor a directory") as e:
        resolve_model("no-such-model")
    assert "tiny" in str(e.value)


def test_random_weights_are_refused_above_two_billion_parameters():
    with pytest.raises(LpuError, match=r"llama-2-7b.*6\.\de9 parameters"):
        load_weights("llama-2-7b")


def test_load_weights_of_a_preset_is_its_seeded_random_weights():
    assert _digest(load_weights("tiny-gpt2", seed=5)) == _digest(
        random_weights(PRESETS["tiny-gpt2"], 5))
