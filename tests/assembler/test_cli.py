"""The asm, disasm, isa and info commands as a user runs them (in-process via lpu.cli.main)."""

import json
from pathlib import Path

import pytest
from asm_helpers import EXAMPLES, ROOT

from lpu.cli import main
from lpu.isa import docs


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_asm_then_disasm_then_asm_gives_identical_bytes(capsys, tmp_path, path):
    a, s, b = tmp_path / "a.lpx", tmp_path / "a.s", tmp_path / "b.lpx"
    assert run(capsys, "asm", str(path), "-o", str(a))[0] == 0
    assert run(capsys, "disasm", str(a), "-o", str(s))[0] == 0
    assert run(capsys, "asm", str(s), "-o", str(b))[0] == 0
    assert a.read_bytes() == b.read_bytes()


def test_asm_reports_errors_with_file_line_col_and_exits_1(capsys, tmp_path):
    src = tmp_path / "bad.s"
    src.write_text(".chip mini\n.queue vxm.0\n  add.f32 e0, w0, e9\n  frob\n")
    code, out, err = run(capsys, "asm", str(src))
    lines = err.splitlines()
    assert code == 1 and out == ""
    assert lines[0] == f"{src}:3:3: error: stream e9 does not exist on mini (8 streams per " \
                       "direction, e0..e7)"
    assert lines[3].startswith(f"{src}:4:3: error: unknown instruction 'frob'")
    assert lines[-1] == "2 errors"
    assert not (tmp_path / "bad.lpx").exists()


def test_chip_flag_and_chip_line_must_agree(capsys):
    code, _, err = run(capsys, "asm", str(EXAMPLES[0]), "--chip", "tsp-v1", "-o", "/dev/null")
    assert code == 1 and "--chip says tsp-v1" in err.splitlines()[0]


def test_disasm_refuses_a_damaged_image_with_one_error_line(capsys, tmp_path):
    bad = tmp_path / "bad.lpx"
    bad.write_bytes(b"\x89LPX\r\n\x1a\n" + bytes(30))
    code, out, err = run(capsys, "disasm", str(bad))
    assert code == 1 and out == ""
    assert err.startswith(f"error: {bad}: ") and "hint" in err and len(err.splitlines()) == 1


def test_isa_markdown_is_docs_isa_md(capsys):
    code, out, _ = run(capsys, "isa", "--markdown")
    assert code == 0 and out == docs.markdown()
    assert out == (ROOT / "docs" / "isa.md").read_text(encoding="utf-8")


def test_isa_prints_a_table_with_every_unit(capsys):
    code, out, _ = run(capsys, "isa")
    assert code == 0
    for title in docs.UNIT_TITLES.values():
        assert title in out


def test_info_json_gives_params_sources_and_derived_figures(capsys):
    code, out, _ = run(capsys, "info", "--chip", "tsp-v1", "--json")
    info = json.loads(out)
    assert code == 0 and info["chip"] == "tsp-v1"
    d = info["derived"]
    # ISCA 2020 Eq. 2: 88 slices x 2 banks x 320 B per cycle; Eq. 1: 2 x 32 x 320 B per cycle
    assert d["sram_bytes_per_cycle"] == 88 * 2 * 320
    assert d["stream_bytes_per_cycle"] == 2 * 32 * 320
    assert d["sram_bytes"] == 88 * 8192 * 320  # 220 MiB
    assert set(info["sources"]) == set(info["params"])


def test_info_with_an_unknown_chip_is_one_error_line(capsys):
    code, _, err = run(capsys, "info", "--chip", "nope")
    assert code == 1 and err.startswith("error: unknown chip 'nope'")


def test_examples_ship_inside_the_package():
    import lpu.kernels

    pkg = Path(lpu.kernels.__file__).parent / "examples"
    assert {p.name for p in pkg.glob("*.s")} >= {"vadd.s", "dot.s", "matvec16.s"}
