"""GPU presets: every hardware number the GPU model uses, each with its source.

The presets are data. A preset that lacks a source for any parameter fails at import, so no
number can enter the timing model without saying where it came from (or that it is assumed, and why).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class GpuPreset:
    """One GPU model. Units are in the field names (bytes, B/s, ns, us, FLOP/s)."""

    name: str
    sms: int                       # streaming multiprocessors
    clock_ghz: float               # boost SM clock
    hbm_bytes: float               # HBM capacity
    hbm_peak_bw: float             # B/s, datasheet peak
    hbm_stream_bw: float           # B/s, best measured streaming kernel (includes refresh)
    hbm_channels: int              # 64-bit (pseudo-)channels: bus width / 64
    hbm_latency_ns: float          # unloaded pointer-chase latency from an SM
    hbm_trefi_ns: float            # refresh interval per channel
    hbm_trfc_ns: float             # refresh cycle time (channel busy)
    l2_bytes: float                # L2 capacity
    l2_bw: float                   # B/s, L2 hit bandwidth
    l2_latency_ns: float           # L2 hit latency
    flops_bf16: float              # dense tensor-core FLOP/s (fp16/bf16 inputs, fp32 accumulate)
    flops_fp8: float               # dense FP8 tensor FLOP/s; 0 where the GPU has none
    flops_int8: float              # dense INT8 tensor OP/s
    gemm_efficiency: float         # achieved / peak for a large GEMM
    flops_fp32: float              # CUDA-core fp32 FLOP/s (norms, softmax, elementwise)
    launch_eager_us: float         # back-to-back tiny kernels in one stream, per kernel
    launch_graph_us: float         # the same inside a CUDA graph, per kernel
    nvlink_bw: float               # B/s per direction per GPU
    allreduce_latency_us: float    # small-message intra-node all-reduce, fixed part
    step_overhead_us: float        # per decode step: graph launch, token copy to host, scheduling
    ctas_per_sm: int               # resident CTAs per SM of a decode GEMV kernel
    cta_bytes_in_flight: int       # outstanding load bytes per GEMV CTA (Little's law)


# Where each number comes from. Keys are field names; "assumed: ..." marks a number we could not
# measure or find, with the reason for the value chosen.
_GPU_BENCHES = "te42kyfo/gpu-benches"
_SMALL_KERNELS = (f"{_GPU_BENCHES} gpu-small-kernels: back-to-back tiny kernels, stream vs CUDA "
                  "graph")
_GEMV_KERNEL = ("FITTED (the model's only end-to-end fit, see docs/validation.md): bytes in "
                "flight of the decode GEMV kernels engines launch, 2 CTAs/SM x 3 KiB = 6 KiB "
                "per SM (e.g. 192 threads x one 16-byte load each), fitted on the gpt-fast "
                "Llama-2-7B bf16 A100 row; a property of the engines' kernels, so the same "
                "value on every GPU")
_STEP = ("assumed: cudaGraphLaunch (~2.5 us) + sampled-token copy to host and stream sync "
         "(~5 us) + engine bookkeeping; no public per-step figure found")
_ALLREDUCE = ("assumed: one-shot intra-node all-reduce of a few KiB over NVLink; NCCL/custom "
              "all-reduce small-message latencies are reported at 5-10 us")

SOURCES: dict[str, dict[str, str]] = {
    "h100-sxm": {
        "sms": "NVIDIA H100 Tensor Core GPU datasheet / Hopper whitepaper: 132 SMs (SXM5)",
        "clock_ghz": "NVIDIA Hopper whitepaper: 1.98 GHz max boost (SXM5)",
        "hbm_bytes": "NVIDIA H100 datasheet: 80 GB HBM3",
        "hbm_peak_bw": "NVIDIA H100 datasheet: 3.35 TB/s (SXM5)",
        "hbm_stream_bw": "deepseek-ai/FlashMLA README: 3000 GB/s memory-bound decode on H800 "
                         "SXM5 (same HBM3 subsystem), ~90 % of peak",
        "hbm_channels": "derived: 5120-bit bus (datasheet) / 64-bit HBM3 channel (JESD238)",
        "hbm_latency_ns": f"{_GPU_BENCHES} gpu-latency: 658 cycles at 1755 MHz on H100 PCIe; "
                          "assumed the same for SXM5",
        "hbm_trefi_ns": "CMU-SAFARI/ramulator2 HBM3 preset: tREFI 3.9 us (not measured on H100)",
        "hbm_trfc_ns": "assumed: middle of ramulator2's HBM3 tRFC range 160-450 ns",
        "l2_bytes": "NVIDIA Hopper whitepaper: 50 MB L2 (two 25 MB partitions)",
        "l2_bw": "assumed: ~5.5 TB/s; Hopper's L2 bandwidth is not in the whitepaper; below "
                 "the A100 whitepaper's 5,120 B/clk x 1.98 GHz = 10 TB/s, as measured L2 "
                 "streams fall well short of that product (not verified on H100)",
        "l2_latency_ns": "assumed: ~150 ns L2 hit latency (a few hundred cycles; not verified); "
                         "only matters for L2-resident kernels",
        "flops_bf16": "NVIDIA H100 datasheet: 1979 TFLOPS with sparsity, halved for dense",
        "flops_fp8": "NVIDIA H100 datasheet: 3958 TFLOPS with sparsity, halved for dense",
        "flops_int8": "NVIDIA H100 datasheet: 3958 TOPS with sparsity, halved for dense",
        "gemm_efficiency": "public torch.matmul measurements: ~790 of 989 TFLOPS for a large "
                           "bf16 GEMM",
        "flops_fp32": "NVIDIA H100 datasheet: 67 TFLOPS FP32 (SXM5)",
        "launch_eager_us": f"{_SMALL_KERNELS}: ~2.5 us per kernel (measured on H200, same Hopper "
                           "front end)",
        "launch_graph_us": f"{_SMALL_KERNELS}: ~1.3 us per kernel (H200); Hazy Research "
                           "'No Bubbles' blog: ~1.3 us per kernel in a CUDA graph on H100",
        "nvlink_bw": "NVIDIA H100 datasheet: NVLink 900 GB/s total, 450 GB/s per direction",
        "allreduce_latency_us": _ALLREDUCE,
        "step_overhead_us": _STEP,
        "ctas_per_sm": _GEMV_KERNEL,
        "cta_bytes_in_flight": _GEMV_KERNEL,
    },
    "a100-80gb": {
        "sms": "NVIDIA A100 whitepaper: 108 SMs",
        "clock_ghz": "NVIDIA A100 datasheet: 1.41 GHz boost",
        "hbm_bytes": "NVIDIA A100 datasheet: 80 GB HBM2e",
        "hbm_peak_bw": "NVIDIA A100 datasheet: 2,039 GB/s (SXM4 80 GB)",
        "hbm_stream_bw": f"{_GPU_BENCHES} gpu-stream: ~1.76 TB/s triad on A100 80GB (~86 %)",
        "hbm_channels": "derived: 5120-bit bus (datasheet) / 64-bit HBM2e pseudo-channel",
        "hbm_latency_ns": f"{_GPU_BENCHES} gpu-latency: 572 cycles at 1410 MHz",
        "hbm_trefi_ns": "JEDEC HBM2 tREFI 3.9 us (as the HBM3 preset in CMU-SAFARI/ramulator2)",
        "hbm_trfc_ns": "assumed: middle of ramulator2's HBM3 tRFC range 160-450 ns",
        "l2_bytes": "NVIDIA A100 whitepaper: 40 MB L2 (two 20 MB partitions)",
        "l2_bw": "NVIDIA A100 whitepaper: 5,120 B/clk L2 read bandwidth x 1.41 GHz = 7.2 TB/s, "
                 "derated (assumed) to ~4.5 TB/s as measured L2 streams fall short of it",
        "l2_latency_ns": "assumed: ~200 cycles L2 hit latency at 1.41 GHz (not verified); "
                         "only matters for L2-resident kernels",
        "flops_bf16": "NVIDIA A100 datasheet: 312 TFLOPS dense BF16",
        "flops_fp8": "A100 has no FP8 tensor cores (datasheet); FP8 weights are upcast",
        "flops_int8": "NVIDIA A100 datasheet: 624 TOPS dense INT8",
        "gemm_efficiency": "assumed: same achieved/peak ratio as the H100 large-GEMM measurement",
        "flops_fp32": "NVIDIA A100 datasheet: 19.5 TFLOPS FP32",
        "launch_eager_us": f"{_SMALL_KERNELS}: ~2.7 us per kernel on A100",
        "launch_graph_us": f"{_SMALL_KERNELS}: ~1.4 us per kernel on A100",
        "nvlink_bw": "NVIDIA A100 datasheet: NVLink 600 GB/s total, 300 GB/s per direction",
        "allreduce_latency_us": _ALLREDUCE,
        "step_overhead_us": _STEP,
        "ctas_per_sm": _GEMV_KERNEL,
        "cta_bytes_in_flight": _GEMV_KERNEL,
    },
    "h200": {
        "sms": "NVIDIA H200 datasheet: GH100 with 132 SMs (as H100 SXM5)",
        "clock_ghz": "NVIDIA H200 datasheet: 1.98 GHz boost (as H100 SXM5)",
        "hbm_bytes": "NVIDIA H200 datasheet: 141 GB HBM3e",
        "hbm_peak_bw": "NVIDIA H200 datasheet: 4.8 TB/s",
        "hbm_stream_bw": "assumed: the H100's measured streaming fraction (~90 %) of 4.8 TB/s",
        "hbm_channels": "derived: 6144-bit bus (6 HBM3e stacks) / 64-bit channel",
        "hbm_latency_ns": "assumed: as H100 (gpu-benches gpu-latency, H100 PCIe)",
        "hbm_trefi_ns": "CMU-SAFARI/ramulator2 HBM3 preset: tREFI 3.9 us",
        "hbm_trfc_ns": "assumed: middle of ramulator2's HBM3 tRFC range 160-450 ns",
        "l2_bytes": "NVIDIA H200 datasheet: 50 MB L2 (GH100)",
        "l2_bw": "assumed: as H100",
        "l2_latency_ns": "assumed: as H100",
        "flops_bf16": "NVIDIA H200 datasheet: 1979 TFLOPS with sparsity, halved for dense",
        "flops_fp8": "NVIDIA H200 datasheet: 3958 TFLOPS with sparsity, halved for dense",
        "flops_int8": "NVIDIA H200 datasheet: 3958 TOPS with sparsity, halved for dense",
        "gemm_efficiency": "assumed: as H100 (public torch.matmul measurements)",
        "flops_fp32": "NVIDIA H200 datasheet: 67 TFLOPS FP32",
        "launch_eager_us": f"{_SMALL_KERNELS}: ~2.5 us per kernel on H200",
        "launch_graph_us": f"{_SMALL_KERNELS}: ~1.3 us per kernel on H200",
        "nvlink_bw": "NVIDIA H200 datasheet: NVLink 900 GB/s total, 450 GB/s per direction",
        "allreduce_latency_us": _ALLREDUCE,
        "step_overhead_us": _STEP,
        "ctas_per_sm": _GEMV_KERNEL,
        "cta_bytes_in_flight": _GEMV_KERNEL,
    },
}

GPUS: dict[str, GpuPreset] = {
    "h100-sxm": GpuPreset(
        name="h100-sxm", sms=132, clock_ghz=1.98, hbm_bytes=80e9, hbm_peak_bw=3.35e12,
        hbm_stream_bw=3.0e12, hbm_channels=80, hbm_latency_ns=375.0, hbm_trefi_ns=3900.0,
        hbm_trfc_ns=260.0, l2_bytes=50e6, l2_bw=5.5e12, l2_latency_ns=150.0,
        flops_bf16=989e12, flops_fp8=1979e12, flops_int8=1979e12, gemm_efficiency=0.8,
        flops_fp32=67e12, launch_eager_us=2.5, launch_graph_us=1.3, nvlink_bw=450e9,
        allreduce_latency_us=8.0, step_overhead_us=10.0, ctas_per_sm=2,
        cta_bytes_in_flight=3072),
    "a100-80gb": GpuPreset(
        name="a100-80gb", sms=108, clock_ghz=1.41, hbm_bytes=80e9, hbm_peak_bw=2.039e12,
        hbm_stream_bw=1.76e12, hbm_channels=80, hbm_latency_ns=405.0, hbm_trefi_ns=3900.0,
        hbm_trfc_ns=260.0, l2_bytes=40e6, l2_bw=4.5e12, l2_latency_ns=142.0,
        flops_bf16=312e12, flops_fp8=0.0, flops_int8=624e12, gemm_efficiency=0.8,
        flops_fp32=19.5e12, launch_eager_us=2.7, launch_graph_us=1.4, nvlink_bw=300e9,
        allreduce_latency_us=8.0, step_overhead_us=10.0, ctas_per_sm=2,
        cta_bytes_in_flight=3072),
    "h200": GpuPreset(
        name="h200", sms=132, clock_ghz=1.98, hbm_bytes=141e9, hbm_peak_bw=4.8e12,
        hbm_stream_bw=4.3e12, hbm_channels=96, hbm_latency_ns=375.0, hbm_trefi_ns=3900.0,
        hbm_trfc_ns=260.0, l2_bytes=50e6, l2_bw=5.5e12, l2_latency_ns=150.0,
        flops_bf16=989e12, flops_fp8=1979e12, flops_int8=1979e12, gemm_efficiency=0.8,
        flops_fp32=67e12, launch_eager_us=2.5, launch_graph_us=1.3, nvlink_bw=450e9,
        allreduce_latency_us=8.0, step_overhead_us=10.0, ctas_per_sm=2,
        cta_bytes_in_flight=3072),
}

ALIASES = {"h100": "h100-sxm", "a100": "a100-80gb", "h200-sxm": "h200"}


def _check_table() -> None:
    """Every preset has a source for every parameter, and sane values (runs at import)."""
    names = [f.name for f in fields(GpuPreset) if f.name != "name"]
    for key, gpu in GPUS.items():
        if key != gpu.name:
            raise ValueError(f"GPU preset key {key!r} != its name {gpu.name!r}")
        src = SOURCES.get(key, {})
        missing = [n for n in names if not src.get(n)]
        if missing:
            raise ValueError(f"GPU preset {key!r}: no source for {', '.join(missing)}")
        extra = set(src) - set(names)
        if extra:
            raise ValueError(f"GPU preset {key!r}: sources for unknown fields {sorted(extra)}")
        if not 0 < gpu.hbm_stream_bw <= gpu.hbm_peak_bw:
            raise ValueError(f"GPU preset {key!r}: streaming bandwidth must be in (0, peak]")
        if gpu.hbm_trfc_ns >= gpu.hbm_trefi_ns:
            raise ValueError(f"GPU preset {key!r}: tRFC must be shorter than tREFI")


_check_table()


def gpu_preset(name: str | GpuPreset) -> GpuPreset:
    """Look up a GPU preset by name (or pass one through), listing the known names on a miss."""
    if isinstance(name, GpuPreset):
        return name
    key = ALIASES.get(name, name)
    try:
        return GPUS[key]
    except KeyError:
        raise KeyError(f"unknown GPU {name!r}; known: {', '.join(GPUS)}") from None


def describe(gpu: GpuPreset) -> list[tuple[str, object, str]]:
    """(parameter, value, source) rows for `lpu info --gpu` and docs/gpu.md."""
    src = SOURCES[gpu.name]
    return [(f.name, getattr(gpu, f.name), src[f.name]) for f in fields(GpuPreset)
            if f.name != "name"]


def markdown() -> str:
    """The parameter table and the sources, as docs/gpu.md section 7 holds them."""
    names = [f.name for f in fields(GpuPreset) if f.name != "name"]
    lines = ["| parameter | " + " | ".join(GPUS) + " |", "|---|" + "---|" * len(GPUS)]
    for n in names:
        lines.append(f"| `{n}` | " + " | ".join(f"{getattr(g, n):g}" for g in GPUS.values())
                     + " |")
    lines.append("")
    for key in GPUS:
        lines.append(f"**{key}**\n")
        lines.extend(f"- `{n}`: {SOURCES[key][n]}" for n in names)
        lines.append("")
    return "\n".join(lines)
