"""Backprop baseline: bit-exact backends, gradients, counts by hand, logit read-out, real MNIST."""

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from spela_hw import ConfigError, FixedPointFormat, PrecisionSpec
from spela_hw.backends import make_ops
from spela_hw.backends.common import exp2_tables
from spela_hw.estimator import BackpropClassifier
from spela_hw.network import init_network
from spela_hw.rules import trainer_for
from spela_hw.rules.common import new_counts
from spela_hw.rules.optim import optimizer_state_arrays, restore_optimizer_state
from spela_hw.specs import Adam, Backprop, NetworkSpec, Sgd

from strategies import fixed_precisions

OPTIMIZERS = [Sgd(0.5), Sgd(0.05, momentum=0.9), Adam(0.01)]


def _both(params, X, y):
    out = []
    for backend in ("reference", "numba"):
        out.append(BackpropClassifier(**params, backend=backend).fit(X, y))
    return out


def _data(seed, n_in, n_cls, sparsity=0.0, n=12):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in)).astype(np.float32)
    X[rng.random(X.shape) < sparsity] = 0.0
    y = rng.integers(0, n_cls, n)
    y[:n_cls] = np.arange(n_cls)
    return X, y


# -- the numba backend equals the reference ----------------------------------------------------
@settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(precision=fixed_precisions(vary_class_vector=False), hidden=st.lists(st.integers(2, 13), max_size=2),
       n_in=st.integers(2, 16), activation=st.sampled_from(["leaky_relu", "tanh", "identity"]),
       opt=st.sampled_from(OPTIMIZERS), batch=st.integers(1, 4), lr_scale=st.floats(0.05, 4.0),
       seed=st.integers(0, 2**31 - 1), sparsity=st.floats(0.0, 0.9))
def test_fixed_point_backprop_is_bit_exact(precision, hidden, n_in, activation, opt, batch, lr_scale,
                                           seed, sparsity):
    X, y = _data(seed, n_in, 3, sparsity)
    opt = replace(opt, lr=opt.lr * lr_scale)
    params = dict(layer_sizes=(*hidden, 3), precision=precision, activation=activation, slope=0.05,
                  batch_size=batch, epochs=2, random_state=seed, rule=Backprop(optimizer=opt))
    try:
        ref, fast = _both(params, X, y)
    except ConfigError:
        assume(False)
    for k in range(len(hidden) + 1):
        np.testing.assert_array_equal(ref.state_.weights[k], fast.state_.weights[k])
        np.testing.assert_array_equal(ref.state_.biases[k], fast.state_.biases[k])
    for name, v in ref.train_counts_.data.items():
        np.testing.assert_array_equal(v, fast.train_counts_.data[name], err_msg=name)
    np.testing.assert_array_equal(ref.decision_function(X), fast.decision_function(X))
    np.testing.assert_array_equal(ref.predict_layers(X), fast.predict_layers(X))


@settings(deadline=None, max_examples=25)
@given(bits=st.integers(6, 32), frac=st.integers(0, 20), n_cls=st.integers(2, 12), batch=st.integers(1, 5),
       scale=st.floats(1e-4, 10.0), seed=st.integers(0, 2**31 - 1))
def test_fixed_softmax_is_bit_exact_and_close_to_the_exact_softmax(bits, frac, n_cls, batch, scale, seed):
    """The LUT exponential: same bits in both backends, within its stated error of the real softmax."""
    p = PrecisionSpec(weight=FixedPointFormat(8, 7), activation=FixedPointFormat(bits, frac),
                      accumulator=FixedPointFormat(32, 7 + frac), class_vector=FixedPointFormat(8, 7),
                      update=FixedPointFormat(32, 24))
    spec = NetworkSpec((4, n_cls), n_classes=n_cls)
    rng = np.random.default_rng(seed)
    fmt = p.activation
    a = rng.integers(fmt.min_int, fmt.max_int + 1, (batch, n_cls))
    a[rng.random(a.shape) < 0.1] = fmt.max_int
    a[0, :] = a[0, 0]  # ties
    y = rng.integers(0, n_cls, batch)
    outs = [make_ops(b, p, spec).softmax_ce_post(a, y, scale) for b in ("reference", "numba")]
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    z = a * 2.0**-frac
    e = np.exp(z - z.max(axis=1, keepdims=True))
    exact = scale * 2.0**24 * (np.eye(n_cls)[y] - e / e.sum(axis=1, keepdims=True))
    at_limit = (a <= fmt.min_int) | (a >= fmt.max_int)
    assert np.all(outs[0][0][at_limit] == 0)  # saturated logits pass no error back
    inside = (np.abs(exact) < p.update.max_int) & ~at_limit
    # each e_c within ln2 * 2**-11 relative; the normalised probability within twice that
    bound = 2 * math.log(2) * 2**-11 * scale * 2.0**24 + 1.0
    assert np.all(np.abs(outs[0][0] - exact)[inside] <= bound)


