"""`lpu demo`: the whole story on an embedded default model, no arguments.

A small Llama-shaped model with seeded weights decodes on the emulated LPU and on the H100
model, three runs each; one screen shows the latencies, their spread and the memory wall.
"""

from __future__ import annotations

import argparse
import sys

DEMO_MODEL = "demo"
DEMO_TOKENS = 12
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
    con.print(render_compare(out, demo=True))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole story on an embedded default model",
                       description="LPU vs GPU on an embedded model: latency, spread, memory wall.")
    p.set_defaults(func=run)
