"""The numba backend equals the NumPy reference: bit for bit in fixed point, closely in float32."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from spela_hw import ConfigError, PrecisionSpec, Sgd, Spela, SpelaClassifier

from strategies import fixed_precisions


def _train_both(params, X, y):
    out = []
    for backend in ("reference", "numba"):
        clf = SpelaClassifier(**params, backend=backend)
        clf.fit(X, y)
        out.append(clf)
    return out


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(precision=fixed_precisions(),
       sizes=st.lists(st.integers(3, 17), min_size=1, max_size=3),
       n_in=st.integers(2, 20),
       activation=st.sampled_from(["leaky_relu", "tanh", "identity"]),
       loss=st.sampled_from(["neg_cos", "log_2_minus_cos"]),
       input_norm=st.sampled_from(["off", "every_layer"]),
       batch=st.integers(1, 4), lr=st.floats(0.001, 3.0), seed=st.integers(0, 2**31 - 1),
       sparsity=st.floats(0.0, 0.9))
def test_fixed_point_training_is_bit_exact(precision, sizes, n_in, activation, loss, input_norm,
                                           batch, lr, seed, sparsity):
    rng = np.random.default_rng(seed)
    X = rng.random((12, n_in)).astype(np.float32)
    X[rng.random(X.shape) < sparsity] = 0.0
    y = rng.integers(0, 3, 12)
    y[:3] = [0, 1, 2]
    params = dict(layer_sizes=tuple(sizes), precision=precision, activation=activation, batch_size=batch,
                  epochs=2, random_state=seed,
                  rule=Spela(loss=loss, input_norm=input_norm, optimizer=Sgd(lr)))
    try:
        ref, fast = _train_both(params, X, y)
    except ConfigError:
        assume(False)
    for k in range(len(sizes)):
        np.testing.assert_array_equal(ref.state_.weights[k], fast.state_.weights[k])
        np.testing.assert_array_equal(ref.state_.biases[k], fast.state_.biases[k])
    for name, v in ref.train_counts_.data.items():
        np.testing.assert_array_equal(v, fast.train_counts_.data[name], err_msg=name)
    np.testing.assert_array_equal(ref.predict_layers(X), fast.predict_layers(X))
    np.testing.assert_array_equal(ref.decision_function(X), fast.decision_function(X))


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 5),
       activation=st.sampled_from(["leaky_relu", "tanh", "identity"]),
       loss=st.sampled_from(["neg_cos", "log_2_minus_cos"]))
@example(seed=808, batch=3, activation="leaky_relu", loss="log_2_minus_cos")
def test_float_training_agrees_within_tolerance(seed, batch, activation, loss):
    """Float paths differ only by summation order: after a few steps weights agree to ~1e-4.

    Mostly to ~1e-6; but a pre-activation that lies within float32 rounding of LeakyReLU's kink can
    fall on the other side of it in one backend, and that sample's update then differs in its
    gate (hypothesis found 5.9e-5 on one output row: seed 808, batch 3, log_2_minus_cos).
    """
    rng = np.random.default_rng(seed)
    X = rng.random((10, 30)).astype(np.float32)
    y = rng.integers(0, 4, 10)
    y[:4] = [0, 1, 2, 3]
    params = dict(layer_sizes=(16, 6), activation=activation, batch_size=batch, epochs=1, random_state=seed,
                  rule=Spela(loss=loss, optimizer=Sgd(0.05)))
    ref, fast = _train_both(params, X, y)
    for k in range(2):
        np.testing.assert_allclose(ref.state_.weights[k], fast.state_.weights[k], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ref.state_.biases[k], fast.state_.biases[k], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ref.decision_function(X), fast.decision_function(X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("overflow", ["raise"])
def test_raise_policy_stops_training_on_overflow(overflow):
    from spela_hw import SaturationError

    p = PrecisionSpec.fixed(4, weight_range=1.0, overflow=overflow)
    X = np.ones((20, 8), np.float32)
    y = np.arange(20) % 2
    for backend in ("reference", "numba"):
        clf = SpelaClassifier((4, 2), precision=p, backend=backend, random_state=0,
                              rule=Spela(optimizer=Sgd(5.0)))
        with pytest.raises(SaturationError, match="weight|accumulator|activation|update"):
            clf.fit(X, y)
    with pytest.raises(SaturationError, match="weight format"):  # already at initialisation
        SpelaClassifier((4, 2), precision=PrecisionSpec.fixed(4, weight_range=0.125, overflow="raise"),
                        random_state=0).fit(X, y)
