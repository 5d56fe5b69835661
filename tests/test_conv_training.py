"""Conv SPELA and backprop: gradients of the reference, learning, save/load, bad input."""

import numpy as np
import pytest

from spela_hw import Adam, PrecisionSpec, Sgd, Spela, load_dataset
from spela_hw.conv import ConvNetSpec
from spela_hw.conv import model as M
from spela_hw.conv.estimator import (
    THREADS_MIN_BATCH,
    ConvBackpropClassifier,
    ConvSpelaClassifier,
)
from spela_hw.errors import ConfigError, ModelFileError
from spela_hw.io import load_model


@pytest.fixture(scope="module")
def mnist():
    d = load_dataset("mnist-bundled")
    return d.features("train")[:1000], d.labels("train")[:1000], d.features("test")[:500], d.labels("test")[:500]


def _numeric_check(loss_of, param, analytic, rng, n=6, eps=1e-3):
    for idx in zip(*(rng.integers(0, s, n) for s in param.shape)):
        old = param[idx]
        param[idx] = old + eps
        up = loss_of()
        param[idx] = old - eps
        down = loss_of()
        param[idx] = old
        assert analytic[idx] == pytest.approx((up - down) / (2 * eps), rel=0.05, abs=2e-4)


@pytest.mark.parametrize("target", ["projection", "pooled"])
def test_spela_block_gradient_matches_finite_differences(target):
    """The local update is the gradient of the block's own loss (float64 inputs, tiny block)."""
    spec = ConvNetSpec.parse("c4k3z1p2-d3", (2, 6, 6), n_classes=3, conv_target=target, projection_dim=5)
    st = M.init_conv_state(spec, "spela", 0, [])
    blk, b = spec.conv_blocks[0], st.blocks[0]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 2, 6, 6)).astype(np.float32)
    labels = np.array([0, 1, 2, 1, 0])

    def loss():
        rm, rv = b.running_mean.copy(), b.running_var.copy()
        y, _ = M.block_forward(b, blk, x, spec.slope, training=True)
        b.running_mean[...], b.running_var[...] = rm, rv
        return M.block_loss_grad(b, y, labels, False)[0]

    y, cache = M.block_forward(b, blk, x, spec.slope, training=True)
    _, dy, dproj = M.block_loss_grad(b, y, labels, target == "projection")
    grads, _ = M.block_backward(b, blk, dy, cache, spec.slope, need_dx=False)
    for name in ("w", "b", "gamma", "beta"):
        _numeric_check(loss, getattr(b, name), grads[name], rng)
    if target == "projection":
        _numeric_check(loss, b.projection, dproj, rng)


def test_backprop_gradient_reaches_the_input_block():
    spec = ConvNetSpec.parse("c3k3p2-c4k3-d5-d3", (1, 8, 8), n_classes=3)
    st = M.init_conv_state(spec, "backprop", 0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    labels = np.array([0, 1, 2, 1])
    snapshot = {k: v.copy() for k, v in st.blocks[0].params().items()}
    state_copy = M.init_conv_state(spec, "backprop", 0)

    def loss():
        logits = _train_mode_logits(state_copy, x)
        z = logits - logits.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(4), labels]))

    M.backprop_step(st, x, labels, Sgd(1.0), 1.0)  # SGD lr 1: the step is minus the gradient
    grad_w = snapshot["w"] - st.blocks[0].w
    _numeric_check(loss, state_copy.blocks[0].w, grad_w, rng)


def _train_mode_logits(state, x):
    h = x
    for b, blk in zip(state.blocks, state.spec.conv_blocks):
        rm, rv = b.running_mean.copy(), b.running_var.copy()
        h, _ = M.block_forward(b, blk, h, state.spec.slope, training=True)
        b.running_mean[...], b.running_var[...] = rm, rv
    h = h.reshape(len(h), -1).astype(np.float64)
    for j, (w, bias) in enumerate(state.dense):
        a = h @ w.T + bias
        h = a if j == len(state.dense) - 1 else np.where(a > 0, a, a * state.spec.slope)
    return h


@pytest.mark.slow
def test_conv_spela_and_backprop_learn_mnist(mnist):
    X, y, Xt, yt = mnist
    spela = ConvSpelaClassifier("c8k5p2-d10", epochs=2, batch_size=32, random_state=0).fit(X, y)
    accs = spela.score_layers(Xt, yt)
    assert len(accs) == 2 and accs[0] > 0.5 and accs[1] > 0.3  # measured 0.66, 0.41
    bp = ConvBackpropClassifier("c8k5p2-d10", epochs=2, batch_size=32, random_state=0).fit(X, y)
    assert bp.score(Xt, yt) > 0.6  # measured 0.80


@pytest.mark.parametrize("cls, kw", [(ConvSpelaClassifier, {}), (ConvSpelaClassifier, {"conv_target": "fixed_projection"}),
                                     (ConvBackpropClassifier, {})])
