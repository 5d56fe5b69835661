"""The NumPy activations and gates (spela_hw.activations) equal the jitted ones the kernels call
(spela_hw._kernels.activation) bit for bit, over a grid of values for every activation."""

import numpy as np
import pytest

from spela_hw import NetworkSpec, PrecisionSpec
from spela_hw._kernels import activation as kact
from spela_hw.activations import activate, activate_fixed, gate, gate_fixed
from spela_hw.backends.common import SAT_ACTIVATION, OpsBase, backprop_constants
from spela_hw.codes import ACTIVATION_CODE

SLOPES = (0.001, 0.01, 0.2, 0.3333)


def _float_grid():
    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, 1e-45, -1e-45, 1e-38, -1e-38, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 9.0, -9.0,
             3e38, -3e38, np.finfo(np.float32).max, np.finfo(np.float32).min]
    return np.concatenate([np.array(edges, np.float32), np.linspace(-12, 12, 2001, dtype=np.float32),
                           (rng.standard_normal(2000) * 4).astype(np.float32)])


def _jitted(fn, elementwise, *args):
    """A kernel's scalar ``fn`` at each element of the arrays ``elementwise`` (then ``args``)."""
    return np.array([fn(*xs, *args) for xs in zip(*elementwise)])


def _same_bits(x, y):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype, (x.dtype, y.dtype)
    view = {4: np.int32, 8: np.int64}[x.dtype.itemsize]
    bad = np.flatnonzero(x.view(view) != y.view(view))
    assert bad.size == 0, f"{bad.size} differ, first at {bad[:5]}: {x[bad[:5]]} vs {y[bad[:5]]}"


@pytest.mark.parametrize("name", sorted(ACTIVATION_CODE))
@pytest.mark.parametrize("slope", SLOPES)
def test_float_activation_and_gate_agree(name, slope):
    act = ACTIVATION_CODE[name]
    a = _float_grid()
    h_np = activate(a, act, slope)
    h_jit = _jitted(kact.act_float, (a,), act, slope).astype(np.float32)
    if name == "tanh":  # NumPy's own float32 tanh vs the C library's tanhf that numba calls
        np.testing.assert_array_max_ulp(h_np, h_jit, maxulp=2)
        h_np = h_jit  # gate from the same h
    else:
        _same_bits(h_np, h_jit)
    g_jit = _jitted(kact.gate_float, (a, h_np), act, slope, 1.0)
    _same_bits(gate(a, h_np, act, slope), g_jit.astype(np.float64))


def _fixed_ops(name, bits, slope):
    prec = PrecisionSpec.fixed(8, activation_bits=bits, activation_range=2.0 ** (bits // 2))
    return OpsBase(prec, NetworkSpec((4, 3), n_classes=2, activation=name, slope=slope))


@pytest.mark.parametrize("name", sorted(ACTIVATION_CODE))
@pytest.mark.parametrize("bits", (8, 12, 16))
@pytest.mark.parametrize("slope", SLOPES[1:3])
def test_fixed_activation_and_gates_agree(name, bits, slope):
    ops = _fixed_ops(name, bits, slope)
    act, fmt = ops.act_code, ops.precision.activation
    lo, hi = ops.lo[SAT_ACTIVATION], ops.hi[SAT_ACTIVATION]
    a = np.arange(fmt.min_int, fmt.max_int + 1, dtype=np.int64)  # every code, both saturation edges
    if bits > 12:
        a = np.concatenate([a[:300], a[::97], a[-300:], np.arange(-300, 300)])
    h_np = activate_fixed(a, act, ops.slope_q, ops.lut, fmt.min_int)
    h_jit = _jitted(kact.act_fixed, (a,), act, np.int64(ops.slope_q), ops.lut, np.int64(fmt.min_int))
    _same_bits(h_np, h_jit.astype(np.int64))
    # SPELA's and sigprop's loss units: float64 gate of a fixed-point h
    g_jit = _jitted(kact.gate_float, (a, h_np), act, ops.slope, ops.gate_h2)
    _same_bits(gate(a, h_np, act, ops.slope, ops.gate_h2), g_jit.astype(np.float64))
    # backprop's error path: 16-fractional-bit gate, 0 at the limits of the activation format
    two_fa = backprop_constants(ops)["two_fa"]
    q_np = gate_fixed(a, h_np, act, ops.slope_q, two_fa, lo, hi)
    q_jit = _jitted(kact.gate_fixed, (a, h_np), act, np.int64(ops.slope_q), two_fa, lo, hi)
    _same_bits(q_np, q_jit.astype(np.int64))
    assert not q_np[(a == lo) | (a == hi)].any()  # no gradient through a saturated activation


def test_float_gate_squares_h_in_float64():
    """tanh's gate widens a float32 h before squaring it, as every float kernel does."""
    h = np.float32(0.1234567)
    expected = 1.0 - np.float64(h) * np.float64(h)
    assert kact.gate_float(np.float32(0.5), h, ACTIVATION_CODE["tanh"], 0.01, 1.0) == expected
    assert gate(np.array([0.5], np.float32), np.array([h]), ACTIVATION_CODE["tanh"], 0.01)[0] == expected
    assert expected != 1.0 - np.float64(h * h)  # the float32 square would differ


class _ExactProducts:
    """A device whose products are the reference's own float32 products."""

    def mvm(self, k, x, w, b):
        return x @ w.T + b

    def mvm_transposed(self, k, p, w):
        return np.asarray(p, np.float32) @ np.asarray(w, np.float32)


@pytest.mark.parametrize("name", sorted(ACTIVATION_CODE))
def test_device_paths_use_the_same_activation_and_gate_as_the_reference(name):
    """rules.common's device paths (a device's products, then the activation or gate) equal the
    reference backend bit for bit: one definition, not a float32 copy of it."""
    from spela_hw.backends.reference import ReferenceOps
    from spela_hw.rules.common import _activate, backward_error

    rng = np.random.default_rng(1)
    ops = ReferenceOps(PrecisionSpec(), NetworkSpec((20, 16, 5), n_classes=5, activation=name, slope=0.0123))
    x = rng.standard_normal((6, 20)).astype(np.float32)
    w0, b0 = (rng.standard_normal((16, 20)) * 0.3).astype(np.float32), np.zeros(16, np.float32)
    w1 = (rng.standard_normal((5, 16)) * 0.3).astype(np.float32)
    a, h, _ = ops.forward(w0, b0, x)
    _same_bits(_activate(ops, _ExactProducts().mvm(0, x, w0, b0)), h)
    p = (rng.standard_normal((6, 5)) * 1e-2).astype(np.float32)
    e_dev, _ = backward_error(ops, 1, w1, p, a, h, device=_ExactProducts())
    _same_bits(e_dev, ops.backprop_error(w1, p, a, h)[0])
