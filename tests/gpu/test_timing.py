"""The timing model: roofline sanity, L2 residency, growth with context and batch, TP."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lpu.errors import LpuError
from lpu.gpu.api import simulate
from lpu.gpu.lowering import lower_decode_step
from lpu.gpu.presets import GPUS
from lpu.gpu.timing import gemv_time_ns
from lpu.gpu.variation import Variation
from lpu.kernels.config import ModelConfig

H100 = GPUS["h100-sxm"]
OFF = Variation.off()
# Deeply pipelined kernel, as FlashMLA-class hand-tuned kernels: 64 KiB in flight per SM.
TUNED = 64 * 1024


@pytest.mark.parametrize("gpu", list(GPUS.values()), ids=list(GPUS))
def test_huge_gemv_approaches_but_never_exceeds_peak_hbm_bandwidth(gpu):
    rows, cols = 65536, 32768  # 4 GiB of fp16 weights
    bw = rows * cols * 2 / (gemv_time_ns(gpu, rows, cols, bytes_in_flight_per_sm=TUNED) * 1e-9)
    assert bw <= gpu.hbm_peak_bw
    assert bw >= 0.85 * gpu.hbm_peak_bw


def test_engine_gemv_is_bounded_by_littles_law():
    # 6 KiB in flight per SM x 132 SMs over a 375 ns round trip: ~2.1 TB/s at most
    rows, cols = 65536, 32768
    bw = rows * cols * 2 / (gemv_time_ns(H100, rows, cols) * 1e-9)
    little = H100.sms * H100.ctas_per_sm * H100.cta_bytes_in_flight / (
        H100.hbm_latency_ns * 1e-9)
    assert 0.9 * little <= bw <= little


def test_tiny_gemv_is_latency_bound():
    t = gemv_time_ns(H100, 64, 64, bytes_in_flight_per_sm=TUNED)
    assert t >= H100.hbm_latency_ns
    assert 64 * 64 * 2 / (t * 1e-9) < 0.01 * H100.hbm_peak_bw


def test_gemv_from_l2_is_faster_than_from_hbm():
    assert gemv_time_ns(H100, 4096, 4096, l2_hit=1.0) < gemv_time_ns(H100, 4096, 4096)


def test_l2_resident_model_beats_the_hbm_bound():
    # ~17 M int8 weights (17 MB) fit in the 50 MB L2: after warm-up they stream from L2
    cfg = ModelConfig("l2-fit", "llama", 4096, 1024, 2, 8, 8, 128, 2816, 256)
    r = simulate(cfg, H100, weights_dtype="int8", tokens=4, variation=OFF)
    prog = lower_decode_step(cfg, weights_dtype="int8")
    gemv_ns = sum(k.dur_ns for k in r.kernels if k.kind == "gemv")
    assert prog.weight_bytes < H100.l2_bytes
    assert gemv_ns * 1e-9 < prog.weight_bytes / H100.hbm_peak_bw
    hit = sum(k.l2_hit_bytes for k in r.kernels if k.kind == "gemv")
    assert hit == pytest.approx(prog.weight_bytes, rel=0.01)


def test_large_model_weights_miss_l2_every_token():
    r = simulate("llama-2-7b", H100, tokens=3, variation=OFF)
    gemv = [k for k in r.kernels if k.kind == "gemv"]
    assert sum(k.l2_hit_bytes for k in gemv) < 0.01 * sum(k.bytes for k in gemv)


def test_step_never_beats_the_roofline():
    for model, dtype in (("llama-2-7b", "fp16"), ("llama-3-8b", "int8"), ("gpt2-xl", "fp16")):
        r = simulate(model, H100, weights_dtype=dtype, tokens=8, batch=4, variation=OFF)
        assert np.all(r.per_token_ms[0] > r.roofline_ms)


def test_latency_never_falls_as_the_kv_cache_grows():
    # Flash-decoding CTAs each take a 64-position chunk and a wave lasts as long as a full
    # chunk, so latency is a staircase: flat within a chunk, one step up per new chunk. The
    # 1e-9 ms allowance is float64 rounding of the summed nanosecond timeline, nothing more.
    for model, gpu, batch in (("llama-2-7b", H100, 1), ("llama-3-8b", "a100-80gb", 8)):
        r = simulate(model, gpu, batch=batch, context=1, tokens=1500, variation=OFF)
        ms = r.per_token_ms[0]
        assert np.all(np.diff(ms) > -1e-9)
        assert np.all(ms[256:] > ms[:-256])  # every 256 more positions cost more
    short = simulate("llama-2-7b", H100, context=128, tokens=4, variation=OFF).mean_ms
    long = simulate("llama-2-7b", H100, context=8000, tokens=4, variation=OFF).mean_ms
    assert long > short


def test_latency_grows_with_batch_and_turns_compute_bound():
    ms = [simulate("llama-2-7b", H100, batch=b, tokens=2, context=16, variation=OFF).mean_ms
          for b in (1, 4, 16, 64, 256, 1024)]
    assert all(a <= b for a, b in itertools.pairwise(ms))
    # per-sequence cost falls while memory-bound, then flattens once compute-bound
    per_seq = [m / b for m, b in zip(ms, (1, 4, 16, 64, 256, 1024))]
    assert per_seq[0] / per_seq[2] > 10
    assert per_seq[4] / per_seq[5] < 4


def test_eager_launch_is_slower_than_a_graph_for_a_small_model():
    g = simulate("tiny", H100, tokens=4, variation=OFF).mean_ms
    e = simulate("tiny", H100, tokens=4, graph=False, variation=OFF).mean_ms
    assert e > 1.3 * g


def test_more_tensor_parallel_gpus_cut_latency_of_a_70b_model():
    ms = [simulate("llama-2-70b", "a100-80gb", gpus=n, tokens=2, variation=OFF).mean_ms
          for n in (2, 4, 8)]
    assert ms[0] > ms[1] > ms[2]


def test_a_model_too_big_for_the_gpu_is_refused():
    with pytest.raises(LpuError, match="needs .* GB per GPU"):
        simulate("llama-2-70b", H100, tokens=1)


def test_kernel_trace_is_ordered_and_covers_the_step():
    r = simulate("llama-2-7b", H100, tokens=2, variation=OFF)
    launched = [k for k in r.kernels if k.dur_ns >= 0]
    starts = [k.start_ns for k in launched]
    assert starts == sorted(starts)
    end = launched[-1].start_ns + launched[-1].dur_ns
    assert end < r.per_token_ms[0, 0] * 1e6
    # qkv, o, gate_up, down in each of 32 layers, and the LM head
    assert sum(1 for k in launched if k.kind == "gemv") == 4 * 32 + 1
