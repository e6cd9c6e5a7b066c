"""Building traces from what already exists: the static schedule and the decoded instructions.

Nothing is recorded inside the emulator's hot loop: every instance's issue and completion cycle
is in the schedule, and its streams and addresses follow from its instruction's fields.
"""

from __future__ import annotations

import numpy as np

from lpu import _engine as E
from lpu.isa.table import INSTRUCTIONS
from lpu.traces.format import Trace

NONE8 = 255
SPAN_KINDS = {"step": 0, "layer": 1, "kernel": 2}
MAX_DECODE_EVENTS = 2_000_000  # beyond this a decode trace keeps spans only


def _units(chip) -> list[dict]:
    return [{"name": q.name, "unit": q.unit, "stage": q.stage, "hemisphere": q.hemisphere}
            for q in chip.queues]


def _opnames() -> dict[str, str]:
    return {str(i.opcode): i.mnemonic for i in INSTRUCTIONS}


def instruction_events(result, offset: int = 0) -> dict[str, np.ndarray]:
    """One row per executed instance: queue, opcode, issue/completion cycle, source line,
    stream operands (dir<<5|id, 255 none) with their group sizes, MEM address (-1 none)."""
    sched = result.schedule
    F, rows, program = result.meta["fields"], result.meta["rows"], result.meta["program"]
    n = len(sched)
    if n == 0:
        return {}
    f = F[rows]
    cls = f[:, E.C_CLS]
    dt_bytes = np.array([1, 4, 2, 2, 4, 0, 0, 0])
    g = dt_bytes[np.clip(f[:, E.C_DT], 0, 7)]
    g2 = dt_bytes[np.clip(f[:, E.C_DT2], 0, 7)]
    vxm = np.isin(cls, [E.K_VBIN, E.K_VIMM, E.K_VUN, E.K_CVT])
    moves = np.isin(cls, [E.K_SHIFT, E.K_ROTATE, E.K_PERMUTE, E.K_DISTRIBUTE, E.K_TRANSPOSE])
    ga = np.where(np.isin(cls, [E.K_WRITE, E.K_SCATTER]), 1, 0)
    ga = np.where(vxm | (cls == E.K_MV) | (cls == E.K_REDUCE), g, ga)
    ga = np.where(cls == E.K_LW, f[:, E.C_N] * g, ga)
    ga = np.where(moves, f[:, E.C_SG], ga)
    gb = np.where(cls == E.K_VBIN, g, np.where(np.isin(cls, [E.K_GATHER, E.K_SCATTER]), 4, 0))
    cmp = vxm & (f[:, E.C_SUB] >= 10) & np.isin(cls, [E.K_VBIN, E.K_VIMM])
    gz = np.where(np.isin(cls, [E.K_READ, E.K_GATHER]), 1, 0)
    gz = np.where(vxm, np.where(cmp, 4, np.where(cls == E.K_CVT, g2, g)), gz)
    gz = np.where((cls == E.K_ACC), 4, np.where(cls == E.K_REDUCE, g, gz))
    gz = np.where(moves, f[:, E.C_SG], gz)
    mem_rw = np.isin(cls, [E.K_READ, E.K_WRITE])
    addr = np.where(mem_rw, f[:, E.C_ADDR] + sched.rep * f[:, E.C_STEP],
                    np.where(np.isin(cls, [E.K_GATHER, E.K_SCATTER]), f[:, E.C_ADDR], -1))
    line = np.zeros(n, np.uint32)
    names = [q.name for q in result.chip.queues]
    for qi in np.unique(sched.queue):
        sm = program.srcmap.get(names[qi])
        if sm is not None and len(sm):
            m = sched.queue == qi
            pcs = np.minimum(sched.pc[m], len(sm) - 1)
            line[m] = sm[pcs, 0]

    def field(col: np.ndarray, used: np.ndarray) -> np.ndarray:
        return np.where(used > 0, col, NONE8).astype(np.uint8)

    return {"queue": sched.queue.astype(np.uint16), "op": sched.opcode.astype(np.uint8),
            "start": (sched.cycle + offset).astype(np.int64),
            "end": (sched.done + offset).astype(np.int64), "line": line,
            "a": field(f[:, E.C_A], ga), "ga": ga.astype(np.uint8),
            "b": field(f[:, E.C_B], gb), "gb": gb.astype(np.uint8),
            "z": field(f[:, E.C_Z], gz), "gz": gz.astype(np.uint8),
            "addr": addr.astype(np.int32)}


def _spans(spans: list[dict], offset: int, names: list[str], out: dict[str, list]) -> None:
    base = len(out["start"])
    idx = {}
    for i, sp in enumerate(spans):
        if sp["name"] not in idx:
            names.append(sp["name"])
            idx[sp["name"]] = len(names) - 1
        out["name"].append(idx[sp["name"]])
        out["kind"].append(SPAN_KINDS.get(sp.get("kind", "kernel"), 2))
        out["start"].append(int(sp["start"]) + offset)
        out["end"].append(int(sp["end"]) + offset)
        # a step span parents the spans after it; layers parent their kernels by containment
        out["parent"].append(base if i and spans[0].get("kind") == "step" else -1)


