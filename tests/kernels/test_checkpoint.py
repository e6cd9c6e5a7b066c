"""Hugging Face checkpoint directories: config.json fields, safetensors names, dtypes, shards
and the errors a user gets for a bad directory."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hf_models import rewrite_config, save

from lpu.errors import LpuError
from lpu.kernels.checkpoint import read_config
from lpu.kernels.weights import load_weights

torch = pytest.importorskip("torch")
st = pytest.importorskip("safetensors.numpy")


def _param(model, name: str) -> np.ndarray:
    return dict(model.named_parameters())[name].detach().float().numpy()


def _copy(src, tmp_path):
    dst = tmp_path / "ckpt"
    shutil.copytree(src, dst)
    return dst


def test_llama_config_fields_become_the_model_config(llama_dir):
    cfg = read_config(llama_dir)
    assert cfg.family == "llama"
    assert (cfg.vocab_size, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads,
            cfg.head_dim, cfg.d_ff, cfg.max_positions) == (128, 64, 2, 4, 2, 16, 128, 64)
    assert cfg.norm_eps == 1e-6 and cfg.rope_theta == 10000.0 and not cfg.tie_embeddings


def test_llama_tensors_are_renamed_and_rounded_once_to_fp16(llama_model, llama_dir):
    w = load_weights(str(llama_dir))
    t = w.tensors
    pairs = {"tok_emb": "model.embed_tokens.weight",
             "layers.1.k.weight": "model.layers.1.self_attn.k_proj.weight",
             "layers.0.down.weight": "model.layers.0.mlp.down_proj.weight",
             "layers.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
             "layers.1.mlp_norm.weight": "model.layers.1.post_attention_layernorm.weight",
             "final_norm.weight": "model.norm.weight", "lm_head.weight": "lm_head.weight"}
    for ours, hf in pairs.items():
        assert t[ours].dtype == np.float16
        np.testing.assert_array_equal(t[ours], _param(llama_model, hf).astype(np.float16))
    assert t["layers.1.k.weight"].shape == (32, 64)  # GQA: 2 kv heads of 16


def test_gpt2_conv1d_matrices_are_transposed_and_the_head_is_tied(gpt2_model, gpt2_dir):
    w = load_weights(str(gpt2_dir))
    t = w.tensors
    assert w.config.family == "gpt2" and w.config.tie_embeddings
    assert t["lm_head.weight"] is t["tok_emb"]
    np.testing.assert_array_equal(t["layers.0.qkv.weight"],
                                  _param(gpt2_model, "transformer.h.0.attn.c_attn.weight").T
                                  .astype(np.float16))
    np.testing.assert_array_equal(t["layers.1.proj.weight"],
                                  _param(gpt2_model, "transformer.h.1.mlp.c_proj.weight").T
                                  .astype(np.float16))
    np.testing.assert_array_equal(t["pos_emb"],
                                  _param(gpt2_model, "transformer.wpe.weight").astype(np.float16))
    np.testing.assert_array_equal(t["final_norm.bias"],
                                  _param(gpt2_model, "transformer.ln_f.bias").astype(np.float16))
    assert t["layers.1.fc.weight"].shape == (256, 64)


@pytest.mark.parametrize("where", ["top_level", "rope_parameters"])
def test_rope_theta_is_read_from_either_place(llama_dir, tmp_path, where):
    d = _copy(llama_dir, tmp_path)
    if where == "top_level":
        rewrite_config(d, rope_parameters=None, rope_theta=500.0)
    else:
        rewrite_config(d, rope_parameters={"rope_theta": 500.0, "rope_type": "default"})
    assert read_config(d).rope_theta == 500.0


@pytest.mark.parametrize("change, message", [
    ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "rope scaling type 'linear'"),
    ({"rope_parameters": {"rope_theta": 1e4, "rope_type": "llama3"}}, "'llama3'"),
    ({"attention_bias": True}, "attention_bias"),
    ({"mlp_bias": True}, "mlp_bias"),
    ({"model_type": "bert"}, "model_type 'bert' is not supported"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
])
def test_unsupported_config_is_refused_naming_the_field(llama_dir, tmp_path, change, message):
    d = _copy(llama_dir, tmp_path)
    rewrite_config(d, **change)
    with pytest.raises(LpuError, match=message) as e:
        load_weights(str(d))
    assert str(d / "config.json") in str(e.value)


def test_a_llama_shaped_mistral_checkpoint_is_accepted(llama_dir, tmp_path):
    d = _copy(llama_dir, tmp_path)
    rewrite_config(d, model_type="mistral", sliding_window=32)
    w = load_weights(str(d))
    assert w.config.family == "llama"
    assert w.config.max_positions == 32  # full attention is exact only inside the window


def test_bad_json_reports_line_and_column(llama_dir, tmp_path):
    d = _copy(llama_dir, tmp_path)
    (d / "config.json").write_text('{\n  "model_type": "llama",\n  "hidden_size": 64,,\n}')
    with pytest.raises(LpuError) as e:
        load_weights(str(d))
    assert (e.value.file, e.value.line, e.value.col) == (str(d / "config.json"), 3, 21)  # the second comma
    assert "invalid JSON" in str(e.value)


def test_bf16_checkpoint_is_widened_exactly_then_rounded_to_fp16(llama_model, tmp_path):
    d = save(llama_model, tmp_path / "bf16", dtype=torch.bfloat16)
    header_len = int.from_bytes((d / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((d / "model.safetensors").read_bytes()[8:8 + header_len])
    assert header["model.norm.weight"]["dtype"] == "BF16"
    w = load_weights(str(d))
    for ours, hf in (("layers.0.q.weight", "model.layers.0.self_attn.q_proj.weight"),
                     ("final_norm.weight", "model.norm.weight")):
        p = dict(llama_model.named_parameters())[hf].detach()
        want = p.to(torch.bfloat16).to(torch.float32).numpy().astype(np.float16)
        np.testing.assert_array_equal(w.tensors[ours], want)


def test_sharded_checkpoint_loads_the_same_tensors(llama_model, llama_dir, tmp_path):
    d = save(llama_model, tmp_path / "sharded", max_shard_size="40KB")
    assert (d / "model.safetensors.index.json").is_file()
    assert len(list(d.glob("model-*.safetensors"))) > 1
    a, b = load_weights(str(d)), load_weights(str(llama_dir))
    assert set(a.tensors) == set(b.tensors)
    for name in a.tensors:
        np.testing.assert_array_equal(a.tensors[name], b.tensors[name])


def _rewrite_tensors(d, edit) -> None:
    f = d / "model.safetensors"
    tensors = st.load_file(str(f))
    edit(tensors)
    f.unlink()
    st.save_file(tensors, str(f))


def test_a_missing_tensor_is_named_with_its_expected_shape(llama_dir, tmp_path):
    d = _copy(llama_dir, tmp_path)
    _rewrite_tensors(d, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(LpuError, match=r"'layers\.1\.mlp\.up_proj\.weight'.*missing.*"
                                       r"\(128, 64\)"):
        load_weights(str(d))


def test_a_mis_shaped_tensor_names_file_tensor_and_both_shapes(gpt2_dir, tmp_path):
    d = _copy(gpt2_dir, tmp_path)

    def edit(t):
        t["transformer.h.0.attn.c_attn.weight"] = np.zeros((192, 64), np.float32)  # not [in, out]

    _rewrite_tensors(d, edit)
    with pytest.raises(LpuError, match=r"model\.safetensors: tensor 'transformer\.h\.0\.attn\."
                                       r"c_attn\.weight' has shape \(192, 64\), expected "
                                       r"\(64, 192\)"):
        load_weights(str(d))


def test_only_a_pickle_checkpoint_is_refused_without_unpickling(llama_dir, tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    shutil.copy(llama_dir / "config.json", d)
    (d / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(LpuError, match="never unpickle") as e:
        load_weights(str(d))
    assert "safetensors" in str(e.value)


def test_a_directory_without_config_json_is_named(tmp_path):
    with pytest.raises(LpuError, match="no config.json"):
        load_weights(str(tmp_path))


def test_a_truncated_safetensors_file_is_refused_naming_it(llama_dir, tmp_path):
    d = _copy(llama_dir, tmp_path)
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(LpuError, match="model.safetensors"):
        load_weights(str(d))
