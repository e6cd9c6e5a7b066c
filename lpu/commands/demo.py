"""`lpu demo`: the whole story on an embedded default model, no arguments.

A small Llama-shaped model with seeded weights decodes on the emulated LPU and on the H100
model, three runs each; one screen shows the latencies, their spread and the memory wall.
"""

from __future__ import annotations

import argparse
import sys

DEMO_MODEL = "demo"
DEMO_TOKENS = 8
DEMO_RUNS = 3


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from lpu.kernels.weights import load_weights
    from lpu.story import compare
    from lpu.storyview import render_compare

    con = Console()
    with Progress(transient=True, console=Console(stderr=True),
                  disable=not sys.stderr.isatty()) as prog:
        task = prog.add_task("compiling and running both machines", total=1)
        weights = load_weights(DEMO_MODEL, seed=0)
        out = compare(weights, tokens=DEMO_TOKENS, runs=DEMO_RUNS, seed=0,
                      prompt_ids=[1, 2, 3],
                      progress=lambda i, n: prog.update(task, total=n, completed=i))
    con.print(render_compare(out, demo=True, at_scale=at_scale()))
    return 0


def at_scale(model: str = "llama-2-7b", gpu: str = "h100-sxm") -> dict:
    """The memory wall at a real model size: the GPU model's timing (no weights needed) and
    how many chips the LPU would need to hold the weights in SRAM."""
    from lpu.gpu.api import simulate
    from lpu.kernels.config import preset
    from lpu.kernels.runtime import chips_needed_for

    cfg = preset(model)
    g = simulate(cfg, gpu, tokens=32, runs=1, seed=0)
    return {"model": model, "gpu": gpu, "gpu_p50_ms": g.p50_ms,
            "bytes_per_token": float(g.bytes_per_token.mean()), "peak_bw": float(g.peak_bw),
            "chips_fp16": chips_needed_for(cfg, "fp16"), "chips_int8": chips_needed_for(cfg, "int8")}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole story on an embedded default model",
                       description="LPU vs GPU on an embedded model: latency, spread, memory wall.")
    p.set_defaults(func=run)
