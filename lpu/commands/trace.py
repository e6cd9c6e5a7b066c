"""`lpu trace view|stats|export FILE`: look at a trace written with --trace.

A thin loop around lpu.traces: load (with a clear error for a bad file), then render, count
or convert.
"""

from __future__ import annotations

import argparse
import json

from lpu.errors import UsageError


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from lpu.traces.format import load

    trace = load(args.file)
    if args.action == "view":
        from lpu.traces.view import render

        con = Console(width=args.width) if args.width else Console()
        con.print(render(trace, args.start, args.end, con.width))
    elif args.action == "stats":
        from lpu.traces.stats import stats, stats_table

        s = stats(trace)
        if args.json:
            print(json.dumps(s))
        else:
            Console().print(stats_table(s))
    else:
        if args.format != "chrome":
            raise UsageError("only --format chrome is supported")
        if not args.output:
            raise UsageError("export needs -o OUT.json")
        from lpu.traces.export import export_chrome

        n = export_chrome(trace, args.output)
        print(f"{args.output}: {n:,} events (open in ui.perfetto.dev)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trace", help="view, count or export a trace",
                       description="Look at a trace written with --trace.")
    tsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = tsub.add_parser("view", help="terminal timeline")
    v.add_argument("file", metavar="FILE", help="a trace written with --trace")
    v.add_argument("--from", dest="start", type=int, metavar="CYCLE", help="first cycle shown")
    v.add_argument("--to", dest="end", type=int, metavar="CYCLE", help="last cycle shown")
    v.add_argument("--width", type=int, metavar="COLS", help="columns (default: the terminal's)")
    s = tsub.add_parser("stats", help="busy cycles, bytes, kernels")
    s.add_argument("file", metavar="FILE", help="a trace written with --trace")
    s.add_argument("--json", action="store_true", help="one JSON object on stdout")
    e = tsub.add_parser("export", help="Chrome/Perfetto JSON")
    e.add_argument("file", metavar="FILE", help="a trace written with --trace")
    e.add_argument("--format", default="chrome",
                   help="chrome: Chrome trace-event JSON, which Perfetto opens (default)")
    e.add_argument("-o", "--output", metavar="OUT.json", help="where to write it")
    for q in (v, s, e):
        q.set_defaults(func=run, action=q.prog.split()[-1])
    p.set_defaults(func=None)
