"""The benchmark's model end to end: gpt2-small with int8 weights decoded on tsp-v1, every step
emulated (no timing rule broken), taking the cycles its schedule predicted, with the reference's
logits. Its KV cache and the weights share the weight slices (MemAlloc.open_far): position 2
of this decode once read a weight word in the cycle a K row was written to its bank."""

from __future__ import annotations

from test_compiler_vs_reference import match_reference

from lpu.kernels.runtime import LpuDecoder
from lpu.kernels.weights import load_weights


def test_gpt2_small_int8_decodes_on_tsp_v1_like_the_reference():
    w = load_weights("gpt2-small", seed=0)
    prompt, new = [464, 2068, 7586], 2
    dec = LpuDecoder(w, "tsp-v1", "int8", max_context=64)  # lpu compile's default context
    res = dec.decode(prompt, new)
    assert res.deterministic  # every step took exactly its predicted cycles
    assert len(res.cycles_per_token) == len(prompt) + new - 1
    match_reference(res, w, "int8", prompt, new)
