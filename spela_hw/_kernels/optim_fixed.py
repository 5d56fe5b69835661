"""Adam's step of fixed-point weights from exact update sums: the numba twin of
:func:`spela_hw.rules.optim.step_from_sums` for ``Adam`` (the NumPy float32 moments, the
float64 change of scale and the 24-bit stochastic rounding by ``splitmix64``, operation for
operation, so bit for bit), over a stack of ``L`` layers of the same shape in one call.
"""

import numpy as np

from ..codes import NEAREST, STOCHASTIC
from ..rng import SPLITMIX64_GAMMA, SPLITMIX64_M1, SPLITMIX64_M2
from . import jit

STEP_FRAC = 24  # :data:`spela_hw.rules.optim.STEP_FRAC`
_GAMMA, _M1, _M2 = np.uint64(SPLITMIX64_GAMMA), np.uint64(SPLITMIX64_M1), np.uint64(SPLITMIX64_M2)
_LIM = 2.0**62


@jit(error_model="numpy", inline="always")
def _adam_row(wr, gr, mr, vr, n, base, unit, lr, b1, b2, eps, c1, c2, key, to_lsb, mode, lo, hi, wrap, sat):
    """One row of :func:`adam_fixed` (``n`` weights, random index ``base + j``); returns the
    non-zero increments. NumPy's float32 Adam expressions of ``optim._steps`` and the
    ``splitmix64`` draw of :func:`spela_hw.rng.random_bits` written out in the loop, the rounding
    offset selected rather than branched on and the clamp branch-free: the loop vectorises
    (about six times faster than with helper calls and branches)."""
    writes = 0
    nsat = 0
    one = np.float32(1)
    r0 = (np.int64(1) << np.int64(STEP_FRAC - 1)) if mode == NEAREST else np.int64(0)
    stochastic = mode == STOCHASTIC
    for j in range(n):
        g = np.float32(np.float64(gr[j]) * unit)
        mm = np.float32(np.float32(mr[j] * b1) + np.float32(np.float32(one - b1) * g))
        vv = np.float32(np.float32(vr[j] * b2) + np.float32(np.float32(np.float32(one - b2) * g) * g))
        mr[j] = mm
        vr[j] = vv
        st = np.float32(np.float32(lr * np.float32(mm / c1)) / np.float32(np.float32(np.sqrt(np.float32(vv / c2))) + eps))
        t = np.floor(np.float64(st) * to_lsb + 0.5)
        t = min(max(t, -_LIM), _LIM)
        z = np.uint64(key + np.uint64(base + np.uint64(j))) + _GAMMA
        z = np.uint64(z ^ (z >> np.uint64(30))) * _M1
        z = np.uint64(z ^ (z >> np.uint64(27))) * _M2
        z = np.uint64(z ^ (z >> np.uint64(31)))
        r = np.int64(z >> np.uint64(64 - STEP_FRAC)) if stochastic else r0
        dv = (np.int64(t) + r) >> np.int64(STEP_FRAC)
        writes += np.int64(dv != 0)
        v = np.int64(wr[j]) + dv
        nsat += np.int64(v < lo) + np.int64(v > hi)
        if wrap:
            span = hi - lo + 1
            v = (v - lo) % span + lo
        else:
            v = min(max(v, lo), hi)
        wr[j] = v
    sat[3] += nsat
    return writes


@jit(error_model="numpy")  # division by zero gives inf as in NumPy (no check: vectorises)
def adam_fixed(w, b, gw, gb, mw, vw, mb, vb, unit_w, unit_b, lr, b1, b2, eps, c1, c2, keys, to_lsb,
               mode, lo, hi, wrap, sat):
    """One Adam step of ``L`` layers: weights ``w`` ``(L, m, n)`` and biases ``b`` ``(L, m)``
    (integer codes) from the exact sums ``gw``, ``gb`` (times ``unit_w``, ``unit_b`` to real
    values, rounded to float32), the float32 moments ``mw``, ``vw``, ``mb``, ``vb`` updated in
    place, per-layer bias corrections ``c1``, ``c2`` and keys ``keys``; ``to_lsb`` is
    ``2**(f_w + 24)``. Weight ``(i, j)`` draws index ``i n + j``, bias ``i`` index ``m n + i``
    (``optim._apply_fixed``: ``t = floor(step 2**(f_w + 24) + 1/2)`` clipped to ``2**62``, then
    ``(t + r) >> 24``). Saturations of the weight format go to ``sat[3]``; returns the number
    of non-zero increments."""
    nl, m, n = w.shape
    writes = 0
    for layer in range(nl):
        key = np.uint64(keys[layer])
        # weight (i, j) draws index i n + j: its position in the layer's row-major weights, so
        # the layer is one row of m n weights (contiguous arrays, checked by the caller)
        writes += _adam_row(w[layer].reshape(-1), gw[layer].reshape(-1), mw[layer].reshape(-1), vw[layer].reshape(-1),
                            m * n, np.uint64(0), unit_w, lr, b1, b2, eps, c1[layer], c2[layer], key, to_lsb, mode,
                            lo[3], hi[3], wrap[3], sat)
        writes += _adam_row(b[layer], gb[layer], mb[layer], vb[layer], m, np.uint64(m * n), unit_b, lr, b1, b2, eps,
                            c1[layer], c2[layer], key, to_lsb, mode, lo[3], hi[3], wrap[3], sat)
    return writes
