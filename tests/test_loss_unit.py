"""The per-step loss unit of the numba backend (``NumbaOps.spela_post``, which runs the fused
trainer's :func:`~spela_hw._kernels.loss_unit.fx_post_sample` on each row) equals the reference's,
bit for bit in fixed point: terms, zero-norm rows and update saturations."""

import numpy as np
import pytest

from spela_hw import NetworkSpec, PrecisionSpec
from spela_hw.backends.numba_ops import NumbaOps
from spela_hw.backends.reference import ReferenceOps


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "identity"])
@pytest.mark.parametrize("loss", ["neg_cos", "log_2_minus_cos"])
@pytest.mark.parametrize("bits", [8, 6])
def test_numba_spela_post_equals_reference(activation, loss, bits):
    spec = NetworkSpec((40, 24, 10), n_classes=10, activation=activation, slope=0.01)
    precision = PrecisionSpec.fixed(bits)
    ref, fast = ReferenceOps(precision, spec), NumbaOps(precision, spec)
    rng = np.random.default_rng(bits)
    w, b, _ = ref.store_params(rng.normal(0, 0.1, (24, 40)).astype(np.float32), np.zeros(24, np.float32))
    x = ref.quantize_input(rng.random((12, 40)).astype(np.float32))
    x[3] = 0  # a sample with all-zero activations: a zero-norm event
    a, h, _ = ref.forward(w, b, x)
    v = rng.integers(-100, 100, (12, 24)).astype(np.int64)
    vnorm = np.sqrt((v.astype(np.float64) ** 2).sum(axis=1))
    for scale in (0.01, 1e3):  # the large scale saturates the update format
        p_ref, z_ref, s_ref = ref.spela_post(a, h, v, vnorm, scale, loss)
        p_fast, z_fast, s_fast = fast.spela_post(a, h, v, vnorm, scale, loss)
        np.testing.assert_array_equal(p_ref, p_fast)
        assert z_ref == z_fast >= 1
        np.testing.assert_array_equal(s_ref, s_fast)
    assert s_ref[2] > 0  # the saturation path was exercised
