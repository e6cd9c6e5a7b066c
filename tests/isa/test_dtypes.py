"""fp16/bf16 conversions done with integer operations equal numpy's and torch's, bit for bit."""

import numpy as np
import pytest

from lpu.isa import dtypes as D


def samples() -> np.ndarray:
    rng = np.random.default_rng(0)
    scaled = [rng.standard_normal(20000).astype(np.float32) * s
              for s in (1e-8, 1e-6, 1e-4, 1, 100, 1e4, 7e4)]
    raw = rng.integers(0, 2**32, 50000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    edge = np.array([0, -0.0, np.inf, -np.inf, 65504, 65519.99, 65520, 2**-24, 2**-25,
                     2**-25 * 1.0001, 2**-14], np.float32)
    return np.concatenate(scaled + [raw, edge])


def test_f32_to_f16_rounds_like_numpy():
    x = samples()
    nan = np.isnan(x)
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).view(np.uint16)
    got = D.f32_to_f16_bits(x)
    np.testing.assert_array_equal(got[~nan], ref[~nan])
    assert np.all(np.isnan(D.f16_bits_to_f32(got[nan])))  # NaN stays NaN


def test_every_f16_value_widens_exactly():
    h = np.arange(65536, dtype=np.uint16)
    ref = h.view(np.float16).astype(np.float32)
    got = D.f16_bits_to_f32(h)
    ok = ~np.isnan(ref)
    np.testing.assert_array_equal(got.view(np.uint32)[ok], ref.view(np.uint32)[ok])
    assert np.all(np.isnan(got[~ok]))


def test_f32_to_bf16_rounds_like_torch():
    torch = pytest.importorskip("torch")
    x = samples()
    nan = np.isnan(x)
    ref = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(D.f32_to_bf16_bits(x)[~nan], ref[~nan])


@pytest.mark.parametrize("dtype,np_dtype", [("i8", np.int8), ("i32", np.int32)])
def test_integer_words_are_the_same_from_the_own_type_or_a_wider_one(dtype, np_dtype):
    # int8 weights go in as int8 (a view, no int64 copy); other integer arrays are checked
    from lpu.isa.program import tensor_to_words

    info = np.iinfo(np_dtype)
    a = np.random.default_rng(3).integers(info.min, info.max, (4, 37), endpoint=True)
    own = tensor_to_words(a.astype(np_dtype), dtype, 16)
    assert np.array_equal(own, tensor_to_words(a, dtype, 16))
    with pytest.raises(ValueError, match="out of range"):
        tensor_to_words(a + (1 << 40), dtype, 16)
