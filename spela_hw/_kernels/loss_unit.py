"""SPELA's loss unit: one sample's post-synaptic terms ``p_i = g act'(a_i) (v_i / |v| - c h_i / |h|)
/ |h|`` (scaled) of a block of outputs, from ``|h|^2`` and ``h . v_y`` over the whole layer.
Fixed point: the reference's float64 expressions on exact int64 sums, bit-exact. Float32: the
sums in float64 in four interleaved partial sums (the reference sums in order: within
tolerance).
"""


import math

import numpy as np

from ..codes import LEAKY_RELU, NEG_COS
from . import jit
from .activation import gate_float

@jit
def fx_post_sample(a, h, m, i0, i1, vs, vn, scale, loss_code, act, pow2_au, lo_u, hi_u, p_out):
    """One sample's SPELA post-synaptic terms of outputs ``[i0, i1)`` into ``p_out`` (the
    reference's float64 expressions; ``|h|^2`` and ``h . v`` over all ``m``, exact in int64),
    from pre-activations ``a``, activations ``h``, the label's class vector ``vs`` of norm
    ``vn``, ``scale`` (learning rate / batch), the loss and activation (:class:`~.records.
    Activation`), the update format's scale ``pow2_au`` and limits ``lo_u``, ``hi_u`` (floats).
    Returns (1 for a zero-norm ``h`` (its terms are 0), update saturations).

    When the activations and class vectors fit int32 the loops convert through int32 (AVX2 has
    vector int32 <-> float64 conversions and 32 x 32 -> 64-bit products, not int64 ones), and
    ``p`` through int32 when the update format fits it: the same values."""
    act_code, slope, gate_h2 = act.code, act.slope, act.gate_h2
    lim = np.int64(1) << np.int64(31)
    p_narrow = lo_u >= -2.0**31 and hi_u < 2.0**31
    lo_hv = np.int64(0)
    hi_hv = np.int64(0)
    for i in range(m):
        lo_hv = min(lo_hv, min(h[i], vs[i]))
        hi_hv = max(hi_hv, max(h[i], vs[i]))
    narrow = -lim <= lo_hv and hi_hv < lim
    n2 = np.int64(0)
    dot = np.int64(0)
    if narrow:
        for i in range(m):
            h64 = np.int64(np.int32(h[i]))
            n2 += h64 * h64
            dot += h64 * np.int64(np.int32(vs[i]))
    else:
        for i in range(m):
            n2 += h[i] * h[i]
            dot += h[i] * vs[i]
    if n2 == 0:
        for i in range(i0, i1):
            p_out[i] = 0
        return 1, 0
    r = math.sqrt(np.float64(n2))
    c = np.float64(dot) / (r * vn)
    g = 1.0 if loss_code == NEG_COS else 1.0 / (2.0 - c)
    sc = scale * g * pow2_au / r
    A = sc / vn
    C = sc * c / r
    nsat = 0
    if narrow and act_code == LEAKY_RELU and p_narrow:  # LeakyReLU: one branch-free vector loop
        for i in range(i0, i1):
            gate = 1.0 if a[i] > 0 else slope
            # np.floor stays a float (math.floor's int64 has no vector conversion)
            t = np.floor((A * np.float64(np.int32(vs[i])) - C * np.float64(np.int32(h[i])))
                         * gate + 0.5)
            nsat += np.int64(t < lo_u) + np.int64(t > hi_u)
            t = lo_u if t < lo_u else t
            t = hi_u if t > hi_u else t
            p_out[i] = np.int32(t)
        return 0, nsat
    for i in range(i0, i1):
        gate = gate_float(a[i], h[i], act_code, slope, gate_h2)
        t = math.floor((A * np.float64(vs[i]) - C * np.float64(h[i])) * gate + 0.5)
        if t < lo_u or t > hi_u:
            nsat += 1
            t = lo_u if t < lo_u else hi_u
        p_out[i] = np.int64(t)
    return 0, nsat


@jit
def fl_post_sample(a, h, m, i0, i1, vs, scale, loss_code, act, p_out):
    """One sample's post-synaptic terms of outputs ``[i0, i1)`` (``|h|^2`` and ``h . v_y`` over
    all ``m``, float64 in four interleaved partial sums: one sum alone waits on each addition);
    returns 1 for a zero-norm ``h`` (its terms are 0)."""
    act_code, slope = act.code, act.slope
    n0 = n1 = n2_ = n3 = 0.0
    d0 = d1 = d2 = d3 = 0.0
    m4 = m - m % 4
    for i in range(0, m4, 4):
        h0, h1, h2, h3 = np.float64(h[i]), np.float64(h[i + 1]), np.float64(h[i + 2]), \
            np.float64(h[i + 3])
        n0 += h0 * h0
        n1 += h1 * h1
        n2_ += h2 * h2
        n3 += h3 * h3
        d0 += h0 * vs[i]
        d1 += h1 * vs[i + 1]
        d2 += h2 * vs[i + 2]
        d3 += h3 * vs[i + 3]
    for i in range(m4, m):
        n0 += np.float64(h[i]) * h[i]
        d0 += np.float64(h[i]) * vs[i]
    n2 = (n0 + n1) + (n2_ + n3)
    dot = (d0 + d1) + (d2 + d3)
    if n2 == 0.0:
        for i in range(i0, i1):
            p_out[i] = 0.0
        return 1
    r = math.sqrt(n2)
    c = dot / r
    g = 1.0 if loss_code == NEG_COS else 1.0 / (2.0 - c)
    kk = scale * g / r
    cr = c / r
    for i in range(i0, i1):
        # h in float64: tanh's 1 - h^2 squares in float64, as the reference
        gate = gate_float(a[i], np.float64(h[i]), act_code, slope, 1.0)
        p_out[i] = kk * gate * (vs[i] - cr * h[i])
    return 0
