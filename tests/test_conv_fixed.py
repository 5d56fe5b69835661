"""Bit-true fixed-point conv SPELA: determinism, the conv arithmetic, learning, save/load."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spela_hw import Adam, PrecisionSpec, Sgd, load_dataset
from spela_hw.conv import ConvNetSpec
from spela_hw.conv import model as M
from spela_hw.conv.estimator import ConvSpelaClassifier
from spela_hw.conv.fixed import fixed_block_forward, init_fixed_block
from spela_hw.errors import ConfigError
from spela_hw.fixedpoint import saturate, shift_round
from spela_hw.io import load_model

P8 = PrecisionSpec.fixed(8)


@pytest.fixture(scope="module")
def mnist():
    d = load_dataset("mnist-bundled")
    return d.features("train")[:1000], d.labels("train")[:1000], d.features("test")[:500], d.labels("test")[:500]


def _fit(X, y, **kw):
    kw = {"net": "c6k5p2-d10", "norm": "none", "precision": P8, "batch_size": 32, "random_state": 5, **kw}
    return ConvSpelaClassifier(**kw).fit(X, y)


def _codes(clf):
    return [a for fb in clf.state_.fixed for a in (fb.w, fb.conv.biases[0], *fb.proj.weights)] + \
           [a for layer in clf.state_.dense for a in (layer.state.weights[0], layer.state.biases[0])]


@pytest.mark.parametrize("optimizer", [Sgd(1.0), Adam(0.01)])
def test_same_seed_same_bits(mnist, optimizer):
    X, y = mnist[0][:200], mnist[1][:200]
    a, b = _fit(X, y, conv_optimizer=optimizer), _fit(X, y, conv_optimizer=optimizer)
    assert all(u.dtype == np.int8 and np.array_equal(u, v) for u, v in zip(_codes(a), _codes(b)))
    c = _fit(X, y, conv_optimizer=optimizer, random_state=6)
    assert not np.array_equal(a.state_.fixed[0].w, c.state_.fixed[0].w)
    assert not np.array_equal(_codes(a)[0], a.state_.fixed[0].w * 0)  # trained codes, not all zero


@settings(max_examples=25, deadline=None)
@given(cin=st.integers(1, 3), f=st.integers(1, 4), k=st.integers(1, 4), stride=st.integers(1, 2),
       pad=st.integers(0, 2), size=st.integers(4, 7), seed=st.integers(0, 2**16))
def test_conv_forward_is_the_direct_integer_convolution(cin, f, k, stride, pad, size, seed):
    """im2col + the dense fixed-point forward equals a direct convolution in int64, then the
    accumulator saturation, the rounding to the activation format and the LeakyReLU of the spec."""
    spec = ConvNetSpec.parse(f"c{f}k{k}s{stride}z{pad}p1-d4", (cin, size, size), n_classes=4, norm="none",
                             projection_dim=4)
    blk = spec.conv_blocks[0]
    fb = init_fixed_block(P8, spec, 0, M.init_conv_state(spec, "spela", seed, []).blocks[0])
    rng = np.random.default_rng(seed)
    x = rng.integers(-3000, 3000, (2, cin, size, size))
    y, _, _ = fixed_block_forward(fb, blk, x)
    w, b = fb.w.astype(np.int64), fb.conv.biases[0].astype(np.int64)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    hc = (size + 2 * pad - k) // stride + 1
    acc = np.zeros((2, f, hc, hc), np.int64)
    for i in range(hc):
        for j in range(hc):
            patch = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            acc[:, :, i, j] = np.einsum("bckl,fckl->bf", patch, w)
    acc += (b << P8.activation.frac_bits)[None, :, None, None]
    acc, _ = saturate(acc, P8.accumulator, raise_on_overflow=False)
    a, _ = saturate(shift_round(acc, P8.weight.frac_bits, "nearest"), P8.activation, raise_on_overflow=False)
    slope_q = int(np.floor(spec.slope * 2**16 + 0.5))
    expected = np.where(a > 0, a, shift_round(a * slope_q, 16, "nearest"))
    assert np.array_equal(y, expected)


@pytest.mark.slow
def test_fixed_point_learns_near_float(mnist):
    X, y, Xt, yt = mnist
    fixed = _fit(X, y, epochs=2, random_state=0).score_layers(Xt, yt)
    floating = _fit(X, y, epochs=2, random_state=0, precision=None).score_layers(Xt, yt)
    assert fixed[0] > 0.55 and fixed[0] > floating[0] - 0.1  # measured 0.67 and 0.69 (c8)


def test_fixed_model_saves_loads_and_resumes_bit_exact(mnist, tmp_path):
    X, y = mnist[0][:200], mnist[1][:200]
    clf = _fit(X, y, net="c4k5p2-c4k3-d10", conv_optimizer=Adam(0.01))
    loaded = load_model(clf.save(tmp_path / "fx"))
    assert all(np.array_equal(u, v) for u, v in zip(_codes(clf), _codes(loaded)))
    clf.epochs = loaded.epochs = 2
    clf.continue_fit(X, y)
    loaded.continue_fit(X, y)
    assert all(np.array_equal(u, v) for u, v in zip(_codes(clf), _codes(loaded)))


@pytest.mark.parametrize("kw, field", [({"norm": "batch"}, "norm"), ({"conv_target": "pooled"}, "conv_target")])
def test_fixed_point_refuses_what_it_does_not_implement(mnist, kw, field):
    with pytest.raises(ConfigError) as exc:
        _fit(mnist[0][:50], mnist[1][:50], **kw)
    assert exc.value.field == field
