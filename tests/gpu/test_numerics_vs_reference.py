"""The GPU model's numerics against the shared numpy reference (kernels/reference.py).

Both follow the same recipe (fp16-rounded matmul inputs, fp32 accumulation, fp32 elsewhere);
the GPU sums in tiles and trees instead of in order, so logits differ in the low bits only.
"""

import numpy as np
import pytest

from lpu.gpu.numerics import greedy_decode
from lpu.kernels.reference import Reference
from lpu.kernels.weights import load_weights


@pytest.mark.parametrize("model", ["tiny", "tiny-gpt2"])
@pytest.mark.parametrize("wdt", ["fp16", "int8"])
def test_gpu_numerics_agree_with_the_reference(model, wdt):
    w = load_weights(model, seed=0)
    ref_tokens, ref_logits = Reference(w, wdt).decode([1, 2, 3], 4)
    tokens, logits = greedy_decode(w, [1, 2, 3], 4, dtype="fp16",
                                   weights_dtype="int8" if wdt == "int8" else None)
    assert logits.shape == ref_logits.shape
    # a different fp32 summation order moves a sum by ~1e-7 relative; one fp16 rounding flip
    # of a matmul input moves a logit by ~1e-3 of its scale
    assert np.max(np.abs(logits - ref_logits)) < 5e-3 * np.max(np.abs(ref_logits))
    assert tokens == ref_tokens
