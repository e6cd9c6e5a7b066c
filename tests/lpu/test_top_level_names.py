"""The top-level folders are lpu.isa, lpu.assembler, lpu.kernels and lpu.traces: imported by
their bare names from the repository root, they must not hide installed packages of those names."""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("name", ["isa", "assembler", "kernels", "traces"])
def test_a_bare_import_from_the_root_is_not_our_folder(name):
    # run where `python -m pytest` runs: the repository root first on sys.path
    code = (f"import sys; sys.path.insert(0, {ROOT!r})\n"
            f"try:\n    import {name} as m\nexcept ModuleNotFoundError as e:\n"
            "    print('missing', e)\nelse:\n    print('found', m.__file__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    elsewhere = [p for p in sys.path if os.path.abspath(p or os.curdir) != ROOT]
    installed = importlib.machinery.PathFinder.find_spec(name, elsewhere) is not None
    if out.startswith("found"):
        ours = os.path.join(ROOT, name) + os.sep
        assert installed and not out.split(" ", 1)[1].startswith(ours), out
    else:
        assert f"lpu.{name}" in out, out


def test_our_packages_still_import_under_lpu():
    code = ("import lpu.kernels.compiler, lpu.traces, lpu.assembler, lpu.isa.table; "
            "print(lpu.assembler.assemble.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    assert out.strip() == "assemble"
