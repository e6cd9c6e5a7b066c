"""Errors the tools report to users: one line, an exit code, never a traceback.

Every failure a user can cause (bad file, bad flag, broken timing rule) is one of these; the CLI
prints `error: ...` and exits with the code the interfaces contract assigns.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2
EXIT_HAZARD = 3


class LpuError(Exception):
    """Bad input: a file, a value or a model the tools cannot use (exit code 1)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 col: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.hint = hint

    def location(self) -> str:
        parts = [p for p in (self.file, self.line, self.col) if p is not None]
        return ":".join(str(p) for p in parts)

    def __str__(self) -> str:
        loc = self.location()
        text = f"{loc}: {self.message}" if loc else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def report(self) -> str:
        """What the CLI prints on stderr; the first line always carries `error:`."""
        return f"error: {self}"


class UsageError(LpuError):
    """A command line that does not make sense (exit code 2)."""

    exit_code = EXIT_USAGE


class HazardError(LpuError):
    """The program broke a timing rule the real hardware would silently get wrong (exit code 3)."""

    exit_code = EXIT_HAZARD

    def __init__(self, message: str, *, kind: str, cycle: int, queue: str, instruction: str,
                 file: str | None = None, line: int | None = None, col: int | None = None) -> None:
        super().__init__(message, file=file, line=line, col=col)
        self.kind = kind
        self.cycle = cycle
        self.queue = queue
        self.instruction = instruction

    def __str__(self) -> str:
        loc = self.location()
        where = f"{loc}: " if loc else ""
        return (f"{where}hazard ({self.kind}) at cycle {self.cycle}, queue {self.queue}, "
                f"`{self.instruction}`: {self.message}")
