"""`lpu disasm`: print an .lpx image as assembly that reassembles to identical bytes."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from lpu.errors import LpuError


def register(sub) -> None:
    p = sub.add_parser("disasm", help="disassemble an .lpx image",
                       description="Disassemble; `lpu asm` on the output gives identical bytes.")
    p.add_argument("image", metavar="PROG.lpx")
    p.add_argument("-o", "--output", metavar="OUT.s", help="default: stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpu.assembler import disassemble
    from lpu.isa.image import load

    text = disassemble(load(args.image))
    if not args.output:
        sys.stdout.write(text)
        return 0
    folder = os.path.dirname(os.path.abspath(args.output))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".disasm-", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.output)
    except OSError as e:
        raise LpuError(f"{args.output}: cannot write ({e.strerror})") from None
    return 0
