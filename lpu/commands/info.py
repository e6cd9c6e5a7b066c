"""`lpu info`: a chip preset's parameters with their sources, and the figures derived from them.

`--json` prints one object (params, sources, derived) so a student can check the paper's math.
"""

from __future__ import annotations

import argparse
import importlib
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
    try:
        presets = importlib.import_module("lpu.gpu.presets")
    except ModuleNotFoundError:
        raise LpuError("GPU presets arrive with lpu.gpu (not built yet)") from None
    for attr in ("get_gpu", "get"):
        fn = getattr(presets, attr, None)
        if callable(fn):
            g = fn(name)
            break
    else:
        table = getattr(presets, "GPUS", None) or getattr(presets, "PRESETS", {})
        if name not in table:
            raise LpuError(f"unknown GPU {name!r}; known: {', '.join(table)}")
        g = table[name]
    if hasattr(g, "__dataclass_fields__"):
        from dataclasses import asdict

        return {"gpu": name, **{k: v for k, v in asdict(g).items()}}
    return {"gpu": name, "preset": str(g)}


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
        g = Table(title=f"GPU {args.gpu}", title_justify="left")
        g.add_column("field")
        g.add_column("value", overflow="fold")
        for k, v in info["gpu"].items():
            g.add_row(k, str(v))
        con.print(g)
    return 0
