"""`lpu asm`: assemble a source file into an .lpx program image.

Every error is reported as `file:line:col: error: message` with the line and a caret; exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys


def register(sub) -> None:
    p = sub.add_parser("asm", help="assemble SRC.s into an .lpx image",
                       description="Assemble (syntax: docs/assembly.md).")
    p.add_argument("source", metavar="SRC.s", help="assembly source (docs/assembly.md)")
    p.add_argument("-o", "--output", metavar="OUT.lpx", help="default: SRC with .lpx")
    p.add_argument("--chip", default=None, help="chip preset (a .chip line must agree)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpu.assembler import assemble_file
    from lpu.isa.image import save

    prog = assemble_file(args.source, chip=args.chip)
    out = args.output or os.path.splitext(args.source)[0] + ".lpx"
    save(prog, out)
    print(f"{out}: {prog.n_instructions} instructions in {len(prog.queues)} queues, "
          f"{len(prog.segments)} data segments, chip {prog.chip}", file=sys.stderr)
    return 0