def test_save_load_round_trip_and_exact_resume(mnist, tmp_path, cls, kw):
    X, y = mnist[0][:300], mnist[1][:300]
    clf = cls("c4k5p2-c6k3-d12-d10", epochs=1, random_state=3, **kw).fit(X, y)
    loaded = load_model(clf.save(tmp_path / "conv"))
    assert type(loaded) is cls and loaded.spec_ == clf.spec_
    assert np.array_equal(loaded.predict_layers(X), clf.predict_layers(X))
    clf.epochs = loaded.epochs = 2
    clf.continue_fit(X, y)
    loaded.continue_fit(X, y)
    assert np.array_equal(loaded.predict_layers(X), clf.predict_layers(X))


def test_same_seed_same_weights(mnist):
    X, y = mnist[0][:200], mnist[1][:200]
    a = ConvSpelaClassifier("c4k5p2-d10", random_state=7).fit(X, y)
    b = ConvSpelaClassifier("c4k5p2-d10", random_state=7).fit(X, y)
    assert np.array_equal(a.state_.blocks[0].w, b.state_.blocks[0].w)
    assert np.array_equal(a.state_.blocks[0].projection, b.state_.blocks[0].projection)


def test_damaged_conv_model_file_names_the_array(mnist, tmp_path):
    X, y = mnist[0][:100], mnist[1][:100]
    path = ConvSpelaClassifier("c4k5p2-d10", random_state=0).fit(X, y).save(tmp_path / "m")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["block0.w"] = arrays["block0.w"][:2]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelFileError, match="block0.w"):
        load_model(tmp_path / "bad.npz")


@pytest.mark.parametrize("kw, field", [
    ({"net": "c4k5p2-q3"}, "net[1]"), ({"precision": PrecisionSpec.fixed(8), "norm": "none", "bp": True}, "precision"),
    ({"input_shape": (1, 20, 20)}, "input_shape"), ({"batch_size": 0}, "batch_size"),
    ({"conv_optimizer": "adam"}, "conv_optimizer"), ({"net": "c4k5p2-d7", "rule": None, "bp": True}, "net"),
])
def test_bad_parameters_name_the_field(mnist, kw, field):
    X, y = mnist[0][:50], mnist[1][:50]
    cls = ConvBackpropClassifier if kw.pop("bp", False) else ConvSpelaClassifier
    with pytest.raises(ConfigError) as exc:
        cls(**kw).fit(X, y)
    assert exc.value.field == field


def test_backprop_refuses_a_conv_optimizer_it_would_ignore(mnist):
    with pytest.raises(ConfigError, match="ignored"):
        ConvBackpropClassifier("c4k5p2-d10", conv_optimizer=Adam(0.1)).fit(mnist[0][:50], mnist[1][:50])


def test_conv_results_do_not_depend_on_blas_threads():
    """The conv trainer runs BLAS on one thread whatever the caller allows: the same bits with one
    thread or two (BLAS splits a product differently for another thread count)."""
    from threadpoolctl import threadpool_limits

    d = load_dataset("mnist-bundled")
    X, y = d.features("train")[:1500], d.y_train[:1500]
    weights = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            clf = ConvSpelaClassifier(net="c32k5p2-c64k5p2-d10", epochs=1, random_state=0).fit(X, y)
        weights.append([blk.w.copy() for blk in clf.state_.blocks] + [clf.predict_layers(X[:300])])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def _learned(clf) -> list:
    st = clf.state_
    blocks = [a for b in st.blocks for a in b.params().values()] + [b.projection for b in st.blocks]
    if st.fixed is not None:
        blocks += [a for fb in st.fixed for a in (fb.w, fb.conv.biases[0], *fb.proj.weights)]
    return blocks + [layer.state.weights[0] for layer in st.dense]


@pytest.mark.parametrize("kw", [
    {"net": "c8k5p2-c16k3p2-d10"},  # float32, BatchNorm, the projection kernels
    {"net": "c8k5p2-c16k3p2-d10", "conv_target": "pooled", "batch_size": THREADS_MIN_BATCH},  # the NumPy steps
    {"net": "c8k5p2-c16k3p2-d10", "norm": "none", "precision": PrecisionSpec.fixed(8), "batch_size": 16},
])
def test_n_jobs_runs_block_updates_beside_the_next_blocks_with_the_same_bits(mnist, kw):
    """Each block's update runs beside the forward passes after it (``n_jobs=2``), with the same
    bits as one thread, and the next block still learns from the output before the step."""
    import numba

    if numba.get_num_threads() < 2:
        pytest.skip("numba has one thread here")
    X, y = mnist[0][:160], mnist[1][:160]
    fits = [ConvSpelaClassifier(**kw, epochs=2, random_state=3, n_jobs=n).fit(X, y) for n in (1, 2)]
    assert fits[0]._threads() == 1 and fits[1]._threads() == 2
    for a, b in zip(*map(_learned, fits)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fits[0].predict_layers(X), fits[1].predict_layers(X))
    assert fits[1].set_params(batch_size=THREADS_MIN_BATCH - 1)._threads() == 1  # too short to hand over


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_raise_policy_stops_conv_training_from_any_thread(mnist, n_jobs):
    """An overflow under ``overflow="raise"`` in a block's update (on a worker thread with
    ``n_jobs=2``) stops ``fit`` with the error, as in line."""
    import traceback

    from spela_hw import SaturationError

    p = PrecisionSpec.fixed(8, (1.0, 1.0, 8.0), activation_bits=8, activation_range=2.0, overflow="raise")
    clf = ConvSpelaClassifier("c3k3p2-c4k3p2-d10", precision=p, norm="none", projection_dim=4, conv_optimizer=Sgd(100.0),
                              rule=Spela(input_norm="every_layer", optimizer=Sgd(0.01)), batch_size=8, random_state=0,
                              n_jobs=n_jobs)
    with pytest.raises(SaturationError, match="activation format") as exc:
        clf.fit(mnist[0][:64], mnist[1][:64])
    assert "update" in [frame.name for frame in traceback.extract_tb(exc.value.__traceback__)]  # the block's step


