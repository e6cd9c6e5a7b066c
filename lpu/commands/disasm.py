"""`lpu disasm`: print an .lpx image as assembly that reassembles to identical bytes."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("disasm", help="disassemble an .lpx image",
                       description="Disassemble; `lpu asm` on the output gives identical bytes.")
    p.add_argument("image", metavar="PROG.lpx", help="a program image")
    p.add_argument("-o", "--output", metavar="OUT.s", help="default: stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lpu.assembler import disassemble
    from lpu.assembler.disasm import disassemble_to_file
    from lpu.isa.image import load

    program = load(args.image)
    if not args.output:
        sys.stdout.write(disassemble(program))
        return 0
    disassemble_to_file(program, args.output)
    return 0
