"""Same program and inputs: the same bits and the same cycles in every process, and with the
JIT switched off (the kernel runs as plain Python then)."""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import hashlib, json, sys
import numpy as np
from lpu.kernels.sched import Scheduler
from lpu.kernels.vector_ops import reduce_all
from lpu.machine import Machine

def run(chip):
    rng = np.random.default_rng(0)
    s = Scheduler(chip)
    L = s.chip.lanes
    (a,) = s.place("a", "f32", rng.standard_normal(L).astype(np.float32), L)
    (b,) = s.place("b", "f32", rng.standard_normal(L).astype(np.float32), L)
    outs = [s.op("exp", [a], "f32"), s.op("tanh", [s.op("mul", [a, b], "f32")], "f32"),
            s.op("rsqrt", [s.op("abs", [b], "f32")], "f32"), reduce_all(s, "sum", a),
            s.op("cvt", [a], "f16", **{"from": "f32", "to": "f16"})]
    for i, o in enumerate(outs):
        s.output(f"o{i}", [o], L)
    m = Machine(s.build())
    r = m.run()
    h = hashlib.sha256()
    for i in range(len(outs)):
        h.update(np.ascontiguousarray(m.dump(f"o{i}")).tobytes())
    return {"cycles": r.cycles, "hash": h.hexdigest()}

def mv(chip, wdt="f16"):
    from lpu.kernels.gemv import build_gemv
    rng = np.random.default_rng(1)
    L = 16 if chip == "mini" else 320
    W = rng.standard_normal((L, L))
    if wdt == "i8":  # int8 rows live transposed in groups of 8 (lpu._simd)
        W = np.clip(np.rint(W * 40), -127, 127)
    g = build_gemv(L, 3 * L, wdt, chip, weights=np.tile(W, 3), x=rng.standard_normal(3 * L))
    m = Machine(g.program); r = m.run()
    return {"cycles": r.cycles, "hash": hashlib.sha256(m.dump("y").tobytes()).hexdigest()}

def mini_mix():
    # hand-timed on mini: x (f32) passes the VXM (stage 10) at cycle 5 and sxm.e0 (19) at 14
    from lpu.kernels.builder import Builder
    b = Builder("mini")
    rng = np.random.default_rng(2)
    b.data("x", "f32", (16,), [(f"mem.w{3 - j}", 0, 1) for j in range(4)],
           rng.standard_normal(16).astype(np.float32) * 3)
    b.data("ex", "f32", (16,), [(f"mem.e{j}", 2048, 1) for j in range(4)])
    b.data("th", "f32", (16,), [(f"mem.w{j}", 2048, 1) for j in range(4)])
    b.data("h", "f16", (16,), [("mem.w0", 2049, 1), ("mem.w1", 2049, 1)])
    b.data("s", "f32", (16,), [(f"mem.e{j}", 2049, 1) for j in range(4)])
    for j in range(4):
        b.at(f"mem.w{3 - j}", j, "read", addr=0, z=f"e{j}")
    b.at("vxm.0", 5, "exp", dt="f32", a="e0", z="e4")      # e4..e7 at stage 10 at 11
    b.at("vxm.1", 5, "tanh", dt="f32", a="e0", z="w0")     # w0..w3 at stage 10 at 11
    b.at("vxm.2", 5, "cvt", **{"from": "f32", "to": "f16"}, a="e0", z="w4")  # w4,w5 at 8
    b.at("sxm.e0", 14, "rsum", dt="f32", a="e0", z="w4", seg=5)  # w4..w7 at stage 19 at 22
    for j in range(4):
        b.at(f"mem.e{j}", 12 + j, "write", addr=2048, a=f"e{4 + j}")
        b.at(f"mem.w{j}", 12 + j, "write", addr=2048, a=f"w{j}")
        b.at(f"mem.e{j}", 30 - j, "write", addr=2049, a=f"w{4 + j}")
    for j in range(2):
        b.at(f"mem.w{j}", 9 + j, "write", addr=2049, a=f"w{4 + j}")
    m = Machine(b.build())
    r = m.run()
    h = hashlib.sha256()
    for name in ("ex", "th", "h", "s"):
        h.update(np.ascontiguousarray(m.dump(name)).tobytes())
    return {"cycles": r.cycles, "hash": h.hexdigest()}

if sys.argv[1] == "mini":
    out = {"mix": mini_mix(), "mv8": mv("mini", "i8"), "mv16": mv("mini")}
else:
    out = {"vec": run(sys.argv[1]), "mv": mv(sys.argv[1]), "mv8": mv(sys.argv[1], "i8")}
print(json.dumps(out))
"""


def _run(chip: str, nojit: bool = False, threads: str = "") -> dict:
    env = dict(os.environ)
    if nojit:
        env["NUMBA_DISABLE_JIT"] = "1"
    if threads:
        env["LPU_THREADS"] = threads
    p = subprocess.run([sys.executable, "-c", SCRIPT, chip], check=False, capture_output=True,
                       text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_two_processes_give_identical_bits_and_cycles():
    assert _run("tsp-v1") == _run("tsp-v1")


def test_one_thread_or_two_give_identical_bits_and_cycles():
    # LPU_THREADS=2: the MXM's transposes and products run on a worker thread
    assert _run("tsp-v1", threads="1") == _run("tsp-v1", threads="2")


def test_the_kernel_without_the_jit_gives_the_same_bits_and_cycles():
    # the plain-Python run is slow, so it covers the small chip: transcendentals, a reduction,
    # a conversion and an int8 and an fp16 GEMV, each compared bit for bit with the compiled
    # kernel
    assert _run("mini", nojit=True) == _run("mini")


def test_a_program_run_again_gives_the_same_bits_cycles_and_events():
    # the first run of a program uses its instruction table as decoded; a second run reorders
    # it in first-use order (faster to read, and worth it only for a program run more than
    # once): outputs, cycles, per-queue counts and every trace event must not change
    import numpy as np

    from lpu.kernels.gemv import build_gemv
    from lpu.machine import Machine
    from lpu.traces.record import instruction_events

    rng = np.random.default_rng(2)
    g = build_gemv(640, 960, "f16", "tsp-v1", weights=rng.standard_normal((640, 960)),
                   x=rng.standard_normal(960))
    m = Machine(g.program)
    seen = []
    for _ in range(3):
        r = m.run()
        ev = instruction_events(r)
        seen.append((r.cycles, m.dump("y").tobytes(), dict(r.busy),
                     {k: v.tobytes() for k, v in ev.items()}))
    assert seen[0] == seen[1] == seen[2]
