"""`lpu info`: a chip preset's parameters with their sources, and the figures derived from them.

`--json` prints one object (params, sources, derived) so a student can check the paper's math.
"""

from __future__ import annotations

import argparse
import json

from lpu.errors import LpuError


def register(sub) -> None:
    p = sub.add_parser("info", help="chip (and GPU) parameters and derived figures",
                       description="Print a chip preset: parameters with sources and derived "
                                   "figures (SRAM bytes, bandwidths, peak ops/s).")
    p.add_argument("--chip", default="tsp-v1", help="chip preset (tsp-v1, mini)")
    p.add_argument("--gpu", default=None, help="also print a GPU preset (needs lpu.gpu)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=run)


def chip_info(name: str) -> dict:
    from lpu.isa.chips import get_chip

    chip = get_chip(name)
    return {"chip": chip.name, "description": chip.description,
            "params": {k: p.value for k, p in chip.params.items()},
            "sources": {k: p.source for k, p in chip.params.items()},
            "derived": chip.derived(),
            "queues": [q.name for q in chip.queues]}


def gpu_info(name: str) -> dict:
    """A GPU preset's parameters, each with its source."""
    from lpu.gpu.presets import describe, gpu_preset

    try:
        g = gpu_preset(name)
    except KeyError as e:
        raise LpuError(str(e.args[0])) from None
    rows = describe(g)
    return {"gpu": g.name, "params": {k: v for k, v, _ in rows},
            "sources": {k: src for k, _, src in rows}}


def run(args: argparse.Namespace) -> int:
    info = chip_info(args.chip)
    if args.gpu:
        info["gpu"] = gpu_info(args.gpu)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"{info['chip']}: {info['description']}", title_justify="left")
    t.add_column("parameter")
    t.add_column("value", justify="right")
    t.add_column("source", overflow="fold")
    for k, v in info["params"].items():
        t.add_row(k, str(v), info["sources"][k])
    con.print(t)
    d = Table(title="derived", title_justify="left")
    d.add_column("figure")
    d.add_column("value", justify="right")
    for k, v in info["derived"].items():
        d.add_row(k, f"{v:,.3f}" if isinstance(v, float) else f"{v:,}")
    con.print(d)
    con.print(f"{len(info['queues'])} queues: " + " ".join(info["queues"]))
    if args.gpu:
        gi = info["gpu"]
        g = Table(title=f"GPU {gi['gpu']}", title_justify="left")
        g.add_column("parameter")
        g.add_column("value", justify="right")
        g.add_column("source", overflow="fold")
        for k, v in gi["params"].items():
            g.add_row(k, f"{v:,.6g}" if isinstance(v, float) else str(v), gi["sources"][k])
        con.print(g)
    return 0
