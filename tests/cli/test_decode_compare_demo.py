"""The story commands keep their interfaces.md contracts: fields, exit codes, one error line.

These run the real thing on the small presets: compile, emulate, and the GPU model beside it.
"""

import json

import pytest

from lpu.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_decode_json_has_the_contract_fields_and_is_deterministic(capsys):
    code, out, _ = run(capsys, "decode", "--model", "tiny", "--prompt-ids", "1,2",
                       "--max-new-tokens", "3", "--json")
    assert code == 0
    d = json.loads(out)
    for key in ("model", "chip", "chips", "prompt_ids", "tokens", "cycles_per_token",
                "latency_us_per_token", "deterministic"):
        assert key in d
    assert d["prompt_ids"] == [1, 2] and len(d["tokens"]) == 3
    # one step per consumed position: 2 prompt tokens + 3 generated - the last
    assert len(d["cycles_per_token"]) == 4 == len(d["latency_us_per_token"])
    assert d["deterministic"] is True
    # attention grows with the position: the last step is longer than the first. (Not every
    # step than the one before: the list scheduler places each operation at its first free
    # slot, and one more position can shift the rest a few cycles either way: tiny at
    # positions 0-3 took 1,286 / 1,324 / 1,320 / 1,331 cycles, each what its schedule said.)
    assert d["cycles_per_token"][-1] > d["cycles_per_token"][0]


def test_decode_twice_gives_the_same_tokens_and_cycles(capsys):
    args = ("decode", "--model", "tiny-gpt2", "--prompt-ids", "5", "--max-new-tokens", "3",
            "--json")
    a = json.loads(run(capsys, *args)[1])
    b = json.loads(run(capsys, *args)[1])
    assert a == b


def test_logits_out_has_one_row_per_consumed_position(capsys, tmp_path):
    import numpy as np

    f = tmp_path / "logits.npy"
    code, _, _ = run(capsys, "decode", "--model", "tiny", "--prompt-ids", "1,2,3",
                     "--max-new-tokens", "1", "--logits-out", str(f), "--json")
    assert code == 0
    lg = np.load(f)
    assert lg.shape == (3, 256) and lg.dtype == np.float32


@pytest.mark.parametrize("argv,needle", [
    (("decode", "--model", "tiny", "--prompt-ids", "1,x"), "comma-separated"),
    (("decode", "--model", "tiny", "--prompt-ids", "9999"), "outside the vocabulary"),
    (("decode", "--model", "llama-2-7b"), "tsp-v1 chips"),
    (("compile", "--model", "no-such-model"), "neither a preset"),
])
def test_bad_input_is_one_error_line(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code in (1, 2) and out == ""
    assert err.startswith("error: ") and needle in err and "Traceback" not in err


def test_compile_json_reports_memory_plan_and_bound(capsys):
    code, out, _ = run(capsys, "compile", "--model", "tiny", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["chips"] == 1 and d["predicted_cycles"] > 0
    mem = d["memory"]
    assert mem["used_bytes"] + mem["headroom_bytes"] == mem["sram_bytes"]
    assert set(mem["regions"]) >= {"weights", "kv_cache"}
    assert d["roofline"]["binding"] in d["roofline"]["terms_cycles"]
    # tiny on tsp-v1: one head vector, so the plane path starts at 56 attended positions
    assert (d["attention_scores"], d["attention_mxm_from"]) == ("vxm", 56)


def test_compile_says_when_attention_scores_run_on_a_plane(capsys):
    code, out, _ = run(capsys, "compile", "--model", "tiny", "--chip", "mini", "--pos", "5",
                       "--context", "8", "--json")
    assert code == 0
    d = json.loads(out)
    assert (d["attention_scores"], d["attention_mxm_from"]) == ("mxm", 4)
    assert d["context"] == 8


def test_compile_reports_the_context_it_reserved_within_the_models_limit(capsys):
    # tiny holds 64 positions (its config's limit): a larger --context reserves those 64
    code, out, _ = run(capsys, "compile", "--model", "tiny", "--chip", "mini", "--context",
                       "1000", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["context"] == 64
    assert d["memory"]["regions"]["kv_cache"] == json.loads(run(
        capsys, "compile", "--model", "tiny", "--chip", "mini", "--context", "64",
        "--json")[1])["memory"]["regions"]["kv_cache"]


def test_compare_json_shows_a_deterministic_lpu_beside_the_gpu(capsys):
    code, out, _ = run(capsys, "compare", "--model", "tiny", "--tokens", "3", "--runs", "2",
                       "--json")
    assert code == 0
    d = json.loads(out)
    assert d["runs"] == 2 and isinstance(d["tokens_match"], bool)
    for side in ("lpu", "gpu"):
        for key in ("p50_ms", "p99_ms", "run_spread_ms", "bit_identical"):
            assert key in d[side]
    assert d["lpu"]["run_spread_ms"] == 0.0 and d["lpu"]["bit_identical"] is True
    assert d["tokens_match"] is True
