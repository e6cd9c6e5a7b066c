"""Top-level folders (isa, assembler, kernels, traces) installed as lpu.*: when the repository
root is on sys.path (`python -m pytest` and `python -c` put the working directory there), an
`import kernels` would find our folder and hide the installed package of that name."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def step_aside(name: str, init_file: str) -> None:
    """Called by a folder's __init__ when it is imported as the top-level `name`: load the
    installed package of that name in its place (transformers imports Hugging Face's
    `kernels`), or fail as if there were none. Our code always imports lpu.<name>."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(init_file)))
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != root]
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    if spec is None or spec.loader is None:
        del sys.modules[name]
        raise ModuleNotFoundError(f"No module named {name!r} (the folder {name}/ of this "
                                  f"repository is lpu.{name})", name=name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the import statement returns what sys.modules holds
    spec.loader.exec_module(module)