def _span_table(out: dict[str, list]) -> dict[str, np.ndarray]:
    return {"name": np.asarray(out["name"], np.uint32), "kind": np.asarray(out["kind"], np.uint8),
            "start": np.asarray(out["start"], np.int64), "end": np.asarray(out["end"], np.int64),
            "parent": np.asarray(out["parent"], np.int32)}


def _meta(chip, kind: str) -> dict:
    return {"kind": kind, "chip": chip.name, "clock_ghz": chip.clock_ghz, "lanes": chip.lanes,
            "streams": chip.streams, "stages": chip.n_stages, "bank_words": chip.bank_words,
            "units": _units(chip), "opnames": _opnames(), "hazard_free": True}


def lpu_trace(result, program=None, spans: list[dict] | None = None) -> Trace:
    """The trace of one run (a run that hit a hazard raised instead: traces are hazard-free)."""
    chip = result.chip
    meta = _meta(chip, "lpu")
    meta.update({"cycles": int(result.cycles), "instructions": int(result.instructions),
                 "source": getattr(result.meta.get("program"), "source", "")})
    tables = {}
    ev = instruction_events(result)
    if ev:
        tables["inst"] = ev
    if spans:
        names: list[str] = []
        out: dict[str, list] = {"name": [], "kind": [], "start": [], "end": [], "parent": []}
        _spans(spans, 0, names, out)
        meta["span_names"] = names
        tables["spans"] = _span_table(out)
    return Trace(meta, tables)


def decode_trace(res) -> Trace:
    """A decode: every step's spans (step, layer, kernel) end to end, and its instruction
    events unless there are more than MAX_DECODE_EVENTS of them."""
    chip = res.chip
    meta = _meta(chip, "decode")
    total = sum(s.instances for s in res.steps)
    keep_events = total <= MAX_DECODE_EVENTS
    names: list[str] = []
    out: dict[str, list] = {"name": [], "kind": [], "start": [], "end": [], "parent": []}
    evs = []
    offset = 0
    for s in res.steps:
        spans = list(s.compiled.spans) if s.compiled is not None else []
        if spans and spans[0].get("kind") == "step":
            spans[0] = {**spans[0], "name": f"step {s.pos} (token {s.token_in})",
                        "end": s.cycles - 1}
        _spans(spans, offset, names, out)
        if keep_events and s.result is not None:
            evs.append(instruction_events(s.result, offset))
        offset += s.cycles
    meta.update({"cycles": offset, "steps": len(res.steps), "span_names": names,
                 "tokens": list(res.tokens), "prompt_ids": list(res.prompt_ids),
                 "events": "all" if keep_events else "spans only"})
    tables = {"spans": _span_table(out)}
    evs = [e for e in evs if e]
    if evs:
        tables["inst"] = {k: np.concatenate([e[k] for e in evs]) for k in evs[0]}
    return Trace(meta, tables)


def gpu_trace(g) -> Trace:
    """A GPU run: the kernels of one measured step and every token's latency in every run."""
    names: list[str] = []
    idx: dict[str, int] = {}
    cols: dict[str, list] = {"name": [], "kind": [], "start_ns": [], "dur_ns": [], "bytes": [],
                             "l2_hit_bytes": []}
    kinds: list[str] = []
    for k in g.kernels:
        if k.name not in idx:
            idx[k.name] = len(names)
            names.append(k.name)
        if k.kind not in kinds:
            kinds.append(k.kind)
        cols["name"].append(idx[k.name])
        cols["kind"].append(kinds.index(k.kind))
        cols["start_ns"].append(k.start_ns)
        cols["dur_ns"].append(k.dur_ns)
        cols["bytes"].append(k.bytes)
        cols["l2_hit_bytes"].append(k.l2_hit_bytes)
    lat = np.asarray(g.per_token_ms, np.float64)
    runs, toks = np.meshgrid(np.arange(lat.shape[0]), np.arange(lat.shape[1]), indexing="ij")
    meta = {"kind": "gpu", "gpu": g.gpu, "model": g.model, "kernel_names": names,
            "kernel_kinds": kinds, "batch": g.batch, "weights_dtype": g.weights_dtype}
    tables = {"gpu": {"name": np.asarray(cols["name"], np.uint32),
                      "kind": np.asarray(cols["kind"], np.uint8),
                      **{k: np.asarray(cols[k], np.float64)
                         for k in ("start_ns", "dur_ns", "bytes", "l2_hit_bytes")}},
              "tokens": {"run": runs.ravel().astype(np.uint16),
                         "token": toks.ravel().astype(np.uint32), "ms": lat.ravel()}}
    return Trace(meta, tables)


def compare_trace(out: dict) -> Trace:
    """Both machines' per-token latencies (run by run) on one time axis."""
    tables = {}
    for side in ("lpu", "gpu"):
        lat = np.asarray(out[side]["per_token_ms_runs"], np.float64)
        runs, toks = np.meshgrid(np.arange(lat.shape[0]), np.arange(lat.shape[1]),
                                 indexing="ij")
        tables[f"{side}_tokens"] = {"run": runs.ravel().astype(np.uint16),
                                    "token": toks.ravel().astype(np.uint32), "ms": lat.ravel()}
    meta = {"kind": "compare", "model": out["model"], "chip": out["lpu"]["chip"],
            "gpu": out["gpu"]["gpu"], "tokens_match": out["tokens_match"]}
    return Trace(meta, tables)
