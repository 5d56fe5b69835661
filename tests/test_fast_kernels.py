"""The fused numba SPELA path equals the per-step reference: bit for bit in fixed point (weights,
biases, stochastic-rounding stream, counts), within tolerance in float32; the number of threads
and the weight layout never change a result."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spela_hw.backends import make_ops
from spela_hw.backends.numba_fused import (ThreadChooser, fused_supported, two_cores_split,
                                          spela_train_chunk, stream_keys, update_is_fast32)
from spela_hw.errors import DataError
from spela_hw.estimator import SpelaClassifier
from spela_hw.network import init_network
from spela_hw._kernels import fixed as kfixed
from spela_hw._kernels import rounding_lanes, sr_unit
from spela_hw.rng import (SR_BITS, lowbias32, sr_bias_offsets, sr_key32, sr_offsets,
                          sr_weight_offsets, stream_key)
from spela_hw.rules.common import new_counts
from spela_hw.rules.spela import train_batch, train_chunk
from spela_hw.specs import NetworkSpec, PrecisionSpec, Sgd, Spela

SETTINGS = dict(deadline=None, max_examples=12, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

PRECISIONS = {
    "fp32": PrecisionSpec(),
    "w8": PrecisionSpec.fixed(8),
    "w4-nearest": PrecisionSpec.fixed(4, update_rounding="nearest"),
    "w6-trunc-wrap": PrecisionSpec.fixed(6, update_rounding="truncate", overflow="wrap"),
    # 32-bit activations and updates: products need int64 lanes and batch sums may exceed 2**62
    "w8-a32-u32": PrecisionSpec.fixed(8, activation_bits=32, update_bits=32),
    "w3-tiny-range": PrecisionSpec.fixed(3, weight_range=0.25, activation_range=1.0),  # saturates
}


#: The SR unit's widths the kernel tests draw (None: the precision's own, 16 by default).
SR_WIDTHS = st.sampled_from([None, 1, 3, 8, 12])


def _with_sr_bits(p, sr_bits):
    """``p`` with ``sr_bits`` random bits per synapse when it rounds stochastically."""
    if sr_bits is None or not p.is_fixed or p.update.rounding != "stochastic":
        return p
    return replace(p, sr_bits=sr_bits)


def _usable_rule(rule, p):
    """``rule`` (loss, activation, input norm), with LeakyReLU for tanh where the fixed-point
    tanh look-up table cannot serve (activations wider than 16 bits)."""
    if rule[1] == "tanh" and p.is_fixed and p.activation.bits > 16:
        return (rule[0], "leaky_relu", rule[2])
    return rule


def _data(n_in, n, n_cls, seed, density=0.35):
    rng = np.random.default_rng(seed)
    x = rng.random((n, n_in)) * (rng.random((n, n_in)) < density)
    return x, rng.integers(0, n_cls, n)


def _train(backend, prec, dims, x, y, rule, bs, lr, fused, threads=1, narrow=64, seed=0,
           chooser=None):
    spela = Spela(optimizer=Sgd(lr), loss=rule[0], input_norm=rule[2])
    spec = NetworkSpec(dims, n_classes=4, activation=rule[1])
    ops = make_ops(backend, prec, spec)
    state = init_network(spec, prec, ops, "auto", seed + 1, seed + 2,
                         rng=np.random.default_rng(seed))
    state.update_step = 7 * seed  # the rounding stream continues from any step
    counts = new_counts(state, "train")
    xq = ops.quantize_input(x)
    if fused:
        assert fused_supported(ops, spela)
        spela_train_chunk(ops, state, spela, xq, y, lr, bs, counts, threads=threads, narrow=narrow,
                          chooser=chooser)
    else:
        for s0 in range(0, len(y), bs):
            train_batch(state, ops, spela, xq[s0:s0 + bs], y[s0:s0 + bs], lr, counts)
    return state, counts


def _assert_same(s1, c1, s2, c2, exact):
    for k in range(len(s1.weights)):
        if exact:
            assert s1.weights[k].dtype == s2.weights[k].dtype
            np.testing.assert_array_equal(s1.weights[k], s2.weights[k])
            np.testing.assert_array_equal(s1.biases[k], s2.biases[k])
        else:
            np.testing.assert_allclose(s1.weights[k], s2.weights[k], rtol=1e-4, atol=2e-5)
            np.testing.assert_allclose(s1.biases[k], s2.biases[k], rtol=1e-4, atol=2e-5)
    assert s1.update_step == s2.update_step
    assert (c1.samples, c1.update_steps) == (c2.samples, c2.update_steps)
    for name in c1.data:
        np.testing.assert_array_equal(c1.data[name], c2.data[name], err_msg=name)


RULES = st.tuples(st.sampled_from(["log_2_minus_cos", "neg_cos"]),
                  st.sampled_from(["leaky_relu", "tanh", "identity"]),
                  st.sampled_from(["off", "every_layer"]))


@settings(**SETTINGS)
@given(prec=st.sampled_from(sorted(PRECISIONS)), rule=RULES,
       dims=st.sampled_from([(9, 5, 4), (12, 70, 6), (16, 66, 65, 4), (7, 4)]),
       n=st.integers(1, 11), bs=st.sampled_from([1, 1, 3, 50]), narrow=st.sampled_from([1, 64]),
       seed=st.integers(0, 2**16), lr=st.sampled_from([0.05, 0.7, 5.0]), sr_bits=SR_WIDTHS)
def test_fused_equals_reference(prec, rule, dims, n, bs, narrow, seed, lr, sr_bits):
    """Bit for bit in fixed point (float within tolerance), same counts, any layout, batch and
    width of the SR unit."""
    p = _with_sr_bits(PRECISIONS[prec], sr_bits)
    rule = _usable_rule(rule, p)
    x, y = _data(dims[0], n, 4, seed)
    ref = _train("reference", p, dims, x, y, rule, bs, lr, fused=False, seed=seed)
    fast = _train("numba", p, dims, x, y, rule, bs, lr, fused=True, narrow=narrow, seed=seed)
    _assert_same(*ref, *fast, exact=p.is_fixed)


@settings(**SETTINGS)
@given(prec=st.sampled_from(["fp32", "w8", "w6-trunc-wrap"]), bs=st.sampled_from([1, 4]),
       seed=st.integers(0, 2**16), dims=st.sampled_from([(10, 300, 260, 3), (10, 300, 7, 3)]),
       narrow=st.sampled_from([1, 64]), sr_bits=SR_WIDTHS)
def test_threads_never_change_results(prec, bs, seed, dims, narrow, sr_bits):
    """Two threads, each owning part of every layer, give exactly the one-thread result, float
    included; narrow layers too, input-major (narrow=1: odd widths split on a rounding word) or
    output-major."""
    p = _with_sr_bits(PRECISIONS[prec], sr_bits)
    x, y = _data(dims[0], 7, 3, seed)
    rule = ("log_2_minus_cos", "leaky_relu", "off")
    kw = dict(fused=True, narrow=narrow, seed=seed)
    one = _train("numba", p, dims, x, y, rule, bs, 0.5, threads=1, **kw)
    two = _train("numba", p, dims, x, y, rule, bs, 0.5, threads=2,
                 chooser=ThreadChooser(fixed=True), **kw)
    _assert_same(*one, *two, exact=True)
    # segments of a few steps, switching between one and two threads (the adaptive default)
    mixed = _train("numba", p, dims, x, y, rule, bs, 0.5, threads=2,
                   chooser=ThreadChooser(segment_samples=3 * bs, probe_samples=bs), **kw)
    _assert_same(*one, *mixed, exact=True)
    if p.is_fixed:
        ref = _train("reference", p, dims, x, y, rule, bs, 0.5, fused=False, seed=seed)
        _assert_same(*ref, *two, exact=True)


def test_int16_weights():
    """Weights of 9..16 bits are stored as int16 (one more compiled specialisation)."""
    p = PrecisionSpec.fixed(12, activation_bits=24, update_bits=30)
    for dims, narrow in (((10, 70, 3), 64), ((10, 5, 3), 1)):
        x, y = _data(dims[0], 6, 3, 11)
        rule = ("log_2_minus_cos", "leaky_relu", "off")
        ref = _train("reference", p, dims, x, y, rule, 2, 0.5, fused=False, seed=3)
        fast = _train("numba", p, dims, x, y, rule, 2, 0.5, fused=True, narrow=narrow, seed=3)
        assert fast[0].weights[0].dtype == np.int16
        _assert_same(*ref, *fast, exact=True)


@settings(**SETTINGS)
@given(prec=st.sampled_from(sorted(PRECISIONS)),
       act=st.sampled_from(["leaky_relu", "tanh", "identity"]),
       shape=st.sampled_from([(100, 30), (10, 50), (64, 3)]), nb=st.sampled_from([16, 150]),
       threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**16))
def test_batched_forward_equals_reference(prec, act, shape, nb, threads, seed):
    """ops.forward on many samples (fixed point: transposed, zero-skipping, sub-batched, threaded;
    float32: BLAS)."""
    p = PRECISIONS[prec]
    if act == "tanh" and p.is_fixed and p.activation.bits > 16:
        act = "identity"
    m, n = shape
    spec = NetworkSpec((n, m), activation=act)
    ref, fast = make_ops("reference", p, spec), make_ops("numba", p, spec)
    fast.threads = threads
    rng = np.random.default_rng(seed)
    w, b, _ = ref.store_params(rng.normal(0, 0.5, (m, n)), rng.normal(0, 0.2, m))
    x = ref.quantize_input(rng.random((nb, n)) * (rng.random((nb, n)) < 0.4))
    a1, h1, s1 = ref.forward(w, b, x)
    a2, h2, s2 = fast.forward(w, b, x)
    if p.is_fixed:
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(h1, h2)
        np.testing.assert_array_equal(s1, s2)
    else:
        np.testing.assert_allclose(a1, a2, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(h1, h2, rtol=1e-5, atol=1e-5)


@settings(**SETTINGS)
@given(prec=st.sampled_from(sorted(PRECISIONS)), shape=st.sampled_from([(100, 30), (10, 50)]),
       nb=st.sampled_from([1, 3, 20]), seed=st.integers(0, 2**16), sr_bits=SR_WIDTHS)
def test_row_major_update_equals_reference(prec, shape, nb, seed, sr_bits):
    """ops.update (the per-step path of every rule) on row-major weights."""
    p_ = _with_sr_bits(PRECISIONS[prec], sr_bits)
    m, n = shape
    spec = NetworkSpec((n, m))
    ref, fast = make_ops("reference", p_, spec), make_ops("numba", p_, spec)
    rng = np.random.default_rng(seed)
    w, b, _ = ref.store_params(rng.normal(0, 0.5, (m, n)), rng.normal(0, 0.2, m))
    x = ref.quantize_input(rng.random((nb, n)) * (rng.random((nb, n)) < 0.4))
    if p_.is_fixed:
        lo, hi = int(ref.lo[2]), int(ref.hi[2])
        p = rng.integers(lo // 4, hi // 4, (nb, m)) * (rng.random((nb, m)) < 0.7)
    else:
        p = (rng.normal(0, 0.01, (nb, m)) * (rng.random((nb, m)) < 0.7)).astype(np.float32)
    w1, b1, w2, b2 = w.copy(), b.copy(), w.copy(), b.copy()
    writes1, sat1 = ref.update(w1, b1, p, x, 987654321 + seed)
    writes2, sat2 = fast.update(w2, b2, p, x, 987654321 + seed)
    assert writes1 == writes2
    np.testing.assert_array_equal(sat1, sat2)
    if p_.is_fixed:
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(b1, b2)
    else:
        np.testing.assert_allclose(w1, w2, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(b1, b2, rtol=1e-6, atol=1e-7)


def test_sr_unit_draws_one_word_per_two_outputs():
    """The SR unit's 16-bit halves: outputs 2g, 2g+1 of input j share lowbias32(k32 + j P + g)
    (P = ceil(m / 2)), so an input's words read as uint16 are its outputs' offsets in order;
    biases use the words of a constant input n; offsets sit at the top of ``shift`` bits."""
    key, m, n = 0x1234_5678_9ABC_DEF0, 11, 7
    P = -(-m // 2)
    k32 = sr_key32(key)
    assert k32 == (key ^ (key >> 32)) & 0xFFFFFFFF
    for shift in (28, 16, 5):
        r = sr_weight_offsets(key, m, n, shift)
        assert r.shape == (m, n) and r.min() >= 0 and r.max() < 2**shift
        if shift >= SR_BITS:
            assert np.all(r % 2**(shift - SR_BITS) == 0)
    r16 = sr_weight_offsets(key, m, n, SR_BITS)
    for j in range(n + 1):
        words = lowbias32(((k32 + j * P + np.arange(P)) % 2**32).astype(np.uint32))
        lanes = words.view(np.uint16)[:m].astype(np.int64)  # little-endian: half i % 2 of i // 2
        want = r16[:, j] if j < n else sr_bias_offsets(key, m, n, SR_BITS)
        np.testing.assert_array_equal(want, lanes)
        high = (words[:m // 2] >> np.uint32(16)).astype(np.int64)
        np.testing.assert_array_equal(want[1::2], high)
    # the kernels' hash and word loop are the reference's, bit for bit (wrapping at 2**32)
    x = np.array([0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 123456789], np.uint64)
    np.testing.assert_array_equal([kfixed.lowbias32(v) for v in x], lowbias32(x.astype(np.uint32)))
    z = np.zeros(100, np.uint32)
    sr_unit.sr_words(z, 100, np.uint64(0xFFFFFFF0), 3, np.uint32(0xFFFFFFFF))
    np.testing.assert_array_equal(z, lowbias32(((0xFFFFFFF0 + 3 * np.arange(100)) % 2**32)
                                               .astype(np.uint32)))
    for w, h, shift in ((5, 0, 28), (2**32 + 5, 1, 28), (77, 1, 5), (77, 0, 16)):
        assert kfixed.sr_offset(np.uint64(key), np.uint64(w), h, shift, np.uint32(0xFFFFFFFF)) == \
            sr_offsets(key, np.array([w]), np.array([h]), shift)[0]


def test_sr_unit_rounds_truncated_sums_without_visible_bias():
    """(S + r) >> shift equals ((S >> (shift - 16)) + r16) >> 16, and its mean over many draws is
    S / 2**shift (the truncation below 16 bits biases it by less than 2**-16 of an LSB)."""
    shift = 28
    rng = np.random.default_rng(0)
    S = rng.integers(-2**40, 2**40, 4000)
    r = sr_offsets(99, np.arange(4000), np.arange(4000) % 2, shift)
    r16 = sr_offsets(99, np.arange(4000), np.arange(4000) % 2, SR_BITS)
    np.testing.assert_array_equal((S + r) >> shift, ((S >> (shift - SR_BITS)) + r16) >> SR_BITS)
    for frac in (0.3, -0.3, 0.01, 2.7):
        s = int(frac * 2**shift)
        rr = sr_offsets(12345, np.arange(40000), np.arange(40000) % 2, shift)
        mean = ((s + rr) >> shift).mean()
        assert abs(mean - s / 2**shift) < 0.01, (frac, mean)


def test_sr_offsets_are_uniform_and_unbiased_over_step_keys():
    """Over the keys of many steps, every synapse's 16-bit offset is uniform (both halves of the
    words, weights and biases) and the mean of (S + r) >> shift is S / 2**shift within a few
    standard errors of a Bernoulli mean (the truncation bias, < 2**-16 LSB, is far below)."""
    m, n, steps, shift = 33, 40, 300, 28
    keys = [stream_key(7, 0, t) for t in range(steps)]
    rw = np.stack([sr_weight_offsets(k, m, n, SR_BITS) for k in keys])  # (steps, m, n)
    rb = np.stack([sr_bias_offsets(k, m, n, SR_BITS) for k in keys])
    for r in (rw[:, 0::2], rw[:, 1::2], rb):
        counts = np.bincount((r >> 12).ravel(), minlength=16)  # 16 bins of the top 4 bits
        e = r.size / 16
        chi2 = float(((counts - e) ** 2 / e).sum())
        assert chi2 < 45, chi2  # 15 degrees of freedom: p < 1e-4
        assert abs(r.mean() / 2**16 - 0.5) < 5 * (1 / np.sqrt(12 * r.size))
    rw28 = rw.astype(np.int64) << (shift - SR_BITS)
    for frac in (0.5, 0.1, 0.9, -0.37, 3.02):
        s = int(frac * 2**shift)
        d = (s + rw28) >> shift
        f = frac - np.floor(frac)
        se = np.sqrt(max(f * (1 - f), 1e-3) / d.size)
        assert abs(d.mean() - s / 2**shift) < 5 * se, (frac, d.mean())
        # every synapse on its own sees a fair coin over the steps (no synapse is stuck)
        per = d.mean(axis=0) - np.floor(frac)
        assert np.all(np.abs(per - f) < 6 * np.sqrt(max(f * (1 - f), 1e-3) / steps))


def test_fast32_rounding_applies_to_the_usual_formats():
    spec = NetworkSpec((784, 1024, 10), n_classes=10)
    for bits in (4, 6, 8):
        assert update_is_fast32(make_ops("numba", PrecisionSpec.fixed(bits), spec))
    assert not update_is_fast32(make_ops("numba", PRECISIONS["w6-trunc-wrap"], spec))
    assert not update_is_fast32(make_ops("numba", PRECISIONS["w8-a32-u32"], spec))


def test_thread_chooser_tries_both_modes_then_prefers_the_faster():
    """Segments cover every step once, in order; after warm-up runs of both modes the faster
    one runs whole segments and the slower one only short probes, less often as it keeps losing."""
    for cost in (10.0, 0.5):  # threads 10x slower (busy cores) or 2x faster (idle cores)
        calls, now = [], [0.0]

        def run(t0, t1, par):
            calls.append((t0, t1, par))
            now[0] += (t1 - t0) * (cost if par else 1.0)  # a fake clock: simulated seconds

        ch = ThreadChooser(segment_samples=20, probe_samples=2, clock=lambda: now[0])
        ch.run_segments(run, 600, 1)
        assert calls[0][0] == 0 and calls[-1][1] == 600
        assert all(a[1] == b[0] for a, b in zip(calls, calls[1:]))
        assert {par for *_, par in calls} == {False, True}
        threaded = sum(t1 - t0 for t0, t1, par in calls if par)
        if cost > 1:
            assert threaded < 0.05 * 600  # a few probes only
            assert ch.rate[False] > ch.rate[True]
        else:
            assert threaded > 0.9 * 600
            assert ch.rate[True] > ch.rate[False]


@settings(**SETTINGS)
@given(prec=st.sampled_from(sorted(PRECISIONS)), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_quantize_input_equals_reference(prec, seed, dtype):
    """The compiled input quantisation: ties, saturation or wrap-around, huge values."""
    p = PRECISIONS[prec]
    spec = NetworkSpec((30, 5))
    ref, fast = make_ops("reference", p, spec), make_ops("numba", p, spec)
    rng = np.random.default_rng(seed)
    x = (rng.normal(0, 4, (20, 30)) * (rng.random((20, 30)) < 0.5)).astype(dtype)
    if p.is_fixed:
        lsb = 2.0**-p.activation.frac_bits
        x[0, :6] = [0.5 * lsb, -0.5 * lsb, 1.5 * lsb, 1e30, -1e30, 3 * p.activation.max_value]
    q = fast.quantize_input(x)
    np.testing.assert_array_equal(q, ref.quantize_input(x))
    assert q.dtype == ref.quantize_input(x).dtype
    if p.is_fixed:
        x[3, 4] = np.nan
        with pytest.raises(DataError):
            fast.quantize_input(x)


def test_stream_keys_match_rng():
    keys = stream_keys(123456789, 3, 41, 5)
    assert keys.dtype == np.uint64 and keys.shape == (5, 3)
    for t in range(5):
        for k in range(3):
            assert int(keys[t, k]) == stream_key(123456789, k, 41 + t)


def test_two_core_split_is_inside_the_layer_and_aligned():
    for m in (1, 2, 3, 4, 7, 10, 63, 64, 255, 256, 1000, 1024, 4097):
        s = two_cores_split(m)
        assert 0 <= s < m and (s > 0 or m < 4)
        assert s % 2 == 0  # input-major blocks start on a word of rounding bits
        if m >= 64:  # whole 64-byte lines of float32 outputs
            assert s % 16 == 0
        assert two_cores_split(m, input_major=False) == (s if m >= 64 else m // 2)


def test_unsupported_configurations_fall_back_to_the_step_path():
    """recompute order, momentum and the "raise" overflow policy run the per-step path: the chunk
    trainer still gives the step path's result."""
    spec = NetworkSpec((8, 70, 3), n_classes=3)
    x, y = _data(8, 6, 3, 5)
    for prec, rule in ((PrecisionSpec(), Spela(update_order="recompute")),
                       (PrecisionSpec.fixed(8, weight_range=1.0, overflow="raise"), Spela()),
                       (PrecisionSpec(), Spela(optimizer=Sgd(0.1, momentum=0.5)))):
        ops = make_ops("numba", prec, spec)
        assert not fused_supported(ops, rule)
        assert not ops.spela_train_chunk(None, rule, x, y, 0.1, 1, None)
        if rule.optimizer.momentum:
            continue  # SPELA rejects momentum in either path
        states = []
        for chunked in (False, True):
            st_ = init_network(spec, prec, ops, "auto", 1, 2, rng=np.random.default_rng(0))
            c = new_counts(st_, "train")
            xq = ops.quantize_input(x)
            if chunked:
                train_chunk(st_, ops, rule, xq, y, 0.1, 2, c)
            else:
                for s0 in range(0, 6, 2):
                    train_batch(st_, ops, rule, xq[s0:s0 + 2], y[s0:s0 + 2], 0.1, c)
            states.append((st_, c))
        _assert_same(*states[0], *states[1], exact=True)


