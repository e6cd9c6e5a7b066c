"""A decode's step compiles on two CPUs: a forked helper compiles every other position while this
process compiles and runs the rest, so a decode waits for about half as many compiles.

The helper sends each program back without its weight segments' words (the same words every
step, which this process's compiler already holds: checked by a hash of their layout sent
along), only where they go. Anything that goes wrong in the helper only means those positions
compile here, as they would have; the programs are the same either way
(tests/kernels/test_parallel_compile.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import threading

import numpy as np

from lpu.isa.program import Program, Segment
from lpu.kernels.compiler import CompiledStep, Compiler

_FRAME = struct.Struct("<QQ")  # a record: JSON header length, body length


def _held(compiler: Compiler, seg_name: str) -> tuple[str, np.ndarray] | None:
    """A weight segment's words as the compiler holds them, with a hash of their layout (the
    matrix is the same in both processes; the layout decides the order of its words)."""
    held = compiler.shared_words(seg_name)
    if held is None:
        return None
    key, words = held
    return hashlib.sha256(b"none" if key is None else b"key" + key).hexdigest(), words


def _record(st: CompiledStep, compiler: Compiler) -> bytes:
    """One compiled step as bytes (no pickle): a JSON header, then the arrays' raw bytes."""
    p = st.program
    body: list[bytes] = []
    queues = []
    for name, words in p.queues.items():
        w = np.ascontiguousarray(words, "<u8")
        queues.append([name, w.size])
        body.append(w.tobytes())
    segs = []
    for s in p.segments:
        held = _held(compiler, s.name)
        ref = held is not None and s.data is held[1]  # the receiver puts its own words back
        runs = np.ascontiguousarray(s.runs, "<i4")
        data = None if s.data is None or ref else np.ascontiguousarray(s.data, np.uint8)
        segs.append({"name": s.name, "dtype": s.dtype, "shape": list(s.shape),
                     "runs": runs.shape[0], "data": None if data is None else list(data.shape),
                     "ref": held[0] if ref else None})
        body.append(runs.tobytes())
        if data is not None:
            body.append(data.tobytes())
    maps = [np.ascontiguousarray(m, "<i2") for m in p.maps]
    body += [m.tobytes() for m in maps]
    head = json.dumps({"pos": st.pos, "cycles": st.predicted_cycles, "spans": st.spans,
                       "chip": p.chip, "source": p.source, "queues": queues, "segments": segs,
                       "maps": [m.size for m in maps]}).encode()
    payload = b"".join(body)
    return _FRAME.pack(len(head), len(payload)) + head + payload


def _step(head: dict, body: bytes, compiler: Compiler) -> CompiledStep | None:
    """A record back into a CompiledStep, the weights' words from this process's compiler
    (None when it holds them in another layout: the caller compiles that step itself)."""
    off = 0

    def take(n: int, dtype: str, shape: tuple) -> np.ndarray:
        nonlocal off
        a = np.frombuffer(body, dtype, count=n, offset=off).reshape(shape).copy()
        off += a.nbytes
        return a

    queues = {name: take(n, "<u8", (n,)) for name, n in head["queues"]}
    segments = []
    for s in head["segments"]:
        runs = take(3 * s["runs"], "<i4", (s["runs"], 3))
        data = None
        if s["ref"] is not None:
            held = _held(compiler, s["name"])
            if held is None or held[0] != s["ref"]:
                return None
            data = held[1]
            runs = compiler.shared_runs(s["name"], runs)
        elif s["data"] is not None:
            shape = tuple(s["data"])
            data = take(int(np.prod(shape)), np.uint8, shape)
        segments.append(Segment(s["name"], s["dtype"], tuple(s["shape"]), runs, data))
    maps = [take(n, "<i2", (n,)) for n in head["maps"]]
    prog = Program(head["chip"], queues, {}, segments, maps, head["source"])
    return CompiledStep(prog, head["pos"], head["cycles"], head["spans"])


class Precompiler:
    """A forked helper compiling `positions` in order; take(pos) waits for one of them."""

    def __init__(self, compiler: Compiler, positions: list[int]) -> None:
        self.positions = set(positions)
        self._got: dict[int, tuple[dict, bytes]] = {}
        self._ended = False
        self._cond = threading.Condition()
        r, w = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the helper: compile, send, and leave without running any cleanup
            code = 1
            try:
                os.close(r)
                with os.fdopen(w, "wb") as out:
                    for pos in positions:
                        out.write(_record(compiler.compile_step(pos), compiler))
                        out.flush()
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        self._reader = threading.Thread(target=self._read, args=(r,), daemon=True)
        self._reader.start()

    def _read(self, fd: int) -> None:
        try:
            with os.fdopen(fd, "rb") as f:
                while True:
                    frame = f.read(_FRAME.size)
                    if len(frame) < _FRAME.size:
                        break
                    nh, nb = _FRAME.unpack(frame)
                    head, body = f.read(nh), f.read(nb)
                    if len(head) < nh or len(body) < nb:
                        break
                    rec = json.loads(head)
                    with self._cond:
                        self._got[rec["pos"]] = (rec, body)
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def take(self, pos: int, compiler: Compiler) -> CompiledStep | None:
        """The helper's step at pos, or None (not its position, or it failed)."""
        if pos not in self.positions:
            return None
        with self._cond:
            while pos not in self._got and not self._ended:
                self._cond.wait()
            rec = self._got.pop(pos, None)
        return None if rec is None else _step(rec[0], rec[1], compiler)

    def close(self) -> None:
        """Stop the helper if it is still compiling, and reap it."""
        try:
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self._pid, 0)
        self._reader.join()

