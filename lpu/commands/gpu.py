"""`lpu gpu`: per-token decode latency of a model on a simulated HBM-bound GPU.

Timing only (a preset or a config.json is enough, no weights needed): the decode step is lowered
to the kernels a real engine launches and run through the event-driven GPU model.
"""

from __future__ import annotations

import argparse
import json
import sys

from lpu.errors import UsageError
from lpu.gpu.api import WEIGHT_DTYPES, GpuResult, simulate
from lpu.gpu.presets import GPUS
from lpu.gpu.variation import Variation


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gpu", help="per-token decode latency on a simulated GPU (timing model)",
        description="Simulate batch decode of a model on an HBM-bound GPU: kernel sequence, "
                    "memory system, launch gaps and sources of variation, all seeded.")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="a preset name (llama-2-7b, ...) or a directory with config.json")
    p.add_argument("--gpu", default="h100-sxm", metavar="NAME",
                   help=f"GPU preset: {', '.join(GPUS)} (default h100-sxm)")
    p.add_argument("--gpus", type=int, default=1, metavar="N",
                   help="tensor-parallel GPUs linked by NVLink (default 1)")
    p.add_argument("--weights-dtype", default="fp16", choices=WEIGHT_DTYPES,
                   help="bytes per weight streamed from HBM (default fp16)")
    p.add_argument("--batch", type=int, default=1, metavar="B", help="sequences (default 1)")
    p.add_argument("--context", type=int, default=128, metavar="L",
                   help="cached positions at the first step; grows by one a token (default 128)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--graph", dest="graph", action="store_true", default=True,
                      help="launch the step as a CUDA graph (default)")
    mode.add_argument("--eager", dest="graph", action="store_false",
                      help="launch kernel by kernel from the host")
    p.add_argument("--load", action="store_true",
                   help="other requests share the GPU (continuous batching, seeded)")
    p.add_argument("--no-variation", action="store_true",
                   help="switch every source of variation off (the model's mean behaviour)")
    p.add_argument("--tokens", type=int, default=128, metavar="N", help="tokens (default 128)")
    p.add_argument("--runs", type=int, default=1, metavar="R", help="repeated runs (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the simulated variation (default 0)")
    p.add_argument("--trace", metavar="FILE", help="write the kernels and token latencies")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for what in ("gpus", "batch", "tokens", "runs"):
        if getattr(args, what) < 1:
            raise UsageError(f"--{what} must be at least 1")
    if args.context < 0:
        raise UsageError("--context must be >= 0")
    res = simulate(args.model, args.gpu, batch=args.batch, context=args.context,
                   tokens=args.tokens, runs=args.runs, seed=args.seed, graph=args.graph,
                   load=args.load, weights_dtype=args.weights_dtype, gpus=args.gpus,
                   variation=Variation.off() if args.no_variation else None)
    if args.trace:
        from lpu.traces.record import gpu_trace

        gpu_trace(res).save(args.trace)
    if args.json:
        json.dump(res.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        _summary(res)
    return 0


def _summary(res: GpuResult) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(stderr=True)
    t = Table(title=f"{res.model} on {res.gpus}x {res.gpu} ({res.weights_dtype}, batch "
                    f"{res.batch}, {'CUDA graph' if res.graph else 'eager'}"
                    f"{', under load' if res.load else ''})", show_header=False)
    t.add_row("tokens x runs", f"{res.per_token_ms.shape[1]} x {res.per_token_ms.shape[0]}")
    t.add_row("p50 / p99 per token", f"{res.p50_ms:.3f} / {res.p99_ms:.3f} ms")
    t.add_row("p99 / p50", f"{res.p99_ms / res.p50_ms:.3f}")
    t.add_row("roofline bound", f"{res.roofline_ms.mean():.3f} ms "
                                f"({res.bytes_per_token.mean() / 1e9:.2f} GB per step per GPU)")
    t.add_row("MBU", f"{res.mbu * 100:.1f} % of peak HBM bandwidth")
    t.add_row("kernels per step", str(sum(1 for k in res.kernels if k.dur_ns >= 0)))
    t.add_row("run spread", f"{res.run_spread_ms:.4f} ms")
    con.print(t)
