"""The scalar fixed-point units every kernel shares: rounding a shift and saturating a value.

They sit below :mod:`.fixed` and :mod:`.activation` (both call them); the NumPy statement of the
same arithmetic is :func:`spela_hw.fixedpoint.shift_round` and :func:`spela_hw.fixedpoint.saturate`.
"""

import numpy as np

from ..codes import NEAREST, STOCHASTIC, WRAP
from . import jit


@jit
def shift_round(v, shift, mode, r):
    """v / 2**shift rounded: NEAREST (half up), STOCHASTIC (+r), TRUNCATE (floor)."""
    if shift <= 0:
        return v << np.int64(-shift)
    if mode == NEAREST:
        return (v + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
    if mode == STOCHASTIC:
        return (v + r) >> np.int64(shift)
    return v >> np.int64(shift)


@jit
def saturate(v, lo, hi, wrap, sat, k):
    """Clip (or, with ``wrap == WRAP``, wrap) one value into [lo, hi], counting an event in sat[k]."""
    if v < lo or v > hi:
        sat[k] += 1
        if wrap == WRAP:
            span = hi - lo + 1
            return (v - lo) % span + lo
        return lo if v < lo else hi
    return v
