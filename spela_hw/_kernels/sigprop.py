"""Kernels of sigprop's loss unit: logits of two streams and post-synaptic terms.

Fixed-point kernels are bit-exact twins of ``ReferenceOps.sigprop_logits`` and
``ReferenceOps.sigprop_post`` (the arithmetic is defined in :mod:`spela_hw.backends.reference`);
float kernels accumulate in float64 and agree with the float32 reference within tolerance.
"""

import math

import numpy as np

from . import jit


@jit
def logits_fixed(h, t, unit, out):
    """out[s, j] = floor(float64(sum_i h[s, i] t[j, i]) * unit + 1/2) - (the row's maximum),
    the sum exact in int64."""
    nb, m = h.shape
    nt = t.shape[0]
    for s in range(nb):
        for j in range(nt):
            acc = np.int64(0)
            for i in range(m):
                acc += h[s, i] * t[j, i]
            out[s, j] = np.int64(math.floor(np.float64(acc) * unit + 0.5))
        zmax = out[s, 0]
        for j in range(1, nt):
            if out[s, j] > zmax:
                zmax = out[s, j]
        for j in range(nt):
            out[s, j] -= zmax


@jit
def logits_float(h, t, unit, out):
    """out[s, j] = unit * sum_i h[s, i] t[j, i] - (the row's maximum), float64 accumulation."""
    nb, m = h.shape
    nt = t.shape[0]
    for s in range(nb):
        for j in range(nt):
            acc = 0.0
            for i in range(m):
                acc += np.float64(h[s, i]) * t[j, i]
            out[s, j] = acc * unit
        zmax = out[s, 0]
        for j in range(1, nt):
            if out[s, j] > zmax:
                zmax = out[s, j]
        for j in range(nt):
            out[s, j] -= zmax


@jit
def _gate(a, h, act_code, slope, gate_h2):
    """The activation's derivative at ``a`` (as ReferenceOps._gate)."""
    if act_code == 1:
        return 1.0 if a > 0 else slope
    if act_code == 2:
        return 1.0 - np.float64(h * h) * gate_h2
    return 1.0


@jit
def post_fixed(a, h, d, scale, gated, act_code, slope, gate_h2, lo_u, hi_u, p_out, sat):
    """p = floor(float64(d) * scale [* f'(a)] + 1/2) saturated to the update format (sat[2])."""
    nb, m = d.shape
    for s in range(nb):
        for i in range(m):
            t = np.float64(d[s, i]) * scale
            if gated:
                t = t * _gate(a[s, i], h[s, i], act_code, slope, gate_h2)
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
                t = t * _gate(a[s, i], np.float64(h[s, i]), act_code, slope, 1.0)
            p_out[s, i] = t
