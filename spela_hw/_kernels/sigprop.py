"""Kernels of sigprop's loss unit: logits of two streams and post-synaptic terms.

Fixed-point kernels are bit-exact twins of ``ReferenceOps.sigprop_logits`` and
``ReferenceOps.sigprop_post`` (the arithmetic is defined in :mod:`spela_hw.backends.reference`);
float kernels accumulate in float64 and agree with the float32 reference within tolerance.
"""

import math

import numpy as np

from . import jit
from .activation import gate_float
from .generic import dot, row_max


@jit
def _subtract_row_max(out, s):
    """Make row ``s`` of ``out`` relative to its maximum (the softmax is unchanged)."""
    zmax = row_max(out, s)
    for j in range(out.shape[1]):
        out[s, j] -= zmax


@jit
def logits_fixed(h, t, unit, out):
    """out[s, j] = floor(float64(sum_i h[s, i] t[j, i]) * unit + 1/2) - (the row's maximum),
    the sum exact in int64."""
    for s in range(h.shape[0]):
        for j in range(t.shape[0]):
            out[s, j] = np.int64(math.floor(np.float64(dot(h, s, t, j, np.int64)) * unit + 0.5))
        _subtract_row_max(out, s)


@jit
def logits_float(h, t, unit, out):
    """out[s, j] = unit * sum_i h[s, i] t[j, i] - (the row's maximum), float64 accumulation."""
    for s in range(h.shape[0]):
        for j in range(t.shape[0]):
            out[s, j] = dot(h, s, t, j, np.float64) * unit
        _subtract_row_max(out, s)


@jit
def post_fixed(a, h, d, scale, gated, act_code, slope, gate_h2, lo_u, hi_u, p_out, sat):
    """p = floor(float64(d) * scale [* f'(a)] + 1/2) saturated to the update format (sat[2])."""
    nb, m = d.shape
    for s in range(nb):
        for i in range(m):
            t = np.float64(d[s, i]) * scale
            if gated:
                t = t * gate_float(a[s, i], h[s, i], act_code, slope, gate_h2)
            t = math.floor(t + 0.5)
            if t < lo_u or t > hi_u:
                sat[2] += 1
                t = lo_u if t < lo_u else hi_u
            p_out[s, i] = np.int64(t)


@jit
def post_float(a, h, d, scale, gated, act_code, slope, p_out):
    """p = d * scale [* f'(a)] (float64 inside, stored float32)."""
    nb, m = d.shape
    for s in range(nb):
        for i in range(m):
            t = np.float64(d[s, i]) * scale
            if gated:
                t = t * gate_float(a[s, i], h[s, i], act_code, slope, 1.0)
            p_out[s, i] = t
