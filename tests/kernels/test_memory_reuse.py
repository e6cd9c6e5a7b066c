"""A step's values reuse the places of values no longer read (kernels/sched.py: Scheduler.scope,
MemAlloc.free): each layer's values but its output are freed when the layer is scheduled, and
where the slices beside the VXM are full a new value takes a freed place, written only after
the last read of the value that was there. Here the run-time values get only a few words of
each slice's banks, so most of them reuse places, and the decode still agrees with the
reference, with the cycles the compiler predicted."""

import numpy as np
import pytest

from lpu.errors import LpuError
from lpu.kernels import sched
from lpu.kernels.reference import Reference
from lpu.kernels.runtime import LpuDecoder
from lpu.kernels.weights import load_weights


def _squeezed(monkeypatch, words: int) -> list[int]:
    """Leave run-time values `words` words of each slice's bank; count the freed places taken."""
    from lpu.isa.chips import get_chip

    monkeypatch.setattr(sched, "RESERVE_WORDS", get_chip("mini").bank_words - words)
    taken = [0]
    real = sched.MemAlloc._take_freed

    def count(self, *a):
        taken[0] += 1
        return real(self, *a)

    monkeypatch.setattr(sched.MemAlloc, "_take_freed", count)
    monkeypatch.setenv("LPU_THREADS", "1")  # compile here, where the counter is
    return taken


# words left to run-time values: about the least each model's steps fit in (with the scores on
# the MXM from position 2 on mini: tiny 120 and tiny-gpt2 200 words do not fit)
@pytest.mark.parametrize(("model", "words"), [("tiny", 150), ("tiny-gpt2", 250)])
def test_a_decode_whose_values_reuse_freed_places_matches_the_reference(model, words,
                                                                        monkeypatch):
    w = load_weights(model, seed=0)
    ref_tokens, ref_logits = Reference(w, "fp16", folded=True).decode([1, 2, 3], 3)
    taken = _squeezed(monkeypatch, words)
    res = LpuDecoder(w, "mini", "fp16", max_context=6).decode([1, 2, 3], 3)
    assert taken[0] > 1000  # over the six steps
    assert res.tokens == ref_tokens
    assert all(s.cycles == s.predicted for s in res.steps)
    scale = np.abs(ref_logits).max(axis=1, keepdims=True)
    assert np.all(np.abs(res.logits - ref_logits) <= 2e-3 * scale)


def test_without_freed_places_the_same_step_does_not_fit(monkeypatch):
    _squeezed(monkeypatch, 150)
    monkeypatch.setattr(sched.MemAlloc, "free", lambda self, v, after: None)
    with pytest.raises(LpuError, match="do not fit"):
        LpuDecoder(load_weights("tiny", seed=0), "mini", "fp16", max_context=6).step_program(5)


def test_a_freed_place_is_taken_only_by_a_value_written_after_its_last_read(monkeypatch):
    from lpu.isa.chips import get_chip

    chip = get_chip("mini")
    monkeypatch.setattr(sched, "RESERVE_WORDS", chip.bank_words)  # run-time values: no fresh room
    m = sched.MemAlloc(chip)
    v = m.vector("f32", chip.vxm_stage)  # data the host loads: fresh room
    m.free(v, after=100)
    anywhere = lambda u: True
    assert m.vector("f32", chip.vxm_stage, accept=anywhere, now=100) is None
    u = m.vector("f32", chip.vxm_stage, accept=anywhere, now=101)
    assert (u.slices, u.addr) == (v.slices, v.addr) and m.taken_after == 100
    with pytest.raises(LpuError, match="out of SRAM"):  # taken once: nothing is left
        m.vector("f32", chip.vxm_stage, accept=anywhere, now=500)
    w = m.vector("f32", chip.vxm_stage)  # the host's data never takes a freed place
    assert w.addr != v.addr or w.slices != v.slices
