"""Variation: seeded, switchable, honestly sized (steady when idle, a long tail under load)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np

from lpu.gpu.api import simulate
from lpu.gpu.variation import Variation, draw
from lpu.kernels.config import ModelConfig

OFF = Variation.off()
# ~59 MB of fp16 weights a step: just over the H100's 50 MB L2, so part stays resident
NEAR_L2 = ModelConfig("near-l2", "llama", 4096, 1024, 2, 8, 8, 128, 2816, 256)


def test_same_seed_gives_the_same_numbers():
    a = simulate("llama-2-7b", tokens=32, runs=3, seed=7, load=True)
    b = simulate("llama-2-7b", tokens=32, runs=3, seed=7, load=True)
    assert np.array_equal(a.per_token_ms, b.per_token_ms)


def test_different_seeds_give_different_numbers():
    a = simulate("llama-2-7b", tokens=16, seed=1)
    b = simulate("llama-2-7b", tokens=16, seed=2)
    assert not np.array_equal(a.per_token_ms, b.per_token_ms)


def test_with_every_source_off_runs_are_identical():
    r = simulate("llama-2-7b", tokens=16, runs=4, variation=OFF)
    assert r.run_spread_ms == 0.0


def test_each_source_alone_adds_variation_and_can_be_switched_off():
    for src in ("jitter", "clock", "refresh", "l2"):
        var = dataclasses.replace(OFF, **{src: True})
        # L2 capacity only matters for a model near the L2 size
        model = NEAR_L2 if src == "l2" else "llama-2-7b"
        r = simulate(model, tokens=8, runs=4, variation=var)
        assert r.run_spread_ms > 0.0, src


def test_switching_a_source_off_keeps_its_mean_effect():
    on = simulate("llama-2-7b", tokens=64, runs=4, variation=dataclasses.replace(
        OFF, refresh=True)).mean_ms
    off = simulate("llama-2-7b", tokens=64, runs=4, variation=OFF).mean_ms
    assert abs(on / off - 1) < 0.002


def test_idle_batch1_latency_is_steady():
    for gpu in ("h100-sxm", "a100-80gb"):
        r = simulate("llama-2-7b", gpu, tokens=128, runs=4)
        assert r.p99_ms / r.p50_ms <= 1.05


def test_load_gives_a_long_p99_tail():
    r = simulate("llama-2-7b", tokens=512, runs=2, load=True)
    idle = simulate("llama-2-7b", tokens=64)
    assert r.p99_ms / r.p50_ms >= 2.0
    assert r.p50_ms > idle.p50_ms  # others' tokens and KV caches share every step
    assert r.others is not None and r.others.mean() > 4


def test_switching_one_source_off_does_not_shift_the_others_draws():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    a = draw(Variation(), rng_a, 2, 3, 10, 3900.0)
    b = draw(dataclasses.replace(Variation(), clock=False, refresh=False), rng_b, 2, 3, 10,
             3900.0)
    assert np.array_equal(a.gap, b.gap) and np.array_equal(a.l2cap, b.l2cap)
    assert np.all(b.clock == 1.0) and np.all(b.phase == 0.0)


def test_the_same_seed_gives_the_same_json_in_a_fresh_process():
    cmd = [sys.executable, "-m", "lpu.cli", "gpu", "--model", "llama-2-7b", "--tokens", "16",
           "--seed", "3", "--load", "--json"]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    here = simulate("llama-2-7b", tokens=16, seed=3, load=True)
    assert out["per_token_ms"] == [float(x) for x in here.per_token_ms[0]]
