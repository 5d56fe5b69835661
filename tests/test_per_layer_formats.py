"""Per-layer weight binary points (``PrecisionSpec.weight_exponents``): the spec, the arithmetic
of each layer, bit-exactness of every backend path, and model files."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spela_hw import ConfigError, PrecisionSpec, Sgd, Spela, SpelaClassifier
from spela_hw.backends import make_ops
from spela_hw.fixedpoint import dequantize
from spela_hw.io import load_model, save_model
from spela_hw.network import init_network
from spela_hw.specs import NetworkSpec


def test_fixed_with_one_range_per_layer():
    p = PrecisionSpec.fixed(8, weight_range=(0.25, 2.0, 0.125))
    assert p.weight.frac_bits == 9 and p.weight_exponents == (0, 3, -1)
    assert p.update.frac_bits == 10 + 16  # the update term serves the finest layer (-1)
    l1 = p.for_layer(1)
    assert (l1.weight.bits, l1.weight.frac_bits, l1.weight.max_value) == (8, 6, 2.0 - 2.0**-6)
    assert l1.accumulator.frac_bits == p.accumulator.frac_bits - 3 and l1.weight_exponents == ()
    assert p.for_layer(2).weight.frac_bits == 10
    assert PrecisionSpec.fixed(8, weight_range=[0.25]).weight_exponents == (0,)
    assert PrecisionSpec.fixed(8).weight_exponents == () and PrecisionSpec.fixed(8).for_layer(5).weight.frac_bits == 9
    assert PrecisionSpec.from_dict(p.to_dict()) == p
    assert "weight_exponents" not in PrecisionSpec.fixed(8).to_dict()  # files of one format unchanged


@pytest.mark.parametrize("make, field", [
    (lambda: PrecisionSpec.fixed(8, weight_range=()), "weight_range"),
    (lambda: PrecisionSpec.fixed(8, weight_range=(0.25, float("nan"))), "weight_range"),
    (lambda: replace(PrecisionSpec.fixed(8), weight_exponents=(0, 1.5)), "weight_exponents"),
    (lambda: replace(PrecisionSpec.fixed(8), weight_exponents=[0, 1]), "weight_exponents"),
    (lambda: replace(PrecisionSpec.fixed(8), weight_exponents=(0, 40)), "weight_exponents"),
    (lambda: PrecisionSpec(weight_exponents=(0, 1)), "weight_exponents"),
    (lambda: PrecisionSpec.from_dict({**PrecisionSpec.fixed(8).to_dict(), "weight_exponents": 3}), "weight_exponents"),
])
def test_bad_per_layer_specs_name_the_field(make, field):
    with pytest.raises(ConfigError) as e:
        make()
    assert e.value.field == field


def test_one_exponent_per_layer_is_required():
    X = np.random.default_rng(0).random((8, 5)).astype(np.float32)
    clf = SpelaClassifier((6, 3), precision=PrecisionSpec.fixed(8, weight_range=(0.25, 1, 2)), epochs=1)
    with pytest.raises(ConfigError, match="3 entries for 2 layers"):
        clf.fit(X, np.arange(8) % 3)


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_each_layer_computes_in_its_own_format(backend):
    """Layer k's fixed-point forward pass equals the real-valued one on its dequantised weights."""
    prec = PrecisionSpec.fixed(8, weight_range=(0.25, 4.0))
    spec = NetworkSpec((20, 16, 3), n_classes=3, activation="identity")
    ops = make_ops(backend, prec, spec)
    rng = np.random.default_rng(1)
    real_w = [rng.uniform(-0.25, 0.25, (16, 20)), rng.uniform(-4, 4, (3, 16))]  # layer 2 beyond ±0.25
    real_b = [rng.uniform(-0.2, 0.2, 16), rng.uniform(-3, 3, 3)]
    state = init_network(spec, prec, ops, "auto", 0, 0, weights=real_w, biases=real_b)
    x = ops.quantize_input(rng.random((5, 20)))
    act = prec.activation
    for k in range(2):
        lk = ops.layer(k)
        w, b = lk.real_params(state.weights[k], state.biases[k])
        assert np.abs(w - real_w[k]).max() <= 2.0 ** -lk.f_w  # stored to the layer's own LSB
        a, h, sat = lk.forward(state.weights[k], state.biases[k], x)
        assert not sat.any()
        expect = dequantize(x, act) @ w.T + b
        np.testing.assert_allclose(dequantize(a, act), expect, atol=2.0 ** -act.frac_bits)
        x = h


