"""A decode's steps compiled partly by a forked helper (lpu.kernels.parallel) are the same
programs as compiled here, and the decode's tokens and logits the same bits; a failing helper
only means this process compiles those steps itself."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lpu.kernels import compiler as compiler_mod
from lpu.kernels import runtime
from lpu.kernels.runtime import LpuDecoder
from lpu.kernels.weights import load_weights

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")


def _same_step(a, b) -> None:
    assert (a.pos, a.predicted_cycles, a.spans) == (b.pos, b.predicted_cycles, b.spans)
    pa, pb = a.program, b.program
    assert (pa.chip, pa.source) == (pb.chip, pb.source)
    assert pa.queues.keys() == pb.queues.keys()
    for q in pa.queues:
        assert np.array_equal(pa.queues[q], pb.queues[q]), q
    assert [(s.name, s.dtype, tuple(s.shape)) for s in pa.segments] == \
        [(s.name, s.dtype, tuple(s.shape)) for s in pb.segments]
    for sa, sb in zip(pa.segments, pb.segments, strict=True):
        assert np.array_equal(sa.runs, sb.runs), sa.name
        assert (sa.data is None) == (sb.data is None), sa.name
        if sa.data is not None:
            assert np.array_equal(sa.data, sb.data), sa.name
    assert len(pa.maps) == len(pb.maps)
    for ma, mb in zip(pa.maps, pb.maps, strict=True):
        assert np.array_equal(ma, mb)


def _decode(w, helper: bool, monkeypatch):
    monkeypatch.setattr(runtime, "_cpus", lambda: 2 if helper else 1)
    dec = LpuDecoder(w, "mini", "fp16", max_context=8)
    res = dec.decode([1, 2, 3], 3)
    return dec, res


@pytest.mark.parametrize("model", ["tiny", "tiny-gpt2"])
def test_helper_steps_are_the_programs_compiled_here(model, monkeypatch):
    w = load_weights(model, seed=0)
    chip = "mini" if model == "tiny" else "tsp-v1"  # tiny-gpt2's heads are wider than mini's lanes
    monkeypatch.setattr(runtime, "_cpus", lambda: 2)
    here = LpuDecoder(w, chip, "fp16", max_context=6)
    with_helper = LpuDecoder(w, chip, "fp16", max_context=6)
    a = with_helper.decode([1, 2], 3)
    assert with_helper.from_helper == {1, 3}  # every other position of the four
    for pos in range(4):
        _same_step(here.step_program(pos), with_helper._steps[pos])
    monkeypatch.setattr(runtime, "_cpus", lambda: 1)
    b = LpuDecoder(w, chip, "fp16", max_context=6).decode([1, 2], 3)
    assert a.tokens == b.tokens
    assert np.array_equal(a.logits.view(np.uint32), b.logits.view(np.uint32))


def test_a_failing_helper_means_compiling_here(monkeypatch):
    w = load_weights("tiny", seed=0)
    parent = os.getpid()
    real = compiler_mod.Compiler.compile_step

    def only_here(self, pos):
        if os.getpid() != parent:
            raise RuntimeError("the helper fails")
        return real(self, pos)

    monkeypatch.setattr(compiler_mod.Compiler, "compile_step", only_here)
    dec, a = _decode(w, True, monkeypatch)
    assert not dec.from_helper
    monkeypatch.setattr(compiler_mod.Compiler, "compile_step", real)
    _, b = _decode(w, False, monkeypatch)
    assert a.tokens == b.tokens
    assert np.array_equal(a.logits.view(np.uint32), b.logits.view(np.uint32))
