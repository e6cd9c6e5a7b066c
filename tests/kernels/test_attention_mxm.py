"""Attention with the scores on an MXM plane (kernels/attention.py) decodes like the reference.

On `mini` (16 lanes) a few dozen positions already take several 16-row plane loads, so these
decodes cover: scores over more than one chunk of positions (the last window's lanes past
the positions set to -inf), packing windows of head_dim positions that straddle two chunks (head_dim 6), two
heads in a vector and a vector with a head slot and lanes of no head (5 heads of 6 lanes, two
a vector), grouped-query attention, and both families. Compared as there:
test_compiler_vs_reference.match_reference (its tolerance and reasons).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_compiler_vs_reference import match_reference

from lpu.isa.encoding import OPCODE_SHIFT
from lpu.isa.table import BY_MNEMONIC
from lpu.kernels.config import PRESETS, ModelConfig
from lpu.kernels.runtime import LpuDecoder
from lpu.kernels.weights import random_weights

# llama, head_dim 6: windows of 6 positions straddle the 16-lane chunks; 5 heads two a vector
ODD = ModelConfig("odd-heads", "llama", 64, 30, 1, 5, 1, 6, 40, 64, 1e-5, 10000.0, False)


def _mv_count(program) -> int:
    mv = BY_MNEMONIC["mv"].opcode
    return sum(int((np.asarray(words, np.uint64) >> np.uint64(OPCODE_SHIFT) == mv).sum())
               for words in program.queues.values())


@pytest.mark.parametrize(("cfg", "chip"), [(PRESETS["tiny"], "mini"), (PRESETS["tiny-gpt2"], "mini"),
                                           (ODD, "mini"), (PRESETS["tiny"], "tsp-v1")],
                         ids=["tiny", "tiny-gpt2", "odd-heads", "tiny-tsp-v1"])
def test_mxm_scores_decode_like_the_reference(cfg, chip):
    # on tsp-v1 tiny's 4 heads share one 320-lane vector, and one plane load holds every
    # position
    w = random_weights(cfg, 0)
    prompt = [(7 * i + 3) % cfg.vocab_size for i in range(18)]
    new = 3
    dec = LpuDecoder(w, chip, "fp16", max_context=len(prompt) + new)
    dec.compiler.attention_mxm_from = 1  # every step on the plane path
    res = dec.decode(prompt, new)
    assert res.deterministic
    match_reference(res, w, "fp16", prompt, new)


@pytest.mark.parametrize("cfg", [PRESETS["tiny"], ODD], ids=["tiny", "odd-heads"])
def test_running_sums_decode_like_the_reference(cfg, monkeypatch):
    # the weighted sum in running sums of WS_RUN positions from the first plane-path step
    # on (18 + 3 positions: up to 3 runs, the last one shorter), not pairs and a tree
    import lpu.kernels.attention as att

    monkeypatch.setattr(att, "WS_CHAIN_WORK", 1)
    w = random_weights(cfg, 0)
    prompt = [(5 * i + 1) % cfg.vocab_size for i in range(18)]
    dec = LpuDecoder(w, "mini", "fp16", max_context=len(prompt) + 3)
    dec.compiler.attention_mxm_from = 1
    res = dec.decode(prompt, 3)
    assert res.deterministic
    match_reference(res, w, "fp16", prompt, 3)


def test_the_plane_path_is_the_one_that_ran():
    # the last step attends to 20 positions: two 16-row chunks, one product per head and chunk
    cfg = ODD
    dec = LpuDecoder(random_weights(cfg, 0), "mini", "fp16", max_context=20)
    c = dec.compiler
    c.attention_mxm_from = 10 ** 9
    vxm = _mv_count(c.compile_step(19).program)
    c.attention_mxm_from = 1
    mxm = _mv_count(c.compile_step(19).program)
    assert mxm - vxm == cfg.n_layers * cfg.n_heads * 2
