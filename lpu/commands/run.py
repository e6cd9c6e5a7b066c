"""`lpu run PROG.lpx`: execute a program image on a chip preset.

Inputs fill named data segments from .npy files, dumps write segments out; --json prints the
interfaces.md object; a broken timing rule exits 3 with cycle, queue, instruction and line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lpu.errors import LpuError, UsageError


def _pairs(items: list[str] | None, flag: str) -> list[tuple[str, Path]]:
    out = []
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"{flag} wants NAME=FILE.npy, got {item!r}")
        out.append((name, Path(path)))
    return out


def load_npy(path: Path) -> np.ndarray:
    """Load a .npy without ever running code (no pickle), with a clear error."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise LpuError("no such file", file=str(path)) from None
    except (ValueError, OSError, EOFError) as e:
        raise LpuError(f"not a readable .npy array ({e})", file=str(path)) from None


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write atomically, so a failure leaves nothing behind."""
    import io

    from lpu.files import atomic_write

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write(path, buf.getvalue())


def run(args: argparse.Namespace) -> int:
    from lpu.isa.image import load
    from lpu.machine import Machine

    inputs = _pairs(args.input, "--input")
    dumps = _pairs(args.dump, "--dump")
    if args.max_cycles is not None and args.max_cycles <= 0:
        raise UsageError("--max-cycles must be positive")
    program = load(args.program)
    if args.chip and args.chip != program.chip:
        raise LpuError(f"{args.program} was assembled for chip {program.chip}, not {args.chip}",
                       hint=f"re-assemble it with lpu asm --chip {args.chip}")
    machine = Machine(program)
    for name, _ in inputs:
        program.segment(name)  # an unknown name fails before any file is read
    for name, path in inputs:
        machine.load(name, load_npy(path))
    for name, _ in dumps:
        program.segment(name)  # fail before running if a dump names nothing
    result = machine.run(max_cycles=args.max_cycles)
    if result.stopped_at is not None:
        raise LpuError(f"stopped at cycle {result.stopped_at} (--max-cycles); the program's "
                       f"schedule is {result.schedule.length} cycles long", file=args.program,
                       hint="raise --max-cycles; no output was written")
    for name, path in dumps:
        save_npy(path, machine.dump(name))
    if args.trace:
        from lpu.traces.record import lpu_trace

        lpu_trace(result, program).save(args.trace)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        from rich.console import Console

        con = Console(stderr=False, highlight=False)
        con.print(f"[bold]{program.source}[/] on [bold]{result.chip.name}[/]: "
                  f"{result.cycles} cycles = {result.time_us:.3f} µs at "
                  f"{result.chip.clock_ghz} GHz, {result.instructions} instructions")
        units = ", ".join(f"{k} {v}" for k, v in sorted(result.units().items()))
        con.print(f"busy cycles per unit: {units}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="execute a program image on a chip",
                       description="Execute a .lpx program image cycle by cycle.")
    p.add_argument("program", metavar="PROG.lpx", help="a program image (lpu asm, lpu compile -o)")
    p.add_argument("--chip", help="chip preset (must match the image)")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="fill data segment NAME from a .npy file (repeatable)")
    p.add_argument("--dump", action="append", metavar="NAME=FILE.npy",
                   help="write data segment NAME after the run (repeatable)")
    p.add_argument("--trace", metavar="FILE", help="write a trace of every event")
    p.add_argument("--max-cycles", type=int, metavar="N", help="stop after N cycles")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=run)