def test_exp2_tables_are_exact_powers_of_two():
    lut, pow2neg = exp2_tables(4)
    assert lut[0] == 1.0 and lut[8] == 2.0**-0.5 and len(lut) == 16
    assert pow2neg[10] == 2.0**-10 and pow2neg[63] == 0.0


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 5),
       activation=st.sampled_from(["leaky_relu", "tanh", "identity"]), opt=st.sampled_from(OPTIMIZERS))
def test_float_backprop_agrees_within_tolerance(seed, batch, activation, opt):
    """Float paths differ only by summation order: after a few steps weights agree to ~1e-5."""
    X, y = _data(seed, 30, 4, n=10)
    params = dict(layer_sizes=(16, 4), activation=activation, batch_size=batch, epochs=1,
                  random_state=seed, rule=Backprop(optimizer=replace(opt, lr=opt.lr / 10)))
    ref, fast = _both(params, X, y)
    for k in range(2):
        np.testing.assert_allclose(ref.state_.weights[k], fast.state_.weights[k], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ref.state_.biases[k], fast.state_.biases[k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ref.decision_function(X), fast.decision_function(X), rtol=1e-4, atol=1e-4)


# -- gradients -----------------------------------------------------------------------------------
def _loss64(ws, bs, x, y, activation, slope):
    h = x.astype(np.float64)
    for k, (w, b) in enumerate(zip(ws, bs)):
        a = h @ w.T + b
        if k == len(ws) - 1:
            break
        h = {"leaky_relu": np.where(a > 0, a, slope * a), "tanh": np.tanh(a), "identity": a}[activation]
    a = a - a.max(axis=1, keepdims=True)
    return np.mean(np.log(np.exp(a).sum(axis=1)) - a[np.arange(len(y)), y])


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "identity"])
def test_float_reference_gradient_matches_finite_differences(activation):
    rng = np.random.default_rng(3)
    spec = NetworkSpec((6, 5, 4, 3), n_classes=3, activation=activation, slope=0.1)
    ops = make_ops("reference", PrecisionSpec(), spec)
    st_ = init_network(spec, PrecisionSpec(), ops, "auto", 1, 2, rng=rng)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    xs, pre, outs, h = [], [], [], x
    for w, b in zip(st_.weights, st_.biases):
        a, h_next, _ = ops.forward(w, b, h)
        xs.append(h), pre.append(a), outs.append(h_next)
        h = h_next
    p, _ = ops.softmax_ce_post(pre[-1], y, 1.0 / len(y))  # minus the gradient of the mean loss
    grads = [None] * 3
    for k in (2, 1, 0):
        grads[k] = ops.grad_sum(p, xs[k])
        if k:
            p, _ = ops.backprop_error(st_.weights[k], p, pre[k - 1], outs[k - 1])
    ws = [w.astype(np.float64) for w in st_.weights]
    bs = [b.astype(np.float64) for b in st_.biases]
    eps = 1e-6
    for k in range(3):
        for target, analytic in ((ws, grads[k][0]), (bs, grads[k][1])):
            num = np.zeros(target[k].shape)
            for idx in np.ndindex(num.shape):
                old = target[k][idx]
                target[k][idx] = old + eps
                up = _loss64(ws, bs, x, y, activation, 0.1)
                target[k][idx] = old - eps
                down = _loss64(ws, bs, x, y, activation, 0.1)
                target[k][idx] = old
                num[idx] = -(up - down) / (2 * eps)
            np.testing.assert_allclose(analytic, num, rtol=1e-3, atol=1e-5 * np.abs(num).max())


