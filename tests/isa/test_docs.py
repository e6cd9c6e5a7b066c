"""docs/isa.md is generated from the ISA table; the committed copy must not be stale."""

from pathlib import Path

from lpu.isa import docs
from lpu.isa.table import INSTRUCTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_committed_isa_md_matches_lpu_isa_markdown():
    committed = (ROOT / "docs" / "isa.md").read_text(encoding="utf-8")
    assert committed == docs.markdown(), "docs/isa.md is stale: run `lpu isa --markdown > docs/isa.md`"


def test_the_reference_lists_every_instruction_with_its_latency_source():
    text = docs.markdown()
    for ins in INSTRUCTIONS:
        assert f"`{docs.syntax(ins)}`" in text
        assert ins.latency.source.replace("|", "\\|") in text
