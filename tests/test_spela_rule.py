"""SPELA's rule (spela_hw.rules.spela): its update is the gradient of its loss, and the fused chunk
path counts what the per-step path counts.

Gradient: one float step of every layer moves W and b by -lr times the finite-difference gradient
of that layer's batch loss, mean f(cos(h, v_y)), computed in float64 on the layer's detached
(pre-update) input, for both losses and every activation."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from spela_hw.backends import make_ops
from spela_hw.counts import COUNTERS
from spela_hw.network import init_network
from spela_hw.rules.common import new_counts
from spela_hw.rules.spela import train_batch
from spela_hw.specs import NetworkSpec, PrecisionSpec, Sgd, Spela

SLOPE = 0.1  # a LeakyReLU slope far from 1, so that a wrong gate shows


def _batch_loss(w, b, x, v, loss, activation):
    """Layer loss ``mean_n f(cos(h_n, v_n))`` in float64 (the rule's definition, docs/spela.md §1.3)."""
    a = x @ w.T + b
    h = {"leaky_relu": np.where(a > 0, a, SLOPE * a), "tanh": np.tanh(a), "identity": a}[activation]
    c = (h * v).sum(axis=1) / (np.linalg.norm(h, axis=1) * np.linalg.norm(v, axis=1))
    return np.mean(-c if loss == "neg_cos" else np.log(2.0 - c))


def _numeric_grad(fun, p, eps=1e-6):
    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + eps
        up = fun()
        p[i] = old - eps
        down = fun()
        p[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("loss", ["neg_cos", "log_2_minus_cos"])
@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "identity"])
def test_one_float_step_descends_each_layers_loss_gradient(loss, activation):
    lr, B = 1e-2, 5
    spec = NetworkSpec((6, 5, 4, 3), n_classes=3, activation=activation, slope=SLOPE)
    ops = make_ops("reference", PrecisionSpec(), spec)
    state = init_network(spec, PrecisionSpec(), ops, "auto", 1, 2, rng=np.random.default_rng(3))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(B, 6)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])
    before = [(w.astype(np.float64), b.astype(np.float64)) for w, b in zip(state.weights, state.biases)]
    inputs, h = [], x  # each layer's input: the previous layer's pre-update output, detached
    for w, b in zip(state.weights, state.biases):
        inputs.append(h.astype(np.float64))
        a, h, _ = ops.forward(w, b, h)
        if activation == "leaky_relu":
            assert (a < 0).any() and (a > 0).any()  # both branches of the gate are exercised
    train_batch(state, ops, Spela(loss=loss, optimizer=Sgd(lr)), x, y, lr, new_counts(state, "train"))
    for k, ((w, b), xk) in enumerate(zip(before, inputs)):
        v = state.vectors[k][y].astype(np.float64)
        fun = partial(_batch_loss, w, b, xk, v, loss, activation)  # reads w and b as perturbed
        gw, gb = _numeric_grad(fun, w), _numeric_grad(fun, b)
        assert np.abs(gw).max() > 1e-2  # the check is not vacuous
        np.testing.assert_allclose((state.weights[k] - w) / -lr, gw, rtol=2e-3, atol=1e-4 * np.abs(gw).max(),
                                   err_msg=f"layer {k} weights")
        np.testing.assert_allclose((state.biases[k] - b) / -lr, gb, rtol=2e-3, atol=1e-4 * np.abs(gb).max(),
                                   err_msg=f"layer {k} biases")


# -- counts: the fused chunk path of the numba backend equals the per-step path -------------------
@pytest.mark.parametrize("precision", [PrecisionSpec(), PrecisionSpec.fixed(8),
                                       PrecisionSpec.fixed(3, weight_range=0.25, activation_range=1.0)])
@pytest.mark.parametrize("loss, input_norm", [("log_2_minus_cos", "off"), ("neg_cos", "every_layer")])
def test_fused_chunk_counts_what_the_per_step_path_counts(precision, loss, input_norm):
    """Every counter, zero-norm events and saturations included: the first two samples are zero
    and the biases start at zero, so their outputs are zero at every layer (no cosine); the 3-bit
    formats saturate."""
    spec = NetworkSpec((9, 70, 5), n_classes=4, activation="leaky_relu", bias_init="zeros")
    rule = Spela(loss=loss, input_norm=input_norm, optimizer=Sgd(0.7))
    rng = np.random.default_rng(5)
    x = rng.random((11, 9)) * (rng.random((11, 9)) < 0.4)
    x[:2] = 0
    y = rng.integers(0, 4, 11)
    runs = {}
    for path in ("per_step", "fused"):
        ops = make_ops("reference" if path == "per_step" else "numba", precision, spec)
        state = init_network(spec, precision, ops, "auto", 1, 2, rng=np.random.default_rng(3))
        counts = new_counts(state, "train")
        xq = ops.quantize_input(x)
        if path == "fused":
            assert ops.spela_train_chunk(state, rule, xq, y, 0.7, 3, counts)
        else:
            for s0 in range(0, len(y), 3):
                train_batch(state, ops, rule, xq[s0:s0 + 3], y[s0:s0 + 3], 0.7, counts)
        runs[path] = counts
    step, fused = runs["per_step"], runs["fused"]
    assert (fused.samples, fused.update_steps) == (step.samples, step.update_steps) == (11, 4)
    for name in COUNTERS:
        np.testing.assert_array_equal(fused.data[name], step.data[name], err_msg=name)
    assert (step.data["zero_norm_events"] >= 2).all()
    if precision.is_fixed and precision.weight.bits == 3:
        assert step.data["saturations"].sum() > 0