# -- counts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_counts_match_a_hand_count(backend):
    """4-3-2 network, B = 2, inputs with zeros: every counter worked out by hand."""
    X = np.array([[1.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.25, 1.0]], np.float32)
    y = np.array([0, 1])
    clf = BackpropClassifier((3, 2), batch_size=2, epochs=1, shuffle=False, random_state=5,
                             slope=0.1, backend=backend, rule=Backprop(optimizer=Sgd(0.5))).fit(X, y)
    c = clf.train_counts_
    hand = {
        "forward_macs": [2 * 3 * 4, 2 * 2 * 3],
        "forward_macs_nonzero": [3 * 4, 2 * 6],  # 4 non-zero inputs; 6 non-zero hidden outputs
        "loss_macs": [0, 2 * 2],
        "readout_macs": [0, 0],
        "update_macs": [2 * 3 * 4, 2 * 2 * 3],
        "update_macs_nonzero": [3 * 4, 2 * 6],
        "error_macs": [0, 2 * 2 * 3],
        # forward 2 x (12 + 3), update read-modify-write 15 | forward 2 x (6 + 2), transposed 2 x 6, update 8
        "weight_reads": [30 + 15, 16 + 12 + 8],
        "weight_writes": [15, 8],
        "update_writes": [3 * 3 + 3, 2 * 3 + 2],  # input column 1 is zero in both samples
        # inputs 8 + stored pre-activations 6 + update inputs 8 | h 6 + p 4 + update inputs 6
        "act_reads": [8 + 6 + 8, 6 + 4 + 6],
        # h 6 + stored pre-activations 6 + error 6 | logits/h 4 + p 4
        "act_writes": [6 + 6 + 6, 4 + 4],
        "class_vector_reads": [0, 0],
        "loss_unit_ops": [0, 2 * 2 * 2],
        "saturations": [0, 0],
        "zero_norm_events": [0, 0],
    }
    for name, v in hand.items():
        assert c[name].tolist() == v, name
    assert c.samples == 2 and c.update_steps == 1


def test_fixed_point_saturations_are_counted():
    X = np.ones((8, 5), np.float32)
    y = np.arange(8) % 2
    p = PrecisionSpec.fixed(4, activation_bits=8, activation_range=1.0)
    clf = BackpropClassifier((6, 2), precision=p, epochs=1, random_state=0, rule=Backprop(Sgd(5.0))).fit(X, y)
    assert clf.train_counts_.totals()["saturations"] > 0


# -- read-out ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", [None, PrecisionSpec.fixed(8)])
def test_last_layer_reads_out_the_logits(precision):
    X, y = _data(1, 12, 4, n=40)
    clf = BackpropClassifier((8, 4), precision=precision, epochs=3, batch_size=4, random_state=2,
                             rule=Backprop(Sgd(0.2))).fit(X, y)
    h = X.astype(np.float64)
    for k, (w, b) in enumerate(zip(clf.weights_, clf.biases_)):
        a = h @ w.T + b
        h = np.where(a > 0, a, 0.001 * a)
    scores = clf.decision_function(X)
    if precision is None:
        np.testing.assert_allclose(scores, a, rtol=1e-4, atol=1e-4)
    else:  # logits as activation-format codes
        np.testing.assert_allclose(scores * 2.0**-precision.activation.frac_bits, a, atol=0.05)
    np.testing.assert_array_equal(clf.predict(X), np.argmax(scores, axis=1))
    np.testing.assert_array_equal(clf.predict_layers(X)[-1], clf.predict(X))
    counts = clf.inference_counts(X)
    assert counts["readout_macs"].sum() == 0 and counts["class_vector_reads"].sum() == 0
    hidden = clf.inference_counts(X, exit_layer=0)  # hidden layers keep the cosine read-out
    assert hidden["readout_macs"][0] == len(X) * 4 * 8


# -- optimisers -------------------------------------------------------------------------------------
def test_optimizer_state_round_trips_and_resumes_exactly():
    X, y = _data(4, 10, 3, n=30)
    params = dict(layer_sizes=(7, 3), precision=PrecisionSpec.fixed(8), batch_size=5, random_state=9,
                  rule=Backprop(Adam(0.01)))
    full = BackpropClassifier(**params, epochs=2).fit(X, y)
    half = BackpropClassifier(**params, epochs=1).fit(X, y)
    arrays = optimizer_state_arrays(half.state_)
    assert {"optim.kind", "optim.0.m_w", "optim.1.v_b", "optim.0.t"} <= set(arrays)
    half.state_.extra.clear()
    restore_optimizer_state(half.state_, arrays)
    half.epochs = 2
    half.continue_fit(X, y)
    for k in range(2):
        np.testing.assert_array_equal(full.state_.weights[k], half.state_.weights[k])


