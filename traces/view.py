"""Terminal views of a trace: pure functions from a Trace to rich renderables.

Every view buckets events into character cells with numpy (a 1M-event trace renders as fast
as a small one); nothing creates one rich object per event. `lpu trace view` only prints.
"""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from lpu.traces.format import Trace

SHADES = " ░▒▓█"
KIND_ORDER = ("mxm", "sxm", "mem", "vxm")


def _window(trace: Trace, start: int | None, end: int | None) -> tuple[int, int]:
    total = int(trace.meta.get("cycles", 0)) or 1
    a = 0 if start is None else max(0, int(start))
    b = total if end is None else min(total, int(end))
    return a, max(b, a + 1)


def rows_of(units: list[dict]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Timeline rows, west to east: one per queue on a small chip; on a big one MXM planes,
    SXM banks and MEM stage groups are merged. Returns (labels, row of each queue, queues per
    row)."""
    if len(units) <= 40:
        labels = [u["name"] for u in units]
        return labels, np.arange(len(units)), np.ones(len(units), np.int64)
    labels: list[str] = []
    index: dict[str, int] = {}
    row = np.zeros(len(units), np.int64)
    for i, u in enumerate(units):
        if u["unit"] == "mxm":
            key = u["name"].split(".")[0]
        elif u["unit"] == "sxm":
            key = f"sxm.{u['hemisphere']}"
        elif u["unit"] == "mem":
            key = f"mem {u['hemisphere']} stage {u['stage']}"
        else:
            key = "vxm"
        if key not in index:
            index[key] = len(labels)
            labels.append(key)
        row[i] = index[key]
    return labels, row, np.bincount(row, minlength=len(labels))


def header(trace: Trace) -> Text:
    m = trace.meta
    t = Text()
    if m.get("kind") in ("lpu", "decode"):
        cyc = int(m.get("cycles", 0))
        us = cyc / (float(m.get("clock_ghz", 1)) * 1e3)
        n = len(trace.table("inst").get("start", ()))
        t.append(f"{m.get('kind')} trace on {m.get('chip')}: ", style="bold")
        t.append(f"{cyc:,} cycles = {us:,.3f} µs at {m.get('clock_ghz')} GHz, "
                 f"{n:,} instruction events")
        if m.get("kind") == "decode":
            t.append(f", {m.get('steps')} steps, tokens {m.get('tokens')}")
        if m.get("hazard_free"):
            t.append("; hazard-free", style="green")
    else:
        t.append(f"{m.get('kind')} trace: " + ", ".join(
            f"{k} {m[k]}" for k in ("model", "gpu", "chip") if k in m), style="bold")
    return t


def timeline(trace: Trace, start: int | None = None, end: int | None = None,
             width: int = 80) -> Table:
    """One row per unit (west to east), time across; a cell's shade is how busy the row was
    in that cell's cycles; the last column is the row's utilisation over the window."""
    ev = trace.table("inst")
    units = trace.meta["units"]
    labels, row_of, per_row = rows_of(units)
    a, b = _window(trace, start, end)
    span = b - a
    cells = min(span, max(8, width - max(len(s) for s in labels) - 12))
    t = Table(title=f"timeline, cycles {a:,}..{b - 1:,} ({span / cells:,.1f} cycles per cell)",
              show_edge=False, pad_edge=False, expand=False)
    t.add_column("unit", no_wrap=True)
    t.add_column("activity", no_wrap=True)
    t.add_column("util", justify="right", no_wrap=True)
    counts = np.zeros((len(labels), cells), np.int64)
    if ev:
        s = ev["start"]
        m = (s >= a) & (s < b)
        r = row_of[ev["queue"][m].astype(np.int64)]
        c = ((s[m] - a) * cells // span).astype(np.int64)
        np.add.at(counts, (r, c), 1)
    cell_cycles = span / cells
    for i, lab in enumerate(labels):
        frac = counts[i] / (cell_cycles * per_row[i])
        shade = "".join(SHADES[min(4, int(np.ceil(f * 4)))] if f > 0 else " " for f in frac)
        util = counts[i].sum() / (span * per_row[i])
        t.add_row(lab, shade, f"{100 * util:.0f}%")
    return t


def legend() -> Text:
    return Text("cells: ' ' idle  ░ ≤25%  ▒ ≤50%  ▓ ≤75%  █ busy   (issue slots used per "
                "queue per cycle; util = over the window)", style="dim")


def stream_view(trace: Trace, start: int | None = None, end: int | None = None,
                width: int = 80) -> Table:
    """Which stream carries a value where: one row per stream and direction, one column per
    cycle; a cell shows the stage a value was written at ('>' east-bound / '<' west-bound
    while it travels to its last reader). Meant for `mini` (8+8 streams)."""
    ev = trace.table("inst")
    streams = int(trace.meta.get("streams", 8))
    a, b = _window(trace, start, end)
    b = min(b, a + max(8, width - 10))
    units = trace.meta["units"]
    stage = np.array([u["stage"] for u in units])
    grid = [[" "] * (b - a) for _ in range(2 * streams)]
    if ev:
        q = ev["queue"].astype(np.int64)
        st = stage[q]
        # writes: z group at completion; reads: a/b groups at issue
        for fld, gfld, when in (("z", "gz", "end"), ("a", "ga", "start"), ("b", "gb", "start")):
            f, g, tt = ev[fld].astype(np.int64), ev[gfld].astype(np.int64), ev[when]
            m = (f != 255) & (g > 0) & (tt >= a) & (tt < b)
            for fv, gv, tv, sv in zip(f[m], g[m], tt[m], st[m], strict=True):
                d, s0 = fv >> 5, fv & 31
                for j in range(min(int(gv), streams - s0)):
                    r = d * streams + s0 + j
                    ch = (f"{sv % 36:X}" if sv < 16 else "*") if fld == "z" else \
                        (">" if d == 0 else "<")
                    cell = grid[r][tv - a]
                    grid[r][tv - a] = ch if cell == " " or fld == "z" else cell
    t = Table(title=f"streams, cycles {a}..{b - 1} (hex digit: stage written at; > east, "
                    "< west: read)", show_edge=False, pad_edge=False)
    t.add_column("stream", no_wrap=True)
    t.add_column("".join(str((c // 10) % 10) if c % 10 == 0 else " " for c in range(a, b)),
                 no_wrap=True)
    for d in range(2):
        for s in range(streams):
            t.add_row(f"{'ew'[d]}{s}", "".join(grid[d * streams + s]))
    return t


def token_view(trace: Trace) -> Table:
    """A decode trace: cycles per step, split by kernel kind over all layers."""
    sp = trace.table("spans")
    names = trace.meta.get("span_names", [])
    clock = float(trace.meta.get("clock_ghz", 1))
    t = Table(title="per token: cycles by kernel (summed over layers)", show_edge=False)
    if not sp:
        return t
    steps = np.flatnonzero(sp["kind"] == 0)
    kinds: list[str] = []
    per = []
    for i, si in enumerate(steps):
        stop = steps[i + 1] if i + 1 < len(steps) else len(sp["kind"])
        d: dict[str, int] = {}
        for j in range(si + 1, stop):
            if sp["kind"][j] != 2:
                continue
            key = names[sp["name"][j]].split(" ")[-1] if names[sp["name"][j]].startswith(
                "layer") else names[sp["name"][j]]
            d[key] = d.get(key, 0) + int(sp["end"][j] - sp["start"][j])
            if key not in kinds:
                kinds.append(key)
        per.append((names[sp["name"][si]], int(sp["end"][si] - sp["start"][si] + 1), d))
    t.add_column("step")
    t.add_column("cycles", justify="right")
    t.add_column("µs", justify="right")
    for k in kinds:
        t.add_column(k, justify="right")
    for name, cyc, d in per:
        t.add_row(name, f"{cyc:,}", f"{cyc / clock / 1e3:.2f}", *[f"{d.get(k, 0):,}"
                                                                  for k in kinds])
    return t


def _token_bar(ms: np.ndarray, scale: float, cells: int) -> str:
    """Tokens as alternating blocks along a common time axis (scale: ms per cell)."""
    out = []
    pos = 0.0
    for i, v in enumerate(ms):
        n = max(1, round((pos + v) / scale) - round(pos / scale))
        out.append(("█" if i % 2 == 0 else "▒") * n)
        pos += v
    return "".join(out)[:cells]


def compare_view(trace: Trace, width: int = 80) -> Table:
    """LPU and GPU token timelines one above the other on the same time scale (run 1)."""
    lpu = trace.table("lpu_tokens")
    gpu = trace.table("gpu_tokens")
    lms = lpu["ms"][lpu["run"] == 0]
    gms = gpu["ms"][gpu["run"] == 0]
    cells = max(10, width - 14)
    total = max(lms.sum(), gms.sum())
    scale = total / cells
    t = Table(title=f"tokens on one time axis: {scale * 1e3:,.2f} µs per cell (run 1)",
              show_edge=False)
    t.add_column("machine", no_wrap=True)
    t.add_column("tokens", no_wrap=True)
    t.add_row(f"LPU {trace.meta.get('chip', '')}", _token_bar(lms, scale, cells))
    t.add_row(f"GPU {trace.meta.get('gpu', '')}", _token_bar(gms, scale, cells))
    return t


def gpu_view(trace: Trace, width: int = 80, top: int = 12) -> Table:
    """The GPU step's kernels: time and bytes by kernel, the largest first."""
    g = trace.table("gpu")
    names = trace.meta.get("kernel_names", [])
    t = Table(title=f"{trace.meta.get('gpu')} kernels of one decode step", show_edge=False)
    t.add_column("kernel")
    t.add_column("count", justify="right")
    t.add_column("µs", justify="right")
    t.add_column("MB", justify="right")
    t.add_column("L2 hit", justify="right")
    if not g:
        return t
    dur = np.bincount(g["name"], weights=g["dur_ns"], minlength=len(names))
    cnt = np.bincount(g["name"], minlength=len(names))
    byt = np.bincount(g["name"], weights=g["bytes"], minlength=len(names))
    hit = np.bincount(g["name"], weights=g["l2_hit_bytes"], minlength=len(names))
    for i in np.argsort(-dur)[:top]:
        t.add_row(names[i], str(cnt[i]), f"{dur[i] / 1e3:,.2f}", f"{byt[i] / 1e6:,.2f}",
                  f"{100 * hit[i] / byt[i]:.0f}%" if byt[i] else "-")
    return t


def render(trace: Trace, start: int | None = None, end: int | None = None,
           width: int = 80) -> Group:
    kind = trace.meta.get("kind")
    parts = [header(trace)]
    if kind in ("lpu", "decode"):
        if kind == "decode":
            parts.append(token_view(trace))
        if trace.table("inst"):
            parts += [timeline(trace, start, end, width), legend()]
            if int(trace.meta.get("streams", 32)) <= 16:
                parts.append(stream_view(trace, start, end, width))
    elif kind == "gpu":
        parts.append(gpu_view(trace, width))
    elif kind == "compare":
        parts.append(compare_view(trace, width))
    return Group(*parts)
