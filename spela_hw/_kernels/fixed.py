"""Fixed-point kernels: bit-exact twins of :mod:`spela_hw.backends.reference`."""

import math

import numpy as np

from ..codes import NEAREST
from . import jit
from .activation import act_fixed
from .generic import dot, nonzero_indices, sparse_dot
from .generic import readout as _readout
from .loss_unit import fx_post_sample
from .records import Activation
from .rounding import saturate, shift_round


@jit
def lowbias32(x):
    """The SR unit's 32-bit hash (same as :func:`spela_hw.rng.lowbias32`); ``x`` is wrapped to 32
    bits. Every step is truncated to uint32 (numba would widen) so that it vectorises."""
    z = np.uint32(x)
    z = np.uint32(z ^ (z >> np.uint32(16)))
    z = np.uint32(z * np.uint32(0x7FEB352D))
    z = np.uint32(z ^ (z >> np.uint32(15)))
    z = np.uint32(z * np.uint32(0x846CA68B))
    return np.uint32(z ^ (z >> np.uint32(16)))


@jit
def sr_key32(key):
    """The SR unit's 32-bit key of a 64-bit stream key (same as :func:`spela_hw.rng.sr_key32`)."""
    k = np.uint64(key)
    return np.uint32((k ^ (k >> np.uint64(32))) & np.uint64(0xFFFFFFFF))


@jit
def sr_word(z, srmask):
    """The SR unit's word as it rounds: the random bits it keeps (``srmask``,
    :func:`spela_hw.rng.sr_mask32`) and in each half the bit below them set
    (:func:`spela_hw.rng.sr_half16`: ``~mask & ~(~mask >> 1)``, 0 when all 16 bits are kept)."""
    mk = np.uint32(srmask)
    inv = np.uint32(~mk)
    return np.uint32((np.uint32(z) & mk) | np.uint32(inv & np.uint32(~np.uint32(inv >> np.uint32(1)))))


@jit
def sr_offset(key, word, half, shift, srmask):
    """The SR unit's offset: half ``half`` (16 bits) of :func:`sr_word` of lowbias32(k32 + word),
    moved to ``shift`` bits (same as :func:`spela_hw.rng.sr_offsets`)."""
    z = sr_word(lowbias32(np.uint64(sr_key32(key)) + np.uint64(word)), srmask)
    r16 = np.int64((z >> np.uint32(16 * half)) & np.uint32(0xFFFF))
    if shift >= 16:
        return r16 << np.int64(shift - 16)
    return r16 >> np.int64(16 - shift)


@jit
def forward(w, b, x, f_a, shift_acc, lo, hi, wrap, act_code, slope_q, lut, act_min, a_out, h_out, sat):
    """acc = W x + (b << f_a); a = round(acc >> shift_acc); h = act(a). Skips zero inputs."""
    nb, n = x.shape
    m = w.shape[0]
    idx = np.empty(n, np.int64)
    for s in range(nb):
        nnz = nonzero_indices(x, s, idx)
        for i in range(m):
            acc = sparse_dot(w, i, x, s, idx, nnz, np.int64(b[i]) << np.int64(f_a), np.int64)
            acc = saturate(acc, lo[0], hi[0], wrap[0], sat, 0)
            a = saturate(shift_round(acc, shift_acc, NEAREST, 0), lo[1], hi[1], wrap[1], sat, 1)
            a_out[s, i] = a
            h_out[s, i] = act_fixed(a, act_code, slope_q, lut, act_min)


@jit
def normalize_rows(x, pow2_a, lo, hi, wrap, out, sat):
    """out = round(x * 2**f_a / |x|) per row; zero rows stay zero."""
    nb, n = x.shape
    for s in range(nb):
        n2 = dot(x, s, x, s, np.int64)
        r = math.sqrt(np.float64(n2))
        sc = pow2_a / r if n2 > 0 else 0.0
        for j in range(n):
            q = math.floor(np.float64(x[s, j]) * sc + 0.5)
            out[s, j] = saturate(np.int64(q), lo, hi, wrap, sat, 1)


@jit
def spela_post(a, h, v, vnorm, scale, loss_code, act_code, slope, gate_h2, pow2_au, lo_u, hi_u, p_out, sat):
    """SPELA's post-synaptic term per sample: the fused trainer's loss unit
    (:func:`~spela_hw._kernels.loss_unit.fx_post_sample`) on each row; returns the zero-norm rows."""
    act = Activation(act_code, slope, 0, np.zeros(1, np.int64), 0, gate_h2)
    nb, m = h.shape
    zeros = 0
    for s in range(nb):
        z, nsat = fx_post_sample(a[s], h[s], m, 0, m, v[s], vnorm[s], scale, loss_code, act, pow2_au, lo_u, hi_u,
                                 p_out[s])
        zeros += z
        sat[2] += nsat
    return zeros


@jit
def _nonzero_columns(x):
    """Indices of the columns of x with any non-zero entry (zero inputs never change a weight)."""
    nb, n = x.shape
    cols = np.empty(n, np.int64)
    ncols = 0
    for j in range(n):
        for s in range(nb):
            if x[s, j] != 0:
                cols[ncols] = j
                ncols += 1
                break
    return cols, ncols


@jit
def readout(h, v, out):
    """out[s, c] = sum_i v[c, i] h[s, i] in int64."""
    _readout(h, v, np.int64, out)


@jit
def quantize_nearest(x, scale, lo, hi, wrap, out, sat):
    """out = sat(floor(float64(x) * scale + 1/2)), ``scale`` a power of two, the value clipped to
    +-2**62 before the int64 cast (as :func:`spela_hw.fixedpoint.quantize`). Returns the number
    of non-finite inputs (the caller raises)."""
    nb, n = x.shape
    bad = 0
    for s in range(nb):
        for j in range(n):
            v = np.float64(x[s, j])
            if not math.isfinite(v):
                bad += 1
                out[s, j] = 0
                continue
            q = np.floor(v * scale + 0.5)  # a float: math.floor's int64 would overflow first
            q = min(max(q, -(2.0**62)), 2.0**62)
            out[s, j] = saturate(np.int64(q), lo, hi, wrap, sat, 1)
    return bad
