"""Numbers from a trace: busy cycles per unit, bytes per stream and per MEM slice, kernels.

`stats(trace)` returns plain dicts and lists (the `lpu trace stats --json` object);
`stats_table()` renders them.
"""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.table import Table

from lpu.traces.format import Trace


def stats(trace: Trace) -> dict:
    m = trace.meta
    out: dict = {"kind": m.get("kind"), "hazard_free": bool(m.get("hazard_free", False))}
    ev = trace.table("inst")
    if ev:
        units = m["units"]
        lanes = int(m["lanes"])
        names = [u["name"] for u in units]
        busy = np.bincount(ev["queue"].astype(np.int64), minlength=len(units))
        out["cycles"] = int(m.get("cycles", 0))
        out["events"] = len(ev["start"])
        out["busy_cycles"] = {names[i]: int(b) for i, b in enumerate(busy) if b}
        per_kind: dict[str, int] = {}
        for i, b in enumerate(busy):
            per_kind[units[i]["unit"]] = per_kind.get(units[i]["unit"], 0) + int(b)
        out["busy_cycles_per_unit_kind"] = per_kind
        streams = int(m["streams"])
        moved = np.zeros(2 * streams, np.int64)
        for fld, gfld in (("z", "gz"), ):  # every value is written once: count writes
            f, g = ev[fld].astype(np.int64), ev[gfld].astype(np.int64)
            ok = (f != 255) & (g > 0)
            for j in range(int(g.max(initial=0))):
                sel = ok & (g > j)
                idx = (f[sel] >> 5) * streams + np.minimum((f[sel] & 31) + j, streams - 1)
                np.add.at(moved, idx, 1)
        out["bytes_per_stream"] = {f"{'ew'[i // streams]}{i % streams}": int(v * lanes)
                                   for i, v in enumerate(moved) if v}
        mem = [i for i, u in enumerate(units) if u["unit"] == "mem"]
        opn = m.get("opnames", {})
        is_rw = np.isin(ev["op"], [int(k) for k, v in opn.items()
                                   if v in ("read", "write", "gather", "scatter")])
        per_slice = np.bincount(ev["queue"][is_rw].astype(np.int64), minlength=len(units))
        out["bytes_per_mem_slice"] = {names[i]: int(per_slice[i] * lanes) for i in mem
                                      if per_slice[i]}
        ops = np.bincount(ev["op"].astype(np.int64), minlength=256)
        out["instructions_by_mnemonic"] = {opn.get(str(i), str(i)): int(c)
                                           for i, c in enumerate(ops) if c}
    sp = trace.table("spans")
    if sp:
        names = m.get("span_names", [])
        kernels: dict[str, int] = {}
        layers: dict[str, int] = {}
        for n, k, a, b in zip(sp["name"], sp["kind"], sp["start"], sp["end"], strict=True):
            label = names[n]
            if k == 2:
                key = label.split(" ")[-1] if label.startswith("layer") else label
                kernels[key] = kernels.get(key, 0) + int(b - a)
            elif k == 1:
                layers[label] = layers.get(label, 0) + int(b - a)
        out["cycles_per_kernel"] = kernels
        out["cycles_per_layer"] = layers
    g = trace.table("gpu")
    if g:
        names = m.get("kernel_names", [])
        dur = np.bincount(g["name"], weights=g["dur_ns"], minlength=len(names))
        out["gpu_ns_per_kernel"] = {names[i]: float(d) for i, d in enumerate(dur) if d}
        out["gpu_bytes"] = float(g["bytes"].sum())
        out["gpu_l2_hit_bytes"] = float(g["l2_hit_bytes"].sum())
    for side in ("tokens", "lpu_tokens", "gpu_tokens"):
        tok = trace.table(side)
        if tok:
            out[f"{side}_ms_p50"] = float(np.percentile(tok["ms"], 50))
            out[f"{side}_ms_p99"] = float(np.percentile(tok["ms"], 99))
    return out


def stats_table(s: dict) -> Group:
    parts = []
    head = Table(show_header=False, show_edge=False, title="summary")
    for k in ("kind", "cycles", "events", "hazard_free"):
        if k in s:
            head.add_row(k, str(s[k]))
    parts.append(head)
    for key, title, unit in (("busy_cycles_per_unit_kind", "busy cycles per unit kind", ""),
                             ("cycles_per_kernel", "cycles per kernel (all layers)", ""),
                             ("bytes_per_stream", "bytes per stream", " B"),
                             ("bytes_per_mem_slice", "bytes per MEM slice", " B"),
                             ("gpu_ns_per_kernel", "GPU ns per kernel", " ns")):
        if s.get(key):
            t = Table(title=title, show_edge=False)
            t.add_column("")
            t.add_column("value", justify="right")
            for k, v in sorted(s[key].items(), key=lambda kv: -kv[1])[:24]:
                t.add_row(k, f"{v:,.0f}{unit}")
            parts.append(t)
    return Group(*parts)
