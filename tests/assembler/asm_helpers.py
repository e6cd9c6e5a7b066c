"""Shared helpers for the assembler tests (a plain module, so names never clash with conftest)."""

from pathlib import Path

import pytest

from lpu.assembler import AssemblyError, assemble

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "kernels" / "examples").glob("*.s"))


def diagnostics(src: str, **kw) -> list[tuple[int, int, str]]:
    """(line, col, message) of every error the assembler reports for `src`."""
    with pytest.raises(AssemblyError) as e:
        assemble(src, filename="t.s", **kw)
    return [(d.line, d.col, d.message) for d in e.value.diagnostics]
