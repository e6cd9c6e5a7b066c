"""docs/validation.md holds the table benchmarks/gpu_validation.py computes today."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _validation():
    spec = importlib.util.spec_from_file_location("gpu_validation",
                                                  ROOT / "benchmarks" / "gpu_validation.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_validation"] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


def test_validation_doc_matches_the_model_and_meets_the_target():
    mod = _validation()
    text, median_all, median_held_out = mod.table()
    doc = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
    assert text in doc, "rerun benchmarks/gpu_validation.py and update docs/validation.md"
    assert mod.batch_table() in doc
    assert f"{median_all * 100:.1f} % over all" in doc
    assert f"{median_held_out * 100:.1f} % over the" in doc
    assert median_held_out <= 0.15  # the accuracy target
    assert sum(r.tuned for r in mod.ROWS) == 1
