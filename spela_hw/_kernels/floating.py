"""Float32 kernels (float64 accumulation); they agree with the NumPy reference within tolerance."""

import math

import numpy as np

from ..codes import NEG_COS
from . import jit
from .activation import act_float, gate_float
from .generic import dot, nonzero_indices, sparse_dot
from .generic import readout as _readout


@jit
def forward(w, b, x, act_code, slope, a_out, h_out):
    """a = W x + b; h = act(a), skipping zero inputs."""
    nb, n = x.shape
    m = w.shape[0]
    idx = np.empty(n, np.int64)
    for s in range(nb):
        nnz = nonzero_indices(x, s, idx)
        for i in range(m):
            a = np.float32(sparse_dot(w, i, x, s, idx, nnz, np.float64(b[i]), np.float64))
            a_out[s, i] = a
            h_out[s, i] = act_float(a, act_code, slope)


@jit
def activate(a, act_code, slope, h_out):
    """h = act(a) elementwise (LeakyReLU's negative side ``a * float32(slope)``)."""
    nb, m = a.shape
    for s in range(nb):
        for i in range(m):
            h_out[s, i] = act_float(a[s, i], act_code, slope)


@jit
def add_count(w, d):
    """w += d elementwise (same shape, contiguous); returns the number of non-zero ``d``."""
    wf = w.reshape(-1)
    df = d.reshape(-1)
    nz = 0
    for i in range(wf.size):
        v = df[i]
        nz += np.int64(v != 0)
        wf[i] += v
    return nz


@jit
def normalize_rows(x, out):
    """out = x / max(|x|, 1e-12) per row, the norm summed in float64."""
    nb, n = x.shape
    for s in range(nb):
        n2 = dot(x, s, x, s, np.float64)
        inv = 1.0 / max(math.sqrt(n2), 1e-12)
        for j in range(n):
            out[s, j] = x[s, j] * inv


@jit
def spela_post(a, h, v, scale, loss_code, act_code, slope, p_out):
    nb, m = h.shape
    zeros = 0
    for s in range(nb):
        n2 = 0.0
        dot = 0.0
        for i in range(m):
            n2 += np.float64(h[s, i]) * h[s, i]
            dot += np.float64(h[s, i]) * v[s, i]
        if n2 == 0.0:
            zeros += 1
            for i in range(m):
                p_out[s, i] = 0.0
            continue
        r = math.sqrt(n2)
        c = dot / r
        g = 1.0 if loss_code == NEG_COS else 1.0 / (2.0 - c)
        k = scale * g / r
        for i in range(m):
            gate = gate_float(a[s, i], h[s, i], act_code, slope, 1.0)
            p_out[s, i] = k * gate * (v[s, i] - c * h[s, i] / r)
    return zeros


@jit
def readout(h, v, out):
    """out[s, c] = sum_i v[c, i] h[s, i], float64 sums in ``i`` order."""
    _readout(h, v, np.float64, out)