def test_float_minibatches_of_wide_hidden_layers_train_step_by_step_on_blas():
    """Float32 SPELA at batch >= 16 leaves the fused kernels (nothing trained, ``False``) when the
    layers after the first hold at least as many weights (BLAS is faster there); smaller batches,
    a dominant first layer and fixed point stay fused."""
    for prec, dims, bs, fused in ((PrecisionSpec(), (8, 70, 70, 3), 16, False),
                                  (PrecisionSpec(), (8, 70, 70, 3), 15, True),
                                  (PrecisionSpec(), (64, 16, 3), 16, True),
                                  (PrecisionSpec.fixed(8), (8, 70, 70, 3), 16, True)):
        spec = NetworkSpec(dims, n_classes=3)
        x, y = _data(dims[0], 32, 3, 5)
        ops = make_ops("numba", prec, spec)
        state = init_network(spec, prec, ops, "auto", 1, 2, rng=np.random.default_rng(0))
        before = [w.copy() for w in state.weights]
        assert ops.spela_train_chunk(state, Spela(), ops.quantize_input(x), y, 0.1, bs,
                                     new_counts(state, "train")) is fused
        assert any(not np.array_equal(a, b) for a, b in zip(before, state.weights)) is fused


@pytest.mark.parametrize("prec", ["fp32", "w8"])
def test_estimator_numba_equals_reference(prec):
    """The estimator (which trains through the fused path) learns what the reference learns."""
    rng = np.random.default_rng(3)
    x = rng.random((40, 30)) * (rng.random((40, 30)) < 0.3)
    y = rng.integers(0, 3, 40)
    kw = dict(layer_sizes=(70, 3), precision=PRECISIONS[prec], random_state=4, epochs=2,
              batch_size=1, rule=Spela(optimizer=Sgd(0.2)))
    a = SpelaClassifier(backend="reference", **kw).fit(x, y)
    b = SpelaClassifier(backend="numba", **kw).fit(x, y)
    for wa, wb in zip(a.state_.weights, b.state_.weights):
        if PRECISIONS[prec].is_fixed:
            np.testing.assert_array_equal(wa, wb)
        else:
            np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=2e-5)
    for name in a.train_counts_.data:
        np.testing.assert_array_equal(a.train_counts_.data[name], b.train_counts_.data[name])
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def _two_core_args(dims, n, seed):
    """Arguments of the two-core chunk kernel, float32 (before ``spins``), its weights and its
    counters."""
    from spela_hw._kernels.buffers import N_COUNTERS
    from spela_hw._kernels.records import Activation, ChunkBuffers, Network, SpelaRule
    from spela_hw.codes import LEAKY_RELU, LOG_2_MINUS_COS, OUTPUT_MAJOR

    rng = np.random.default_rng(seed)
    L = len(dims) - 1
    x, y = _data(dims[0], n, 3, seed)
    shapes = [(dims[k + 1], dims[k]) for k in range(L)]
    layout = np.array([OUTPUT_MAJOR if m < 64 else 0 for m, _ in shapes], np.int64)
    woff = np.concatenate([[0], np.cumsum([m * k for m, k in shapes])]).astype(np.int64)
    boff = np.concatenate([[0], np.cumsum([m for m, _ in shapes])]).astype(np.int64)
    voff = np.concatenate([[0], np.cumsum([3 * m for m, _ in shapes])]).astype(np.int64)
    w = (rng.standard_normal(int(woff[-1])) * 0.1).astype(np.float32)
    b = np.zeros(int(boff[-1]), np.float32)
    v = rng.standard_normal(int(voff[-1])).astype(np.float32)
    split = np.array([m // 2 for m, _ in shapes], np.int64)
    net = Network(np.array(dims, np.int64), layout, split, w, woff, b, boff, v, voff,
                  np.ones(L * 3), 3)
    act = Activation(LEAKY_RELU, 0.01, 0, np.zeros(1, np.int64), 0, 1.0)
    counters = np.zeros((2, L, N_COUNTERS), np.int64)
    nmax = max(dims)
    bufs = ChunkBuffers(np.empty((L, 2, 1, nmax), np.float32), np.empty((L, 1, nmax), np.float32),
                        np.empty((L, 2, nmax), np.float32), np.zeros(1, np.float32))
    return (x.astype(np.float32), y, 1, net, SpelaRule(0.1, LOG_2_MINUS_COS, False), act, None,
            np.zeros((n, 0), np.uint64), bufs, counters), w, counters


def test_two_core_kernel_meets_or_gives_up_without_changing_anything():
    """With two numba threads the two halves meet and train; with one, the first waits a bounded
    time and both give up, leaving the weights untouched (the caller then runs serially)."""
    import numba

    from spela_hw._kernels.chunk import train_chunk_two_cores

    args, w, counters = _two_core_args((12, 96, 5), 6, 0)
    w0 = w.copy()
    if numba.config.NUMBA_NUM_THREADS >= 2:
        with_two = numba.get_num_threads()
        numba.set_num_threads(2)
        try:
            assert train_chunk_two_cores(*args, 10**9)
        finally:
            numba.set_num_threads(with_two)
        assert not np.array_equal(w, w0) and counters.sum() > 0
    args, w, counters = _two_core_args((12, 96, 5), 6, 0)
    saved = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert not train_chunk_two_cores(*args, 1000)
    finally:
        numba.set_num_threads(saved)
    np.testing.assert_array_equal(w, w0)
    assert counters.sum() == 0


@pytest.mark.parametrize("prec", ["fp32", "w8", "w6-trunc-wrap", "w8-a32-u32"])
@pytest.mark.parametrize("rule,batch", [(("log_2_minus_cos", "leaky_relu", "off"), 1),
                                        (("neg_cos", "tanh", "every_layer"), 1),
                                        (("log_2_minus_cos", "identity", "off"), 1),
                                        (("log_2_minus_cos", "leaky_relu", "off"), 4),
                                        (("neg_cos", "tanh", "every_layer"), 4)])
def test_two_core_path_equals_one_thread(monkeypatch, prec, rule, batch):
    """Two threads run the two-core kernel (each thread owning part of every layer) and give the
    one-thread result bit for bit, float32 included, counts too, per sample and in mini-batches
    (9 samples in batches of 4: the last step is partial)."""
    import numba

    import spela_hw.backends.numba_fused as nf

    p = PRECISIONS[prec]
    rule = _usable_rule(rule, p)
    real, met = nf.kch.train_chunk_two_cores, []
    monkeypatch.setattr(nf.kch, "train_chunk_two_cores", lambda *a: met.append(real(*a)) or met[-1])
    dims = (20, 300, 130, 3)  # two input-major layers (block-major halves), a narrow output-major one
    x, y = _data(dims[0], 9, 3, 5)
    one = _train("numba", p, dims, x, y, rule, batch, 0.5, fused=True, threads=1, seed=5)
    two = _train("numba", p, dims, x, y, rule, batch, 0.5, fused=True, threads=2, seed=5,
                 chooser=ThreadChooser(fixed=True))
    _assert_same(*one, *two, exact=True)
    if numba.config.NUMBA_NUM_THREADS >= 2:
        assert met and all(met)


def test_narrow_lane_rounding_equals_the_int64_formula():
    """The int32 / int16 lane variants of a single contribution's rounding give the int64
    formula's weights and counts, at the limits they are used for (|p x| < 2**30, weights at
    their saturation limits, every shift from 16 to 28)."""
    rng = np.random.default_rng(3)
    w = 300
    for e in (0, 1, 5, 12):
        for lo, hi in ((-128, 127), (-8, 7), (-2048, 2047)):
            x = int(rng.integers(1, 2**15))
            pm = (2**30 - 1) // x
            ps = rng.integers(-pm, pm + 1, w).astype(np.int32)
            ps[:4] = (pm, -pm, 0, 1)
            r16 = rng.integers(0, 2**16, w).astype(np.uint16)
            row0 = rng.integers(lo, hi + 1, w).astype(np.int16)
            row0[:4] = (hi, lo, hi, lo)
            want_row = row0.astype(np.int64)
            cnt0 = np.zeros(4, np.int64)
            rounding_lanes.fx_apply_px(want_row, ps, x, np.zeros(w, np.int64), r16, w, e + 16, 1, lo, hi,
                                False, True, cnt0)
            for variant in ("p32", "p16"):
                row = row0.copy()
                cnt = np.zeros(4, np.int64)
                if variant == "p32":
                    rounding_lanes.fx_apply_p32(row, ps, x, r16, w, e, lo, hi, cnt)
                else:
                    if max(-lo, hi) + 2**max(14 - e, 0) + 1 >= 32767:
                        continue
                    rounding_lanes.fx_apply_p16(row, ps, x, r16, w, e, lo, hi, cnt, np.zeros(w, np.int16))
                np.testing.assert_array_equal(row, want_row, err_msg=f"{variant} e={e}")
                np.testing.assert_array_equal(cnt, cnt0, err_msg=f"{variant} e={e}")


def test_fused_weight_buffer_is_reused_and_not_pickled():
    """The fused path keeps its laid-out weight buffer on the ops between calls (a fresh one would
    page-fault megabytes in per chunk) but a pickled estimator does not carry it."""
    import pickle

    from spela_hw.estimator import SpelaClassifier

    rng = np.random.default_rng(0)
    X = rng.random((300, 40)).astype(np.float32)
    y = np.arange(300) % 3
    clf = SpelaClassifier(layer_sizes=(128, 8), epochs=1, random_state=0, backend="numba").fit(X, y)
    buf = clf._ops.__dict__["_scratch_w_flat"]
    assert buf.size >= 40 * 128 + 128 * 8
    clf.partial_fit(X, y)
    assert clf._ops.__dict__["_scratch_w_flat"] is buf
    copy = pickle.loads(pickle.dumps(clf))
    assert not any(k.startswith("_scratch_") for k in copy._ops.__dict__)
    np.testing.assert_array_equal(copy.predict(X), clf.predict(X))
    copy.partial_fit(X, y)
    clf.partial_fit(X, y)
    for a, b in zip(copy.state_.weights, clf.state_.weights):
        np.testing.assert_array_equal(a, b)


def test_kernel_cache_is_dropped_when_any_kernel_source_changes(tmp_path):
    """numba keys a cached kernel on its own file only; the package drops the whole kernel cache
    when any kernel source changes (a caller in another file would otherwise keep stale code)."""
    from spela_hw._kernels import drop_stale_cache

    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 1\n")
    assert drop_stale_cache(tmp_path)  # first time: no stamp yet
    cache = tmp_path / "__pycache__"
    files = [cache / "a.f-1.py313.nbi", cache / "a.f-1.py313.1.nbc", cache / "a.cpython-313.pyc"]
    for f in files:
        f.write_bytes(b"compiled")
    assert not drop_stale_cache(tmp_path)  # nothing changed: the cache stays
    assert all(f.exists() for f in files)
    (tmp_path / "b.py").write_text("y = 2\n")  # a callee in another file changes
    assert drop_stale_cache(tmp_path)
    assert not files[0].exists() and not files[1].exists() and files[2].exists()
    assert not drop_stale_cache(tmp_path)
