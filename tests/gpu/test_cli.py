"""`lpu gpu` on the command line: JSON contract, errors as one line, config.json models."""

from __future__ import annotations

import json

from lpu.cli import main
from lpu.gpu.api import resolve_config
from lpu.kernels.config import preset

FIELDS = {"model", "gpu", "gpus", "weights_dtype", "batch", "per_token_ms", "p50_ms", "p99_ms",
          "mbu"}


def run(capsys, *argv):
    code = main(["gpu", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_contract_fields(capsys):
    code, out, _ = run(capsys, "--model", "llama-2-7b", "--tokens", "8", "--json")
    assert code == 0
    d = json.loads(out)
    assert FIELDS <= set(d)
    assert len(d["per_token_ms"]) == 8 and d["gpu"] == "h100-sxm" and d["batch"] == 1
    assert 0 < d["mbu"] < 1 and d["p99_ms"] >= d["p50_ms"]


def test_human_summary_goes_to_stderr(capsys):
    code, out, err = run(capsys, "--model", "tiny", "--tokens", "2", "--eager")
    assert code == 0 and out == ""
    assert "p50 / p99" in err and "eager" in err


def test_unknown_model_is_one_error_line(capsys):
    code, _, err = run(capsys, "--model", "no-such-model")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: model 'no-such-model'")
    assert "presets:" in err


def test_bad_counts_are_usage_errors(capsys):
    code, _, err = run(capsys, "--model", "tiny", "--tokens", "0")
    assert code == 2 and "--tokens" in err


def test_timing_from_a_config_json_alone(capsys, tmp_path):
    cfg = {"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096,
           "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "intermediate_size": 14336, "rope_parameters": {"rope_theta": 500000.0}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    code, out, _ = run(capsys, "--model", str(tmp_path), "--tokens", "4", "--json",
                       "--gpu", "a100-80gb", "--weights-dtype", "int8")
    assert code == 0
    d = json.loads(out)
    assert d["gpu"] == "a100-80gb" and d["weights_dtype"] == "int8"


def test_broken_config_json_names_the_file(capsys, tmp_path):
    (tmp_path / "config.json").write_text("{ not json")
    code, _, err = run(capsys, "--model", str(tmp_path))
    assert code == 1 and "config.json" in err and "Traceback" not in err


def test_tensor_parallel_70b_runs(capsys):
    code, out, _ = run(capsys, "--model", "llama-2-70b", "--gpus", "4", "--tokens", "2",
                       "--json")
    assert code == 0 and json.loads(out)["gpus"] == 4


def test_config_json_variants_resolve_to_the_same_shape(tmp_path):
    llama = {"model_type": "llama", "vocab_size": 128256, "hidden_size": 4096,
             "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
             "intermediate_size": 14336, "rope_theta": 500000.0,
             "max_position_embeddings": 8192}
    (tmp_path / "config.json").write_text(json.dumps(llama))
    cfg = resolve_config(str(tmp_path))
    ref = preset("llama-3-8b")
    assert (cfg.d_model, cfg.n_kv_heads, cfg.d_ff, cfg.rope_theta) == (
        ref.d_model, ref.n_kv_heads, ref.d_ff, ref.rope_theta)
    gpt2 = {"model_type": "gpt2", "vocab_size": 50257, "n_embd": 768, "n_layer": 12,
            "n_head": 12, "n_positions": 1024}
    (tmp_path / "config.json").write_text(json.dumps(gpt2))
    cfg = resolve_config(str(tmp_path))
    assert cfg.matmul_params() == preset("gpt2-small").matmul_params()


def test_runs_without_variation_are_identical_in_json(capsys):
    code, out, _ = run(capsys, "--model", "llama-2-7b", "--tokens", "4", "--runs", "3",
                       "--no-variation", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["per_token_ms_runs"]) == 3
    assert d["run_spread_ms"] == 0.0
    assert d["per_token_ms_runs"][0] == d["per_token_ms_runs"][2] == d["per_token_ms"]
