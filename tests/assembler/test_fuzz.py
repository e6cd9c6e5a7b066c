"""Hostile input never crashes the assembler: mutated examples, random text, random bytes.

Each case ends in a Program or an AssemblyError whose diagnostics carry a real line and column;
a few go through the `lpu asm` command to check the exit code and that no traceback is printed.
"""

import random
import subprocess
import sys

from asm_fuzzing import mutate
from asm_helpers import EXAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpu.assembler import AssemblyError, assemble, assemble_file
from lpu.errors import LpuError

SOURCES = [p.read_text() for p in EXAMPLES]


def assemble_or_diagnose(text: str, filename: str = "kernels/examples/m.s") -> bool:
    """True when it assembled; False when it was refused cleanly (anything else fails)."""
    try:
        assemble(text, filename=filename)
        return True
    except AssemblyError as e:
        n_lines = text.count("\n") + 1
        for d in e.diagnostics:
            assert 1 <= d.line <= n_lines and d.col >= 1, d
        first = e.report().splitlines()[0]
        assert first.startswith(f"{filename}:") and ": error: " in first
        return False


def test_hundreds_of_mutated_examples_assemble_or_fail_with_located_errors():
    rng = random.Random(20240601)
    results = [assemble_or_diagnose(mutate(rng.choice(SOURCES), rng)) for _ in range(400)]
    assert 0 < sum(results) < len(results)  # both outcomes occur: the mutations bite


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list(".@:;#,=()[]+-*/%\"\\ \t\nabcdefimqruwxz0123456789")
                                + ["add.f32 ", "read ", ".rept ", ".endr", "mem.e0", ".queue ",
                                   ".data ", ".chip mini\n", "e1", "w2", "@+", ".map ",
                                   "f32 (16) at ", "lw.i8 ", "nop "]),
                max_size=80).map("".join))
def test_random_token_soup_never_crashes(text):
    assemble_or_diagnose(text)


def test_random_bytes_in_a_file_fail_cleanly(tmp_path):
    rng = random.Random(7)
    for k in range(60):
        path = tmp_path / f"r{k}.s"
        path.write_bytes(rng.randbytes(rng.randint(0, 300)))
        try:
            assemble_file(str(path))
        except LpuError as e:
            assert str(e).startswith(str(path))


def test_huge_repeat_counts_and_issue_times_are_refused_not_run():
    for src in (".rept 70000\n.endr\n", ".chip mini\n.queue vxm.0\n@4294967296 nop 1\n",
                ".chip mini\n.queue vxm.0\n.rept 60000\n.rept 60000\nnop 1\n.endr\n.endr\n"):
        assert assemble_or_diagnose(src) is False


def test_the_asm_command_exits_0_or_1_without_a_traceback(tmp_path):
    rng = random.Random(99)
    for k in range(3):
        src = tmp_path / f"m{k}.s"
        src.write_text(mutate(rng.choice(SOURCES), rng) if k else "\x00\x01 frob\n")
        r = subprocess.run([sys.executable, "-m", "lpu.cli", "asm", str(src), "-o",
                            str(tmp_path / f"m{k}.lpx")], capture_output=True, text=True, check=False,
                           timeout=60)
        assert r.returncode in (0, 1), r.stderr
        assert "Traceback" not in r.stderr
        if r.returncode == 1:
            assert "error: " in r.stderr.splitlines()[0]
            assert not (tmp_path / f"m{k}.lpx").exists()


def test_the_disasm_command_refuses_damaged_images_without_a_traceback(tmp_path):
    from lpu.isa.image import to_bytes

    good = to_bytes(assemble(SOURCES[0], filename="e.s"))
    for k, data in enumerate((good[:-9], good[:40] + bytes([good[40] ^ 1]) + good[41:])):
        path = tmp_path / f"d{k}.lpx"
        path.write_bytes(data)
        r = subprocess.run([sys.executable, "-m", "lpu.cli", "disasm", str(path)],
                           capture_output=True, text=True, check=False, timeout=60)
        assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
        assert r.stderr.startswith(f"error: {path}: ") and len(r.stderr.splitlines()) == 1
