"""Chrome Trace Event / Perfetto JSON: one track per unit, cycles mapped to microseconds.

Open the file in ui.perfetto.dev or chrome://tracing. Events are complete ('X') events with
ts/dur in µs at the chip clock; thread names label the tracks west to east.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lpu.errors import LpuError
from lpu.traces.format import Trace


def chrome_events(trace: Trace) -> list[dict]:
    m = trace.meta
    events: list[dict] = []
    if m.get("kind") in ("lpu", "decode"):
        us = 1.0 / (float(m["clock_ghz"]) * 1e3)  # µs per cycle
        units = m["units"]
        events.append({"name": "process_name", "ph": "M", "pid": 1, "tid": 0,
                       "args": {"name": f"LPU {m.get('chip')}"}})
        for i, u in enumerate(units):
            events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": i + 1,
                           "args": {"name": u["name"]}})
            events.append({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": i + 1,
                           "args": {"sort_index": i}})
        ev = trace.table("inst")
        if ev:
            opn = m.get("opnames", {})
            order = np.lexsort((ev["start"], ev["queue"]))
            for j in order:
                s, e = int(ev["start"][j]), int(ev["end"][j])
                events.append({"name": opn.get(str(int(ev["op"][j])), "op"), "ph": "X",
                               "pid": 1, "tid": int(ev["queue"][j]) + 1, "ts": s * us,
                               "dur": max(e - s, 1) * us, "args": {"line": int(ev["line"][j])}})
        sp = trace.table("spans")
        if sp:
            names = m.get("span_names", [])
            order = np.argsort(sp["start"], kind="stable")
            for j in order:
                s, e = int(sp["start"][j]), int(sp["end"][j])
                events.append({"name": names[int(sp["name"][j])], "ph": "X", "pid": 2,
                               "tid": int(sp["kind"][j]), "ts": s * us,
                               "dur": max(e - s, 0) * us})
    if trace.table("gpu"):
        g = trace.table("gpu")
        names = m.get("kernel_names", [])
        events.append({"name": "process_name", "ph": "M", "pid": 3, "tid": 0,
                       "args": {"name": f"GPU {m.get('gpu')}"}})
        for j in np.argsort(g["start_ns"], kind="stable"):
            events.append({"name": names[int(g["name"][j])], "ph": "X", "pid": 3, "tid": 1,
                           "ts": float(g["start_ns"][j]) / 1e3,
                           "dur": max(float(g["dur_ns"][j]), 0.0) / 1e3,
                           "args": {"bytes": float(g["bytes"][j]),
                                    "l2_hit_bytes": float(g["l2_hit_bytes"][j])}})
    for pid, side in ((4, "lpu_tokens"), (5, "gpu_tokens"), (6, "tokens")):
        tok = trace.table(side)
        if not tok:
            continue
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                       "args": {"name": side}})
        for run in np.unique(tok["run"]):
            t = 0.0
            for k, ms in zip(tok["token"][tok["run"] == run], tok["ms"][tok["run"] == run],
                             strict=True):
                events.append({"name": f"token {int(k)}", "ph": "X", "pid": pid,
                               "tid": int(run) + 1, "ts": t * 1e3, "dur": float(ms) * 1e3})
                t += float(ms)
    return events


def export_chrome(trace: Trace, path: str | os.PathLike) -> int:
    """Write the JSON atomically; returns the number of events."""
    events = chrome_events(trace)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ns"}, f)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise LpuError(f"cannot write ({e.strerror})", file=str(path)) from None
    return len(events)
