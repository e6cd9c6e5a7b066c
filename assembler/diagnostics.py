"""Assembler diagnostics: `file:line:col: error: message`, the source line and a caret.

AssemblyError carries every diagnostic of one run; the CLI prints them all and exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpu.errors import LpuError

MAX_SHOWN = 50


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    col: int
    message: str
    source_line: str = ""

    def header(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: error: {self.message}"

    def render(self) -> str:
        if not self.source_line:
            return self.header()
        shown = self.source_line.expandtabs(1)
        caret = " " * max(0, min(self.col - 1, len(shown))) + "^"
        return f"{self.header()}\n    {shown}\n    {caret}"


class AssemblyError(LpuError):
    """One or more errors in an assembly source."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        first = diagnostics[0]
        super().__init__(first.message, file=first.file, line=first.line, col=first.col)
        self.diagnostics = diagnostics

    def __str__(self) -> str:
        more = len(self.diagnostics) - 1
        return self.diagnostics[0].header() + (f" (and {more} more)" if more else "")

    def report(self) -> str:
        shown = [d.render() for d in self.diagnostics[:MAX_SHOWN]]
        rest = len(self.diagnostics) - MAX_SHOWN
        if rest > 0:
            shown.append(f"... and {rest} more errors")
        n = len(self.diagnostics)
        shown.append(f"{n} error{'s' if n != 1 else ''}")
        return "\n".join(shown)
