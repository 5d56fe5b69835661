"""Fixed-point formats, rounding, saturation and the counter-based random numbers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spela_hw import ConfigError, FixedPointFormat, PrecisionSpec, SaturationError
from spela_hw._kernels import fixed as kfx
from spela_hw.fixedpoint import dequantize, quantize, saturate, shift_round
from spela_hw.rng import random_bits, stream_key, uniform01


def test_format_ranges_and_q_notation():
    f = FixedPointFormat(8, 7)
    assert (f.min_int, f.max_int) == (-128, 127)
    assert f.lsb == 2**-7 and f.max_value == 127 / 128
    assert str(f) == "sQ0.7"
    u = FixedPointFormat(8, 8, signed=False)
    assert (u.min_int, u.max_int) == (0, 255)


@pytest.mark.parametrize("kw, field", [
    (dict(bits=1, frac_bits=0), "bits"), (dict(bits=33, frac_bits=0), "bits"),
    (dict(bits=8.0, frac_bits=0), "bits"), (dict(bits=8, frac_bits=49), "frac_bits"),
    (dict(bits=8, frac_bits=2, rounding="up"), "rounding"),
    (dict(bits=8, frac_bits=2, overflow="clip"), "overflow"),
])
def test_bad_formats_name_the_field(kw, field):
    with pytest.raises(ConfigError) as e:
        FixedPointFormat(**kw)
    assert e.value.field == field


def test_precision_needs_all_formats_and_valid_widths():
    f = FixedPointFormat(8, 7)
    with pytest.raises(ConfigError, match="activation"):
        PrecisionSpec(weight=f)
    for bad in (1, 17, 8.5, True):
        with pytest.raises(ConfigError, match="weight_bits"):
            PrecisionSpec.fixed(bad)


def test_quantize_rounding_modes_and_saturation():
    f = FixedPointFormat(4, 1)  # values -4.0 .. 3.5 in steps of 0.5
    q, sat = quantize([0.25, -0.25, 0.74, 10.0, -10.0], f)
    assert q.tolist() == [1, 0, 1, 7, -8] and sat == 2  # half up, clipped
    t = FixedPointFormat(4, 1, rounding="truncate")
    assert quantize([0.99, -0.01], t)[0].tolist() == [1, -1]
    w = FixedPointFormat(4, 0, overflow="wrap")
    assert quantize([8.0, -9.0], w)[0].tolist() == [-8, 7]
    with pytest.raises(SaturationError):
        quantize([100.0], FixedPointFormat(4, 0, overflow="raise"))
    np.testing.assert_array_equal(dequantize(np.array([3, -2]), f), [1.5, -1.0])


def test_quantize_rejects_nan():
    from spela_hw import DataError

    with pytest.raises(DataError, match="NaN"):
        quantize([0.0, np.nan], FixedPointFormat(8, 4))


def test_stochastic_rounding_is_unbiased():
    key = stream_key(1, 0, 0)
    v = np.full(200_000, 5, dtype=np.int64)  # 5/16 = 0.3125 of one LSB
    r = random_bits(key, np.arange(len(v), dtype=np.uint64), 4)
    out = shift_round(v, 4, "stochastic", r)
    assert set(np.unique(out)) == {0, 1}
    assert abs(out.mean() - 5 / 16) < 0.005
    assert shift_round(np.array([0]), 4, "stochastic", np.array([15]))[0] == 0


def test_stream_key_is_the_vector_keys_splitmix64_chain():
    """The per-step key (Python integers) equals :func:`stream_keys` (NumPy uint64) and a
    hand-checked SplitMix64 value, negative streams and 64-bit seeds included."""
    from spela_hw.rng import splitmix64, stream_keys

    assert int(splitmix64(np.array([0], np.uint64))[0]) == 0xE220A8397B1DCDAF  # SplitMix64 of seed 0
    rng = np.random.default_rng(5)
    for seed, step in zip(rng.integers(0, 2**63, 20), rng.integers(0, 2**40, 20)):
        streams = np.array([-3, 0, 1, 7, 20_000 + 31])
        expected = stream_keys(int(seed) * 2 + 1, streams, int(step))
        assert [stream_key(int(seed) * 2 + 1, int(s), int(step)) for s in streams] == [int(k) for k in expected]


def test_uniform_and_keys_are_reproducible_and_distinct():
    a = uniform01(stream_key(7, 1, 3), np.arange(1000, dtype=np.uint64))
    b = uniform01(stream_key(7, 1, 3), np.arange(1000, dtype=np.uint64))
    c = uniform01(stream_key(7, 1, 4), np.arange(1000, dtype=np.uint64))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert 0 <= a.min() and a.max() < 1 and abs(a.mean() - 0.5) < 0.05


@settings(deadline=None, max_examples=80)
@given(v=st.integers(-(2**40), 2**40), shift=st.integers(-8, 30), mode=st.sampled_from([0, 1, 2]),
       rseed=st.integers(0, 2**30))
def test_kernel_shift_round_equals_reference(v, shift, mode, rseed):
    names = ("nearest", "stochastic", "truncate")
    r = rseed % (1 << shift) if shift > 0 else 0
    ref = shift_round(np.array([v]), shift, names[mode], np.array([r]))[0]
    assert kfx.shift_round(np.int64(v), shift, mode, np.int64(r)) == ref


@settings(deadline=None, max_examples=60)
@given(v=st.integers(-(2**20), 2**20), bits=st.integers(2, 16), wrap=st.booleans())
def test_kernel_saturate_equals_reference(v, bits, wrap):
    f = FixedPointFormat(bits, 0, overflow="wrap" if wrap else "saturate")
    ref, n = saturate(np.array([v]), f)
    sat = np.zeros(4, np.int64)
    out = kfx.saturate(np.int64(v), np.int64(f.min_int), np.int64(f.max_int), int(wrap), sat, 0)
    assert out == ref[0] and sat[0] == n
