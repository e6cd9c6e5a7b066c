"""`lpu compare --model SPEC`: the same greedy decode on the emulated LPU and the GPU model.

R runs each; per-token latency p50/p99/min/max, tokens/s, the spread between runs, whether the
outputs were bit-identical across runs and whether both sides chose the same tokens.
"""

from __future__ import annotations

import argparse
import json
import sys


def run(args: argparse.Namespace) -> int:
    from lpu.kernels.weights import load_weights
    from lpu.story import compare
    from lpu.storyview import render_compare

    weights = load_weights(args.model, seed=args.seed)
    kw = {"chip": args.chip, "gpu": args.gpu, "tokens": args.tokens, "runs": args.runs,
          "seed": args.seed, "weights_dtype": args.weights_dtype, "load": args.load}
    if not args.json and sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=True) as prog:
            task = prog.add_task("running both machines", total=1)
            out = compare(weights, **kw, progress=lambda i, n: prog.update(task, total=n,
                                                                           completed=i))
    else:
        out = compare(weights, **kw)
    if args.trace:
        from lpu.traces.record import compare_trace

        compare_trace(out).save(args.trace)
    if args.json:
        print(json.dumps(out))
        return 0
    from rich.console import Console

    Console().print(render_compare(out))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="LPU vs GPU per-token latency, side by side",
                       description="Decode the same tokens on the emulated LPU and the GPU model.")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="a checkpoint directory (config.json + *.safetensors) or a preset name (tiny, gpt2-small, ...)")
    p.add_argument("--chip", default="tsp-v1", help="chip preset: tsp-v1 or mini (default tsp-v1)")
    p.add_argument("--gpu", default="h100-sxm", help="GPU preset: h100-sxm (default) or a100-80gb")
    p.add_argument("--tokens", type=int, default=8, metavar="N", help="tokens to decode (default 8)")
    p.add_argument("--runs", type=int, default=3, metavar="R",
                   help="repeat the decode R times on each machine (default 3)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of a preset's random weights and of the GPU's variation")
    p.add_argument("--weights-dtype", choices=["fp16", "int8"], default="fp16",
                   help="weights on both machines (default fp16)")
    p.add_argument("--load", action="store_true", help="other requests share the GPU")
    p.add_argument("--trace", metavar="FILE", help="write both token timelines")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=run)