@pytest.mark.parametrize("cls, n_jobs", [(ConvSpelaClassifier, 0), (ConvSpelaClassifier, 1.5),
                                         (ConvSpelaClassifier, True), (ConvBackpropClassifier, 2)])
def test_bad_n_jobs_are_refused(mnist, cls, n_jobs):
    with pytest.raises(ConfigError) as exc:
        cls("c4k5p2-d10", n_jobs=n_jobs).fit(mnist[0][:50], mnist[1][:50])
    assert exc.value.field == "n_jobs"


def test_conv_epochs_freezes_the_blocks_and_the_head_learns_on(mnist):
    """After ``conv_epochs`` the conv blocks keep their weights; the dense layers still step."""
    X, y = mnist[0][:300], mnist[1][:300]
    one = ConvSpelaClassifier("c4k5p2-d10", epochs=1, random_state=2).fit(X, y)
    two = ConvSpelaClassifier("c4k5p2-d10", epochs=2, conv_epochs=1, random_state=2).fit(X, y)
    for name, p in one.state_.blocks[0].params().items():
        np.testing.assert_array_equal(p, two.state_.blocks[0].params()[name])
    np.testing.assert_array_equal(one.state_.blocks[0].running_mean, two.state_.blocks[0].running_mean)
    assert not np.array_equal(one.state_.dense[0].state.weights[0], two.state_.dense[0].state.weights[0])
    assert [r["lr"] for r in two.history_] == [0.01, 0.0]


def test_conv_epochs_in_fixed_point_freezes_the_codes(mnist):
    X, y = mnist[0][:200], mnist[1][:200]
    kw = dict(net="c4k5p2-d10", precision=PrecisionSpec.fixed(8), norm="none", random_state=1)
    one = ConvSpelaClassifier(epochs=1, **kw).fit(X, y)
    two = ConvSpelaClassifier(epochs=2, conv_epochs=1, **kw).fit(X, y)
    np.testing.assert_array_equal(one.state_.fixed[0].w, two.state_.fixed[0].w)
    assert one.state_.step == two.state_.step
    assert not np.array_equal(one.state_.dense[0].state.weights[0], two.state_.dense[0].state.weights[0])


@pytest.mark.parametrize("cls, value", [(ConvSpelaClassifier, -1), (ConvSpelaClassifier, 1.5),
                                        (ConvBackpropClassifier, 2)])
def test_bad_conv_epochs_are_refused(mnist, cls, value):
    with pytest.raises(ConfigError) as exc:
        cls("c4k5p2-d10", conv_epochs=value).fit(mnist[0][:50], mnist[1][:50])
    assert exc.value.field == "conv_epochs"


def test_conv_epochs_saved_and_a_file_without_it_still_loads(mnist, tmp_path):
    import json

    X, y = mnist[0][:200], mnist[1][:200]
    clf = ConvSpelaClassifier("c4k5p2-d10", epochs=1, conv_epochs=1, random_state=0).fit(X, y)
    path = clf.save(tmp_path / "m")
    assert load_model(path).conv_epochs == 1
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["params"]["conv_epochs"]  # as written before the parameter existed
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    old = load_model(tmp_path / "old.npz")
    assert old.conv_epochs is None
    np.testing.assert_array_equal(old.predict_layers(X), clf.predict_layers(X))


def test_per_layer_weight_ranges_count_conv_blocks_then_dense_layers(mnist):
    X, y = mnist[0][:100], mnist[1][:100]
    clf = ConvSpelaClassifier("c4k5p2-d10", precision=PrecisionSpec.fixed(8, (0.25, 2.0)), norm="none",
                              random_state=0).fit(X, y)
    assert clf.state_.fixed[0].conv_ops.precision.weight.frac_bits == 9  # 8 bits over [-0.25, 0.25)
    assert clf.state_.dense[0].ops.precision.weight.frac_bits == 6  # over [-2, 2)
    with pytest.raises(ConfigError) as exc:
        ConvSpelaClassifier("c4k5p2-d10", precision=PrecisionSpec.fixed(8, (0.25, 1.0, 2.0)), norm="none").fit(X, y)
    assert exc.value.field == "precision.weight_exponents"
