"""Adam's step of fixed-point weights from exact update sums: the numba twin of
:func:`spela_hw.rules.optim.step_from_sums` for ``Adam`` (the NumPy float32 moments, the
float64 change of scale and the 24-bit stochastic rounding by ``splitmix64``, operation for
operation, so bit for bit), over a stack of ``L`` layers of the same shape in one call.
"""

import numpy as np

from ..codes import NEAREST, STOCHASTIC
from ..rng import SPLITMIX64_GAMMA, SPLITMIX64_M1, SPLITMIX64_M2
from . import jit
from .rounding import saturate

STEP_FRAC = 24  # :data:`spela_hw.rules.optim.STEP_FRAC`
_GAMMA, _M1, _M2 = np.uint64(SPLITMIX64_GAMMA), np.uint64(SPLITMIX64_M1), np.uint64(SPLITMIX64_M2)
_LIM = 2.0**62


@jit
def random24(key, index):
    """:func:`spela_hw.rng.random_bits` ``(key, index, 24)`` of one index (wrapping uint64)."""
    z = np.uint64(np.uint64(key) + np.uint64(index)) + _GAMMA
    z = np.uint64(z ^ (z >> np.uint64(30))) * _M1
    z = np.uint64(z ^ (z >> np.uint64(27))) * _M2
    z = np.uint64(z ^ (z >> np.uint64(31)))
    return np.int64(z >> np.uint64(64 - STEP_FRAC))


@jit
def _adam_one(g, m, v, lr, b1, b2, eps, c1, c2):
    """NumPy's float32 expressions of ``optim._steps``: the new moments and the step."""
    one = np.float32(1)
    m = np.float32(np.float32(m * b1) + np.float32(np.float32(one - b1) * g))
    v = np.float32(np.float32(v * b2) + np.float32(np.float32(np.float32(one - b2) * g) * g))
    den = np.float32(np.float32(np.sqrt(np.float32(v / c2))) + eps)
    return m, v, np.float32(np.float32(lr * np.float32(m / c1)) / den)


@jit
def _round_step(step, to_lsb, key, index, mode):
    """``optim._apply_fixed``'s increment: ``step`` in weight LSBs with 24 more fractional bits,
    rounded to one LSB."""
    t = np.floor(np.float64(step) * to_lsb + 0.5)
    t = min(max(t, -_LIM), _LIM)
    ti = np.int64(t)
    if mode == STOCHASTIC:
        return (ti + random24(key, index)) >> np.int64(STEP_FRAC)
    if mode == NEAREST:
        return (ti + (np.int64(1) << np.int64(STEP_FRAC - 1))) >> np.int64(STEP_FRAC)
    return ti >> np.int64(STEP_FRAC)


@jit
def adam_fixed(w, b, gw, gb, mw, vw, mb, vb, unit_w, unit_b, lr, b1, b2, eps, c1, c2, keys, to_lsb,
               mode, lo, hi, wrap, sat):
    """One Adam step of ``L`` layers: weights ``w`` ``(L, m, n)`` and biases ``b`` ``(L, m)``
    (integer codes) from the exact sums ``gw``, ``gb`` (times ``unit_w``, ``unit_b`` to real
    values, rounded to float32), the float32 moments ``mw``, ``vw``, ``mb``, ``vb`` updated in
    place, per-layer bias corrections ``c1``, ``c2`` and keys ``keys``; ``to_lsb`` is
    ``2**(f_w + 24)``. Weight ``(i, j)`` draws index ``i n + j``, bias ``i`` index ``m n + i``.
    Saturations of the weight format go to ``sat[3]``; returns the number of non-zero increments."""
    nl, m, n = w.shape
    writes = 0
    for layer in range(nl):
        key = keys[layer]
        cc1 = c1[layer]
        cc2 = c2[layer]
        for i in range(m):
            for j in range(n):
                g = np.float32(np.float64(gw[layer, i, j]) * unit_w)
                mm, vv, st = _adam_one(g, mw[layer, i, j], vw[layer, i, j], lr, b1, b2, eps, cc1, cc2)
                mw[layer, i, j] = mm
                vw[layer, i, j] = vv
                dv = _round_step(st, to_lsb, key, i * n + j, mode)
                if dv != 0:
                    writes += 1
                w[layer, i, j] = saturate(np.int64(w[layer, i, j]) + dv, lo[3], hi[3], wrap[3], sat, 3)
        for i in range(m):
            g = np.float32(np.float64(gb[layer, i]) * unit_b)
            mm, vv, st = _adam_one(g, mb[layer, i], vb[layer, i], lr, b1, b2, eps, cc1, cc2)
            mb[layer, i] = mm
            vb[layer, i] = vv
            dv = _round_step(st, to_lsb, key, m * n + i, mode)
            if dv != 0:
                writes += 1
            b[layer, i] = saturate(np.int64(b[layer, i]) + dv, lo[3], hi[3], wrap[3], sat, 3)
    return writes
