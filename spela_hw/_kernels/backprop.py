"""Backprop kernels: the softmax cross-entropy loss unit, the error path ``W^T delta`` and the
gradient sum ``p^T x``. Fixed-point kernels are bit-exact twins of
:class:`spela_hw.backends.reference.ReferenceOps` (see its ``softmax_ce_post``,
``backprop_error`` and ``grad_sum``); float kernels accumulate in float64."""

import math

import numpy as np

from ..codes import NEAREST, SATURATE
from . import jit
from .activation import gate_fixed, gate_float
from .fixed import _nonzero_columns
from .generic import row_max
from .rounding import saturate, shift_round


@jit
def softmax_ce_post_fixed(a, y, c1, q, lut, pow2neg, sc, lo_a, hi_a, lo_u, hi_u, p_out, sat):
    """p = floor(sc * (onehot(y) - softmax(a * 2**-f_a)) + 1/2), saturated; base-2 LUT exponential.

    ``c1 = log2(e) * 2**(q - f_a)``; ``e_c = lut[k & (2**q - 1)] * pow2neg[min(k >> q, 63)]``
    with ``k = floor((max(a) - a_c) * c1 + 1/2)``; the exponentials are summed in class order.
    Logits at a limit of the activation format ``[lo_a, hi_a]`` get ``p = 0``.
    """
    nb, nc = a.shape
    mask = (np.int64(1) << np.int64(q)) - 1
    e = np.empty(nc, np.float64)
    for s in range(nb):
        zmax = row_max(a, s)
        tot = 0.0
        for c in range(nc):
            k = np.int64(math.floor(np.float64(zmax - a[s, c]) * c1 + 0.5))
            hi = k >> np.int64(q)
            if hi > 63:
                hi = 63
            e[c] = lut[k & mask] * pow2neg[hi]
            tot += e[c]
        for c in range(nc):
            prob = e[c] / tot
            d = 1.0 - prob if c == y[s] else -prob
            t = math.floor(sc * d + 0.5)
            if a[s, c] <= lo_a or a[s, c] >= hi_a:
                t = 0.0
            p_out[s, c] = np.int64(saturate(t, lo_u, hi_u, SATURATE, sat, 2))


@jit
def softmax_ce_post_float(a, y, scale, p_out):
    """p = scale * (onehot(y) - softmax(a)), max-subtracted, float64 inside."""
    nb, nc = a.shape
    e = np.empty(nc, np.float64)
    for s in range(nb):
        zmax = np.float64(row_max(a, s))
        tot = 0.0
        for c in range(nc):
            e[c] = math.exp(np.float64(a[s, c]) - zmax)
            tot += e[c]
        for c in range(nc):
            prob = e[c] / tot
            d = 1.0 - prob if c == y[s] else -prob
            p_out[s, c] = scale * d


@jit
def _error_sums(w, p, s, e, acc_t):
    """e[j] = sum_i p[s, i] w[i, j] in ``acc_t`` (the error ``p W`` of sample ``s``), skipping
    zero terms."""
    for j in range(e.shape[0]):
        e[j] = 0
    for i in range(p.shape[1]):
        pi = acc_t(p[s, i])
        if pi != 0:
            for j in range(e.shape[0]):
                e[j] += acc_t(w[i, j]) * pi


@jit
def error_fixed(w, p_next, a, h, f_w, act_code, slope_q, two_fa, lo_a, hi_a, lo_u, hi_u, wrap_u, p_out, sat):
    """p = round(sat(round(p_next W >> f_w)) * gate >> 16): the error of the layer below."""
    e = np.zeros(w.shape[1], np.int64)
    for s in range(p_next.shape[0]):
        _error_sums(w, p_next, s, e, np.int64)
        for j in range(e.shape[0]):
            v = saturate(shift_round(e[j], f_w, NEAREST, 0), lo_u, hi_u, wrap_u, sat, 2)
            g = gate_fixed(a[s, j], h[s, j], act_code, slope_q, two_fa, lo_a, hi_a)
            p_out[s, j] = shift_round(v * g, 16, NEAREST, 0)


@jit
def error_float(w, p_next, a, h, act_code, slope, p_out):
    """p = (p_next W) * act'(a), float64 accumulation."""
    e = np.zeros(w.shape[1], np.float64)
    for s in range(p_next.shape[0]):
        _error_sums(w, p_next, s, e, np.float64)
        for j in range(e.shape[0]):
            p_out[s, j] = e[j] * gate_float(a[s, j], h[s, j], act_code, slope, 1.0)


@jit
def grad_sum(p, x, s_out, sb_out):
    """s_out += p^T x, sb_out += sum_n p (zero-initialised outputs; exact for int64 arrays)."""
    m = p.shape[1]
    nb = p.shape[0]
    cols, ncols = _nonzero_columns(x)
    for i in range(m):
        for s in range(nb):
            pi = p[s, i]
            if pi != 0:
                sb_out[i] += pi
                for t in range(ncols):
                    j = cols[t]
                    s_out[i, j] += pi * x[s, j]