def test_same_seed_gives_identical_weights_and_stochastic_rounding_moves_small_steps():
    X, y = _data(6, 10, 3, n=30)
    params = dict(layer_sizes=(7, 3), precision=PrecisionSpec.fixed(8), batch_size=5, epochs=1,
                  rule=Backprop(Sgd(0.01)))
    a = BackpropClassifier(**params, random_state=1).fit(X, y)
    b = BackpropClassifier(**params, random_state=1).fit(X, y)
    for k in range(2):
        np.testing.assert_array_equal(a.state_.weights[k], b.state_.weights[k])
    # lr 0.01 makes most increments far below one LSB: only stochastic rounding moves weights
    assert a.train_counts_.totals()["update_writes"] > 0
    nearest = PrecisionSpec.fixed(8, update_rounding="nearest")
    c = BackpropClassifier(**{**params, "precision": nearest}, random_state=1).fit(X, y)
    assert c.train_counts_.totals()["update_writes"] < a.train_counts_.totals()["update_writes"]


# -- bad configurations -----------------------------------------------------------------------------
def test_bad_configs_are_rejected():
    X, y = _data(0, 6, 3)
    with pytest.raises(ConfigError, match="layer_sizes"):
        BackpropClassifier((5, 4)).fit(X, y)  # last layer must have one unit per class
    with pytest.raises(ConfigError, match="optimizer"):
        Backprop(optimizer="sgd")
    with pytest.raises(ConfigError, match="optimizer.momentum"):
        Sgd(0.1, momentum=1.0)
    wide = PrecisionSpec(weight=FixedPointFormat(16, 12), activation=FixedPointFormat(16, 8),
                         accumulator=FixedPointFormat(32, 20), class_vector=FixedPointFormat(8, 7),
                         update=FixedPointFormat(32, 30))
    with pytest.raises(ConfigError, match="update.bits"):  # p W could overflow int64
        BackpropClassifier((4, 2**14, 3), precision=wide).fit(X, y)
    # the rule itself checks the network it is given
    spec = NetworkSpec((6, 4), n_classes=3)
    ops = make_ops("reference", PrecisionSpec(), spec)
    state = init_network(spec, PrecisionSpec(), ops, "auto", 0, 0, rng=np.random.default_rng(0))
    rule = Backprop()
    with pytest.raises(ConfigError, match="dims"):
        trainer_for(rule)(state, ops, rule, X[:2], y[:2], 0.1, new_counts(state, "train"))


# -- real data --------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", [None, PrecisionSpec.fixed(8)], ids=["float32", "fixed8"])
def test_backprop_learns_mnist_in_one_short_epoch(mnist, precision):
    X, y = mnist.features("train")[:5000], mnist.y_train[:5000]
    clf = BackpropClassifier((1024, 10), precision=precision, batch_size=10, epochs=1, random_state=0,
                             rule=Backprop(Sgd(0.1)))
    clf.fit(X, y)
    assert clf.score(mnist.features("test"), mnist.y_test) > 0.87


class _IdealDevice:
    """A device that stores exactly what it is asked to (the DeviceModel protocol)."""

    def __init__(self):
        self.updates = 0

    def program(self, layer, w, b):
        return w, b

    def read(self, layer, w, b):
        return w, b

    def update(self, layer, w, b, dw, db):
        self.updates += 1
        return w + dw, b + db


@pytest.mark.parametrize("opt", [Sgd(0.1), Adam(0.01)], ids=["sgd", "adam"])
def test_an_ideal_device_trains_like_no_device(opt):
    X, y = _data(8, 10, 3, n=20)
    params = dict(layer_sizes=(6, 3), batch_size=4, epochs=1, random_state=3, backend="reference",
                  rule=Backprop(opt))
    dev = _IdealDevice()
    with_dev = BackpropClassifier(**params, device=dev).fit(X, y)
    plain = BackpropClassifier(**params).fit(X, y)
    assert with_dev.device_.updates == 2 * 5
    for k in range(2):
        np.testing.assert_allclose(with_dev.state_.weights[k], plain.state_.weights[k], rtol=1e-5, atol=1e-6)
