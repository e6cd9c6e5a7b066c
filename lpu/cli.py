"""The `lpu` command line: one console script with argparse subcommands.

Each subcommand lives in lpu/commands/<name>.py with `register(subparsers)`; this module only
wires them together and turns LpuError into one `error:` line and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from lpu import __version__
from lpu.errors import EXIT_BAD_INPUT, EXIT_USAGE, LpuError

# Order is the order `lpu --help` lists them: the pipeline, then the stories.
COMMANDS = ["isa", "info", "asm", "disasm", "run", "compile", "decode", "gpu", "compare", "demo",
            "trace"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage; keep it one line
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lpu", description="Emulate a Groq-style LPU beside an HBM-bound GPU.")
    parser.add_argument("--version", action="version", version=f"lpu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"lpu.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"lpu.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except LpuError as e:
        print(e.report(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug of ours: still one line, unless LPU_DEBUG asks for the trace
        if os.environ.get("LPU_DEBUG"):
            raise
        print(f"error: internal error ({type(e).__name__}: {e}); rerun with LPU_DEBUG=1 and "
              "report it", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