_SETTINGS = dict(deadline=None, max_examples=20, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])


@settings(**_SETTINGS)
@given(sizes=st.sampled_from([(9, 5, 4), (12, 70, 4), (16, 66, 65, 4), (7, 4)]),
       exps=st.lists(st.integers(-2, 4), min_size=3, max_size=3), bits=st.sampled_from([4, 8, 12]),
       rounding=st.sampled_from(["stochastic", "nearest"]), batch=st.sampled_from([1, 3]),
       activation=st.sampled_from(["leaky_relu", "tanh"]), lr=st.sampled_from([0.05, 2.0]),
       seed=st.integers(0, 2**16))
def test_per_layer_formats_are_bit_exact_across_backends(sizes, exps, bits, rounding, batch, activation, lr,
                                                         seed):
    """Reference, numba per-step kernels (``update_order="recompute"``) and the fused path agree
    bit for bit on weights, counts and predictions."""
    L = len(sizes) - 1
    prec = replace(PrecisionSpec.fixed(bits, update_rounding=rounding), weight_exponents=tuple(exps[:L]))
    rng = np.random.default_rng(seed)
    X = (rng.random((14, sizes[0])) * (rng.random((14, sizes[0])) < 0.5)).astype(np.float32)
    y = rng.integers(0, 4, 14)
    fits = []
    for backend, order in (("reference", "pre_update"), ("numba", "pre_update"), ("numba", "recompute")):
        rule = Spela(optimizer=Sgd(lr), update_order=order)
        clf = SpelaClassifier(sizes[1:], precision=prec, activation=activation, batch_size=batch, epochs=2,
                              rule=rule, random_state=seed, backend=backend)
        fits.append(clf.fit(X, y, classes=np.arange(4)))
    ref = fits[0]
    for other in fits[1:2]:  # same update order: same weights and counts
        for k in range(L):
            np.testing.assert_array_equal(ref.state_.weights[k], other.state_.weights[k])
            np.testing.assert_array_equal(ref.state_.biases[k], other.state_.biases[k])
        for name, v in ref.train_counts_.data.items():
            np.testing.assert_array_equal(v, other.train_counts_.data[name], err_msg=name)
        np.testing.assert_array_equal(ref.decision_function(X), other.decision_function(X))
    rec_ref = SpelaClassifier(sizes[1:], precision=prec, activation=activation, batch_size=batch, epochs=2,
                              rule=Spela(optimizer=Sgd(lr), update_order="recompute"), random_state=seed,
                              backend="reference").fit(X, y, classes=np.arange(4))
    for k in range(L):
        np.testing.assert_array_equal(rec_ref.state_.weights[k], fits[2].state_.weights[k])


def test_model_file_keeps_per_layer_formats(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.random((40, 12)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    prec = PrecisionSpec.fixed(6, weight_range=(0.5, 2.0))
    clf = SpelaClassifier((10, 3), precision=prec, epochs=2, random_state=0).fit(X, y)
    path = tmp_path / "m.npz"
    save_model(clf, path)
    back = load_model(path)
    assert back.precision_ == prec
    np.testing.assert_array_equal(back.decision_function(X), clf.decision_function(X))
    np.testing.assert_array_equal(back.weights_[1], clf.weights_[1])
