"""`lpu run`: inputs and dumps by segment name, the --json contract, --max-cycles, and a
broken timing rule as exit code 3 with cycle, queue and instruction."""

import json
from pathlib import Path

import numpy as np

from lpu.cli import main

EX = Path(__file__).resolve().parents[2] / "kernels" / "examples"


def assemble(tmp_path, text=None):
    src = tmp_path / "p.s"
    src.write_text(text if text is not None else (EX / "vadd.s").read_text())
    out = tmp_path / "p.lpx"
    assert main(["asm", str(src), "-o", str(out)]) == 0
    return out


def test_run_reads_inputs_writes_dumps_and_prints_the_contract(tmp_path, capsys):
    lpx = assemble(tmp_path)
    x = np.arange(16, dtype=np.float32) * 2
    np.save(tmp_path / "x.npy", x)
    code = main(["run", str(lpx), "--input", f"x={tmp_path / 'x.npy'}",
                 "--dump", f"z={tmp_path / 'z.npy'}", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"chip", "cycles", "instructions", "clock_ghz", "time_us", "units"} <= set(out)
    assert out["cycles"] == 14 and out["chip"] == "mini"
    assert abs(out["time_us"] - 14 / 900) < 1e-12
    y = np.array([0.5] * 4 + [-1.0] * 4 + [100.0] * 4 + [0.25] * 4, np.float32)
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), x + y)


def test_max_cycles_stops_a_run_and_writes_nothing(tmp_path, capsys):
    lpx = assemble(tmp_path)
    code = main(["run", str(lpx), "--max-cycles", "5", "--dump", f"z={tmp_path / 'z.npy'}"])
    err = capsys.readouterr().err
    assert code == 1 and "max-cycles" in err and "14 cycles long" in err
    assert not (tmp_path / "z.npy").exists()


def test_a_hazard_exits_3_naming_cycle_queue_instruction_and_line(tmp_path, capsys):
    text = (EX / "vadd.s").read_text().replace("@5 add.f32", "@6 add.f32")
    lpx = assemble(tmp_path, text)
    code = main(["run", str(lpx)])
    err = capsys.readouterr().err
    assert code == 3
    line = next(i + 1 for i, s in enumerate(text.splitlines()) if "@6 add.f32" in s)
    assert f"p.s:{line}:" in err and "cycle 6" in err and "vxm.0" in err and "add.f32" in err


def test_bad_inputs_are_one_error_line(tmp_path, capsys):
    lpx = assemble(tmp_path)
    capsys.readouterr()
    np.save(tmp_path / "bad.npy", np.zeros(3))
    for argv in (["run", str(lpx), "--input", "nope=x.npy"],
                 ["run", str(lpx), "--input", f"x={tmp_path / 'bad.npy'}"],
                 ["run", str(lpx), "--input", f"x={tmp_path / 'missing.npy'}"],
                 ["run", str(tmp_path / "missing.lpx")]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (1, 2) and err.startswith("error: ") and "Traceback" not in err
        assert err.count("\n") == 1
