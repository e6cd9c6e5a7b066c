"""`lpu isa`: the instruction set reference, rendered from the ISA table.

A rich table grouped by unit on the terminal; `--markdown` prints docs/isa.md to stdout.
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("isa", help="print the ISA reference (from the ISA table)",
                       description="Print the instruction set: syntax, operand fields, opcode, "
                                   "latency with its source, semantics.")
    p.add_argument("--markdown", action="store_true",
                   help="print the markdown of docs/isa.md instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpu.isa import docs

    if args.markdown:
        sys.stdout.write(docs.markdown())
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for unit, group in docs.rows():
        t = Table(title=docs.UNIT_TITLES[unit], title_justify="left", show_lines=False)
        for col in ("syntax", "operands", "opcode", "latency", "queues", "semantics"):
            t.add_column(col, overflow="fold")
        sources: list[str] = []  # latency sources as numbered notes under the table
        for syn, ops, opc, lat, src, sem, where in group:
            if src not in sources:
                sources.append(src)
            t.add_row(syn, ops, opc, f"{lat} [{sources.index(src) + 1}]", where, sem)
        console.print(t)
        for k, src in enumerate(sources, 1):
            console.print(f"  [{k}] {src}", markup=False, highlight=False)
    return 0
