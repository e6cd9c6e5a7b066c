"""The generated tsp-v1 examples: right answers, and cycle counts that equal the prediction.

The arithmetic behind each golden count is in the example's docstring
(kernels/examples/tsp_examples.py); a change to the timing model or the scheduler that moves
one must update it here with the reason in the commit message.
"""

import numpy as np
import pytest

from lpu.kernels.examples import tsp_examples as ex

# Tolerances: the emulator sums fp32 in lane order, numpy in float64; products of fp16 values
# are exact in fp32, so the only difference is fp32 rounding of the sums (~1e-6 relative).
GOLDEN = {"gemv_320": (103, 1e-5), "gemv_4096": (1903, 1e-5), "rmsnorm_4096": (159, 1e-6),
          "softmax_320": (149, 1e-6)}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_example_matches_numpy_and_its_golden_cycle_count(name):
    out = ex.EXAMPLES[name]()
    cycles, tol = GOLDEN[name]
    assert out["cycles"] == out["predicted"]
    assert out["cycles"] == cycles
    err = np.max(np.abs(out["y"] - out["ref"])) / np.max(np.abs(out["ref"]))
    assert err < tol
