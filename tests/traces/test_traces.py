"""Traces: the file format round-trips and refuses bad files; the views render the same text
every time (snapshots, no colour); the Perfetto export follows the Trace Event Format."""

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from lpu.assembler import assemble_file
from lpu.errors import LpuError
from lpu.machine import Machine
from lpu.traces.export import chrome_events
from lpu.traces.format import Trace, from_bytes, load
from lpu.traces.record import lpu_trace
from lpu.traces.stats import stats
from lpu.traces.view import render

ROOT = Path(__file__).resolve().parents[2]
SNAP = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("LPU_UPDATE_SNAPSHOTS") == "1"  # set to rewrite the snapshot files


def vadd_trace() -> tuple[Trace, object]:
    prog = assemble_file(ROOT / "kernels" / "examples" / "vadd.s")
    res = Machine(prog).run()
    return lpu_trace(res, prog), res


def text(renderable, width: int) -> str:
    buf = io.StringIO()
    Console(width=width, file=buf, color_system=None, force_terminal=False).print(renderable)
    return buf.getvalue()


def check_snapshot(name: str, got: str) -> None:
    path = SNAP / name
    if UPDATE or not path.exists():
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")


def test_a_trace_survives_the_round_trip_through_bytes():
    tr, _ = vadd_trace()
    back = from_bytes(tr.to_bytes())
    assert back.meta == json.loads(json.dumps(tr.meta))
    for t, cols in tr.tables.items():
        for c, arr in cols.items():
            np.testing.assert_array_equal(back.tables[t][c], arr)


@pytest.mark.parametrize("damage,needle", [
    (lambda b: b"NOTATRACE" + b[9:], "magic"),
    (lambda b: b[:8] + b"\x09\x00" + b[10:], "version"),
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:40] + bytes([b[40] ^ 0xFF]) + b[41:], "corrupted"),
])
def test_a_damaged_trace_file_gives_a_clear_error(tmp_path, damage, needle):
    tr, _ = vadd_trace()
    f = tmp_path / "x.trace"
    f.write_bytes(damage(tr.to_bytes()))
    with pytest.raises(LpuError) as e:
        load(f)
    assert needle in str(e.value) and "hint" in str(e.value)


def test_the_views_of_the_vector_add_match_their_snapshots():
    tr, _ = vadd_trace()
    check_snapshot("vadd_view_100.txt", text(render(tr, width=100), 100))
    check_snapshot("vadd_view_80.txt", text(render(tr, width=80), 80))


def test_a_view_fits_80_columns():
    tr, _ = vadd_trace()
    assert max(len(line) for line in text(render(tr, width=80), 80).splitlines()) <= 80


def test_stats_count_what_the_run_did():
    tr, res = vadd_trace()
    s = stats(tr)
    assert s["hazard_free"] and s["cycles"] == res.cycles == 14
    assert s["busy_cycles"] == res.busy
    # 12 planes of 16 bytes leave MEM and 4 come back from the VXM: one write each
    assert sum(s["bytes_per_stream"].values()) == (8 + 4) * 16


def test_the_chrome_export_follows_the_trace_event_format():
    tr, _ = vadd_trace()
    events = chrome_events(tr)
    complete = [e for e in events if e["ph"] == "X"]
    assert complete and all({"name", "ph", "pid", "tid", "ts", "dur"} <= set(e) for e in complete)
    assert all(e["dur"] >= 0 for e in complete)
    by_track: dict = {}
    for e in complete:
        by_track.setdefault((e["pid"], e["tid"]), []).append(e["ts"])
    assert all(ts == sorted(ts) for ts in by_track.values())
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert "vxm.0" in names


def test_a_million_event_trace_is_summarised_not_drawn_event_by_event():
    tr, _ = vadd_trace()
    n = 1_000_000
    rng = np.random.default_rng(0)
    q = rng.integers(0, len(tr.meta["units"]), n).astype(np.uint16)
    start = np.sort(rng.integers(0, 200_000, n)).astype(np.int64)
    tr.tables["inst"] = {"queue": q, "op": np.full(n, 0x20, np.uint8), "start": start,
                         "end": start + 3, "line": np.zeros(n, np.uint32),
                         "a": np.full(n, 255, np.uint8), "ga": np.zeros(n, np.uint8),
                         "b": np.full(n, 255, np.uint8), "gb": np.zeros(n, np.uint8),
                         "z": np.full(n, 255, np.uint8), "gz": np.zeros(n, np.uint8),
                         "addr": np.full(n, -1, np.int32)}
    tr.meta["cycles"] = 200_000
    out = text(render(tr, width=100), 100)
    assert "1,000,000 instruction events" in out
    assert len(out.splitlines()) < 120


def test_the_trace_commands_read_write_and_refuse_bad_files(tmp_path, capsys):
    from lpu.cli import main

    prog = ROOT / "kernels" / "examples" / "vadd.s"
    lpx, tr, out = tmp_path / "v.lpx", tmp_path / "v.trace", tmp_path / "v.json"
    assert main(["asm", str(prog), "-o", str(lpx)]) == 0
    assert main(["run", str(lpx), "--trace", str(tr), "--json"]) == 0
    assert main(["trace", "stats", str(tr), "--json"]) == 0
    capsys.readouterr()
    assert main(["trace", "export", str(tr), "--format", "chrome", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["traceEvents"]
    (tmp_path / "bad.trace").write_bytes(b"garbage")
    assert main(["trace", "view", str(tmp_path / "bad.trace")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_a_long_decode_lets_go_of_each_steps_tables_past_what_its_trace_keeps(monkeypatch):
    # a gpt2-small step's run holds ~70 MB for the trace's instruction events; once a decode
    # trace would keep spans only, the steps drop them, so memory stays bounded
    from lpu.kernels import runtime
    from lpu.kernels.weights import load_weights
    from lpu.traces.record import decode_trace

    w = load_weights("tiny", seed=0)
    full = runtime.LpuDecoder(w, "mini", "fp16", max_context=8).decode([1, 2, 3], 3)
    assert all(s.result is not None for s in full.steps)
    assert decode_trace(full).meta["events"] == "all"
    limit = full.steps[0].instances + full.steps[1].instances  # two steps' worth
    monkeypatch.setattr(runtime, "MAX_DECODE_EVENTS", limit)
    monkeypatch.setattr("lpu.traces.record.MAX_DECODE_EVENTS", limit)
    short = runtime.LpuDecoder(w, "mini", "fp16", max_context=8).decode([1, 2, 3], 3)
    assert all(s.result is None for s in short.steps)
    assert [s.instances for s in short.steps] == [s.instances for s in full.steps]
    tr = decode_trace(short)
    assert tr.meta["events"] == "spans only"
    assert tr.meta["cycles"] == decode_trace(full).meta["cycles"]
    assert short.tokens == full.tokens
