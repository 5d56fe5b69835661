"""The activation functions and their derivatives (gates), once, for every kernel.

Scalar ``@jit`` helpers that the per-element loops of all kernels call; numba inlines them and
folds the branch on the activation code (a named constant of :mod:`spela_hw.codes`). The NumPy
reference (:mod:`spela_hw.backends.reference`) states the same functions array-wise; tests check
that the two agree bit for bit.
"""

import math

import numpy as np

from ..codes import LEAKY_RELU, NEAREST, TANH
from . import jit
from .rounding import shift_round

GATE_ONE = 65536  # 1.0 in the 16-fractional-bit gate / slope format


@jit
def act_float(a, act, slope):
    """h = act(a) in float32 (LeakyReLU's negative side is ``a * float32(slope)``)."""
    if act == LEAKY_RELU:
        return a if a > 0 else a * np.float32(slope)
    if act == TANH:
        return np.float32(math.tanh(a))
    return a


@jit
def act_fixed(a, act, slope_q, lut, act_min):
    """h = act(a) on an activation-format integer: slope ``slope_q / 2**16`` rounded to nearest,
    tanh from the lookup table ``lut[a - act_min]``."""
    if act == LEAKY_RELU:
        return a if a > 0 else shift_round(a * slope_q, 16, NEAREST, 0)
    if act == TANH:
        return lut[a - act_min]
    return a


@jit
def gate_float(a, h, act, slope, gate_h2):
    """act'(a) in float64: LeakyReLU 1 or ``slope``; tanh ``1 - h^2``, ``h`` widened to float64
    before it is squared (exact for a fixed-point ``h`` of at most 26 bits; ``h^2 * gate_h2``
    rescales a fixed-point ``h``, 1.0 for a float ``h``)."""
    if act == LEAKY_RELU:
        return 1.0 if a > 0 else slope
    if act == TANH:
        hf = np.float64(h)
        return 1.0 - hf * hf * gate_h2
    return 1.0


@jit
def gate_fixed(a, h, act, slope_q, two_fa, lo_a, hi_a):
    """act'(a) as a 16-fractional-bit integer, 0 where ``a`` saturated (fixed-point error path)."""
    if a <= lo_a or a >= hi_a:
        return np.int64(0)
    if act == LEAKY_RELU:
        return np.int64(GATE_ONE) if a > 0 else slope_q
    if act == TANH:
        return shift_round((np.int64(1) << np.int64(two_fa)) - h * h, two_fa - 16, NEAREST, 0)
    return np.int64(GATE_ONE)
