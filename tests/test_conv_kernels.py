"""The numba kernels of the fixed-point conv blocks equal the NumPy reference bit for bit.

Both backends start from the same quantised block and take the same steps: every output code,
saturation count, stored weight, bias and optimiser moment must be identical, over random
shapes, widths, rounding and overflow modes, optimisers and seeds.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spela_hw import Adam, PrecisionSpec, Sgd, load_dataset
from spela_hw.conv import ConvNetSpec
from spela_hw.conv import model as M
from spela_hw.conv.estimator import ConvSpelaClassifier
from spela_hw.conv.fixed import (
    fixed_block_forward,
    fixed_block_scores,
    fixed_block_step,
    init_fixed_block,
)
from spela_hw.conv.updates import BlockUpdates
from spela_hw.errors import ConfigError

OPTIMIZERS = {"sgd": Sgd(4.0), "adam": Adam(0.02), "momentum": Sgd(0.5, momentum=0.9)}


def _blocks(spec, precision, seed):
    state = M.init_conv_state(spec, "spela", seed, [])
    return {b: [init_fixed_block(precision, spec, k, blk, b) for k, blk in enumerate(state.blocks)]
            for b in ("reference", "numba")}


def _state(fb):
    """Every integer and optimiser array a block step may change."""
    out = [fb.w, fb.conv.biases[0], *fb.proj.weights, *fb.proj.biases]
    for layer in (fb.conv, fb.proj):
        for lst in layer.extra.get("optim", {}).get("layers", {}).values():
            out += [np.asarray(v) for _, v in sorted(lst.items())]
    return out


def _same(a, b) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _conv_step(state, x, labels, optimizer, threads):
    """One float32 SPELA step of every block, the updates on ``threads`` threads: ``(output, losses)``."""
    with BlockUpdates(threads) as updates:
        out = M.conv_spela_step(state, x, labels, optimizer, optimizer.lr, updates)
        return out, updates.join()


@settings(max_examples=30, deadline=None)
@given(cin=st.integers(1, 2), f=st.integers(1, 4), k=st.integers(1, 3), stride=st.integers(1, 2),
       pad=st.integers(0, 1), pool=st.integers(1, 2), size=st.integers(5, 9), dim=st.integers(3, 6),
       batch=st.sampled_from([1, 3, 9]), bits=st.sampled_from([4, 6, 8, 12]), weight_range=st.sampled_from([0.25, 2.0]),
       act_bits=st.sampled_from([8, 16]), rounding=st.sampled_from(["stochastic", "nearest", "truncate"]),
       overflow=st.sampled_from(["saturate", "wrap"]), optimizer=st.sampled_from(sorted(OPTIMIZERS)),
       two_blocks=st.booleans(), train_projection=st.booleans(), seed=st.integers(0, 2**16))
def test_numba_block_steps_equal_the_reference(cin, f, k, stride, pad, pool, size, dim, batch, bits, weight_range,
                                               act_bits, rounding, overflow, optimizer, two_blocks, train_projection,
                                               seed):
    layers = f"c{f}k{k}s{stride}z{pad}p{pool}" + ("-c3k1p1" if two_blocks else "") + "-d4"
    spec = ConvNetSpec.parse(layers, (cin, size, size), n_classes=4, norm="none", projection_dim=dim)
    precision = PrecisionSpec.fixed(bits, weight_range, activation_bits=act_bits, activation_range=8.0,
                                    update_rounding=rounding, overflow=overflow)
    blocks = _blocks(spec, precision, seed)
    rng = np.random.default_rng(seed)
    opt = OPTIMIZERS[optimizer]
    for step in range(3):
        x0 = rng.integers(-300, 2**act_bits // 2, (batch, cin, size, size)) * (rng.random((batch, cin, size, size)) < 0.6)
        labels = rng.integers(0, 4, batch)
        outs = {}
        for backend, fbs in blocks.items():
            x, trace = x0, []
            for j, (fb, blk) in enumerate(zip(fbs, spec.conv_blocks)):
                y, update = fixed_block_step(fb, blk, x, labels, opt, opt.lr, train_projection, seed, j, step)
                sat = update()
                trace += [y, sat, fixed_block_scores(fb, y), fixed_block_forward(fb, blk, x)[0]]
                x = y
            outs[backend] = trace
        assert all(_same(a, b) for a, b in zip(outs["reference"], outs["numba"]))
        for ref, fast in zip(blocks["reference"], blocks["numba"]):
            assert all(_same(a, b) for a, b in zip(_state(ref), _state(fast)))


def test_saturation_counts_agree_when_every_format_overflows():
    """Narrow formats and a huge learning rate: every saturation counter fires, equally."""
    spec = ConvNetSpec.parse("c3k3p2-d4", (1, 8, 8), n_classes=4, norm="none", projection_dim=3)
    precision = PrecisionSpec.fixed(4, 0.25, activation_bits=8, activation_range=1.0, update_bits=10)
    blocks = _blocks(spec, precision, 1)
    xs = np.random.default_rng(1).integers(-128, 128, (4, 4, 1, 8, 8))
    sats = {}
    for backend, (fb,) in blocks.items():
        sats[backend] = sum(fixed_block_step(fb, spec.conv_blocks[0], x, np.arange(4), Sgd(1e4), 1e4, True, 3, 0,
                                             step)[1]() for step, x in enumerate(xs))
    assert np.array_equal(sats["reference"], sats["numba"])
    assert np.all(sats["numba"][1:] > 0), sats["numba"]  # activation, update and weight formats saturated


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), log_scale=st.floats(-12, 0), qmax=st.sampled_from([3, 300, 30000]))
def test_loss_unit_equals_the_reference_on_many_terms(seed, log_scale, qmax):
    """Tens of thousands of post-synaptic terms per example: the float64 rounding of every one
    (including the rare ones that sit near a half) matches the reference."""
    from spela_hw._kernels import conv_fixed
    from spela_hw.conv.fixed import _loss_unit

    spec = ConvNetSpec.parse("c8k3p2-d10", (1, 10, 10), n_classes=10, norm="none", projection_dim=64)
    fb = _blocks(spec, PrecisionSpec.fixed(8), seed)["reference"][0]
    rng = np.random.default_rng(seed)
    q = rng.integers(-qmax, qmax + 1, (8, 64, 64)) * (rng.random((8, 64, 64)) < 0.9)
    q[0, 0] = 0  # a zero-norm projection
    labels = rng.integers(0, 10, 64)
    scale = 2.0**log_scale
    want, want_sat = _loss_unit(fb, q, labels, scale)
    got, sat = np.empty_like(q), np.zeros(4, np.int64)
    ops = fb.proj_ops
    conv_fixed.loss_unit(q, labels, fb.groups, fb.targets, fb.target_norms, scale, ops.pow2_au,
                         float(ops.lo[2]), float(ops.hi[2]), got, sat)
    assert np.array_equal(got, want) and np.array_equal(sat, want_sat)


@pytest.mark.parametrize("norm, optimizer", [("none", Adam(0.01)), ("batch", Adam(0.01)), ("batch", Sgd(1.0)),
                                             ("none", Sgd(0.5, momentum=0.9))])
def test_float_numba_steps_equal_the_reference(norm, optimizer):
    """Float32: the kernels (LeakyReLU + pool, their backward pass, Adam) run the reference's
    float32 operations element by element and the products are the reference's own BLAS calls,
    so parameters, outputs and losses are the same bits."""
    import copy

    spec = ConvNetSpec.parse("c6k5p2-c8k3z1p2-d10", (1, 16, 16), n_classes=10, norm=norm, projection_dim=12)
    ref = M.init_conv_state(spec, "spela", 3, [])
    fast, init = copy.deepcopy(ref), copy.deepcopy(ref)
    fast.backend = "numba"
    assert ref.backend == "reference"
    rng = np.random.default_rng(0)
    if norm == "none" and optimizer.kind == "adam":  # a zero image on zero biases: LeakyReLU at exactly 0
        for st in (*ref.blocks, *fast.blocks):
            st.b[...] = 0
    for _ in range(4):
        x = (rng.random((5, 1, 16, 16)) * (rng.random((5, 1, 16, 16)) < 0.5)).astype(np.float32)
        x[0] = 0
        labels = rng.integers(0, 10, 5)
        out_ref, loss_ref = _conv_step(ref, x, labels, optimizer, threads=1)
        out_fast, loss_fast = _conv_step(fast, x, labels, optimizer, threads=2)
        assert _same(out_fast, out_ref) and loss_fast == loss_ref
    for a, b, a0 in zip(ref.blocks, fast.blocks, init.blocks):
        arrays = [(name, p, b.params()[name]) for name, p in a.params().items()]
        arrays += [("projection", a.projection, b.projection), ("running_var", a.running_var, b.running_var)]
        assert all(u is None and v is None or _same(u, v) for _, u, v in arrays), [n for n, u, v in arrays]
        assert not np.array_equal(b.projection, a0.projection)  # trained
    assert sorted(ref.optim) == sorted(fast.optim) and all(_same(ref.optim[k], fast.optim[k]) for k in ref.optim
                                                           if not k.endswith(".t"))


def test_update_sums_beyond_float64_fall_back_to_exact_integers():
    """The conv update sums use float64 BLAS only when every partial sum is an integer below
    2**53; products of 2**55 take the int64 loop and stay exact."""
    from spela_hw.conv.fixed_numba import _conv_grad_sums
    from spela_hw.conv.reference import im2col

    blk = ConvNetSpec.parse("c4k5z1p1-d4", (3, 9, 9), n_classes=4, norm="none").conv_blocks[0]
    rng = np.random.default_rng(0)
    xp = np.pad(rng.integers(-2**28, 2**28, (2, 3, 9, 9)), ((0, 0), (0, 0), (1, 1), (1, 1)))
    for top in (2**10, 2**27):
        pconv = rng.integers(-top, top, (2, 4, 7, 7)) * (rng.random((2, 4, 7, 7)) < 0.5)
        gw, gb = _conv_grad_sums((xp, None), pconv, blk)
        rows = im2col(xp, 5, 1, 0)[0].reshape(-1, 75)
        want = pconv.transpose(0, 2, 3, 1).reshape(-1, 4).T @ rows  # int64, exact
        assert _same(gw.reshape(4, -1), want) and _same(gb, pconv.sum(axis=(0, 2, 3)))


@pytest.mark.parametrize("target, batch", [("pooled", 1), ("pooled", 6), ("fixed_projection", 6)])
def test_float_numba_steps_equal_the_reference_for_the_edge_read_outs(target, batch):
    """The edge read-outs on the kernels: pooled blocks (their loss in the reference's NumPy) give
    the same bits at every batch size, fixed projections (never stepped) from batch 5."""
    import copy

    spec = ConvNetSpec.parse("c6k5p2-c8k3z1p2-d10", (1, 16, 16), n_classes=10, norm="batch", projection_dim=12,
                             conv_target=target)
    ref = M.init_conv_state(spec, "spela", 3, [])
    fast = copy.deepcopy(ref)
    fast.backend = "numba"
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.random((batch, 1, 16, 16)).astype(np.float32)
        labels = rng.integers(0, 10, batch)
        out_ref, loss_ref = _conv_step(ref, x, labels, Adam(0.01), threads=1)
        out_fast, loss_fast = _conv_step(fast, x, labels, Adam(0.01), threads=2)
        assert _same(out_fast, out_ref) and loss_fast == loss_ref
    for a, b in zip(ref.blocks, fast.blocks):
        assert all(_same(p, b.params()[name]) for name, p in a.params().items())
        assert (a.projection is None) == (target == "pooled")
        assert a.projection is None or _same(a.projection, b.projection)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("norm, optimizer", [("none", Adam(0.01)), ("batch", Sgd(1.0))])
def test_float_numba_small_batches_match_the_reference_within_rounding(batch, norm, optimizer):
    """Up to ``LOSS_KERNEL_MAX`` samples the projection loss runs on a kernel that sums in its
    own order: parameters agree to float32 rounding (measured |diff| <= 2e-6 after three steps).
    (Adam on a parameter whose gradient is mathematically zero, e.g. the conv bias under
    BatchNorm, turns that rounding into steps of +-lr in either implementation, hence SGD there.)"""
    import copy

    from spela_hw.conv.float_numba import LOSS_KERNEL_MAX

    assert batch <= LOSS_KERNEL_MAX
    spec = ConvNetSpec.parse("c6k5p2-c8k3z1p2-d10", (1, 16, 16), n_classes=10, norm=norm, projection_dim=12)
    ref = M.init_conv_state(spec, "spela", 3, [])
    fast = copy.deepcopy(ref)
    fast.backend = "numba"
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = (rng.random((batch, 1, 16, 16)) * (rng.random((batch, 1, 16, 16)) < 0.5)).astype(np.float32)
        labels = rng.integers(0, 10, batch)
        out_ref, loss_ref = _conv_step(ref, x, labels, optimizer, threads=1)
        out_fast, loss_fast = _conv_step(fast, x, labels, optimizer, threads=2)
        np.testing.assert_allclose(out_fast, out_ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(loss_fast, loss_ref, rtol=1e-5)
    for a, b in zip(ref.blocks, fast.blocks):
        for name, p in a.params().items():
            np.testing.assert_allclose(b.params()[name], p, rtol=1e-5, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(b.projection, a.projection, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def mnist():
    d = load_dataset("mnist-bundled")
    return d.features("train")[:96], d.labels("train")[:96]


def _codes(clf):
    return [a for fb in clf.state_.fixed for a in (fb.w, fb.conv.biases[0], *fb.proj.weights)] + \
           [a for layer in clf.state_.dense for a in (layer.state.weights[0], layer.state.biases[0])]


@pytest.mark.parametrize("conv_target", ["projection", "fixed_projection"])
def test_estimator_backends_train_the_same_bits(mnist, conv_target):
    X, y = mnist
    kw = {"net": "c4k5p2-c6k3p2-d10", "norm": "none", "precision": PrecisionSpec.fixed(8), "batch_size": 16,
          "conv_target": conv_target, "projection_dim": 20, "random_state": 2, "epochs": 2}
    ref = ConvSpelaClassifier(backend="reference", **kw).fit(X, y)
    fast = ConvSpelaClassifier(**kw).fit(X, y)
    assert fast.backend == "numba" and fast.state_.fixed[0].backend == "numba"
    assert [type(layer.ops).__name__ for layer in (ref.state_.dense[0], fast.state_.dense[0])] == \
        ["ReferenceOps", "NumbaOps"]  # the dense layers follow the backend too
    assert all(_same(a, b) for a, b in zip(_codes(ref), _codes(fast)))
    assert np.array_equal(ref.predict_layers(X), fast.predict_layers(X))


def test_estimator_backends_train_the_same_bits_per_sample(mnist):
    X, y = mnist[0][:24], mnist[1][:24]
    kw = {"net": "c4k5p2-c6k3p2-d10", "norm": "none", "precision": PrecisionSpec.fixed(8), "batch_size": 1,
          "projection_dim": 20, "random_state": 3, "epochs": 1}
    ref = ConvSpelaClassifier(backend="reference", **kw).fit(X, y)
    fast = ConvSpelaClassifier(**kw).fit(X, y)
    assert all(_same(a, b) for a, b in zip(_codes(ref), _codes(fast)))


def test_float_estimator_backends_train_the_same_bits(mnist):
    X, y = mnist
    kw = {"net": "c4k5p2-c6k3p2-d10", "batch_size": 16, "projection_dim": 20, "random_state": 2, "epochs": 2}
    ref = ConvSpelaClassifier(backend="reference", **kw).fit(X, y)
    fast = ConvSpelaClassifier(**kw).fit(X, y)
    assert fast.state_.backend == "numba" and ref.state_.backend == "reference"
    for a, b in zip(ref.state_.blocks, fast.state_.blocks):
        assert all(_same(p, b.params()[n]) for n, p in a.params().items()) and _same(a.projection, b.projection)
    assert _same(ref.state_.dense[0].state.weights[0], fast.state_.dense[0].state.weights[0])


def test_numba_backend_resumes_a_saved_model_bit_exact(mnist, tmp_path):
    """A loaded model's projections and Adam moments are new arrays: the kernels re-stack them."""
    from spela_hw.io import load_model

    X, y = mnist
    kw = {"net": "c4k5p2-d10", "norm": "none", "precision": PrecisionSpec.fixed(8), "batch_size": 32,
          "random_state": 4, "projection_dim": 10, "conv_optimizer": Adam(0.01)}
    clf = ConvSpelaClassifier(**kw).fit(X, y)
    loaded = load_model(clf.save(tmp_path / "m"))
    assert loaded.state_.fixed[0].backend == "numba"
    clf.epochs = loaded.epochs = 2
    clf.continue_fit(X, y)
    loaded.continue_fit(X, y)
    assert all(_same(a, b) for a, b in zip(_codes(clf), _codes(loaded)))


def test_unknown_backend_is_refused(mnist):
    with pytest.raises(ConfigError) as exc:
        ConvSpelaClassifier(net="c2k5p2-d10", norm="none", backend="cuda").fit(*mnist)
    assert exc.value.field == "backend"
