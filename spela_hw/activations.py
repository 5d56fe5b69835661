"""The activation functions and their derivatives (gates), array-wise: the one NumPy definition.

The reference backend (:class:`~spela_hw.backends.reference.ReferenceOps`) and the rules' device
paths (:mod:`spela_hw.rules.common`) call these; the numba kernels call their scalar twins in
:mod:`spela_hw._kernels.activation`, with the same arguments. A test checks that both agree bit
for bit, except float32 tanh: NumPy's ``tanh`` and the C library's ``tanhf`` that numba calls may
differ in the last bit (at most two units in the last place).

``act`` is a code of :mod:`spela_hw.codes` (``IDENTITY``, ``LEAKY_RELU``, ``TANH``).
"""

from __future__ import annotations

import numpy as np

from .backends.common import GATE_FRAC, SLOPE_FRAC
from .codes import LEAKY_RELU, TANH
from .fixedpoint import shift_round

__all__ = ["activate", "activate_fixed", "gate", "gate_fixed"]


def activate(a: np.ndarray, act: int, slope: float) -> np.ndarray:
    """``h = act(a)`` of float pre-activations, in their dtype (float32 in every backend);
    LeakyReLU's negative side is ``a * float32(slope)``."""
    a = np.asarray(a)
    if act == LEAKY_RELU:
        return np.where(a > 0, a, a * np.float32(slope))
    if act == TANH:
        return np.tanh(a)
    return a.copy()


def activate_fixed(a: np.ndarray, act: int, slope_q: int, lut: np.ndarray, act_min: int) -> np.ndarray:
    """``h = act(a)`` of activation-format integers (int64): LeakyReLU's negative side
    ``round_nearest(a * slope_q >> 16)``; tanh from the look-up table ``lut[a - act_min]``."""
    a = np.asarray(a, np.int64)
    if act == LEAKY_RELU:
        return np.where(a > 0, a, shift_round(a * np.int64(slope_q), SLOPE_FRAC, "nearest"))
    if act == TANH:
        return lut[a - act_min].astype(np.int64)
    return a.copy()


def gate(a: np.ndarray, h: np.ndarray, act: int, slope: float, gate_h2: float = 1.0) -> np.ndarray:
    """``act'(a)`` in float64: LeakyReLU 1 or ``slope``; tanh ``1 - h^2 * gate_h2`` with ``h``
    widened to float64 before it is squared (``gate_h2 = 2**(-2 f_a)`` rescales a fixed-point
    ``h``; exact for one of at most 26 bits)."""
    if act == LEAKY_RELU:
        return np.where(np.asarray(a) > 0, 1.0, float(slope))
    if act == TANH:
        hf = np.asarray(h, np.float64)
        return 1.0 - hf * hf * gate_h2
    return np.ones(np.shape(a))


def gate_fixed(a: np.ndarray, h: np.ndarray, act: int, slope_q: int, two_fa: int, lo_a: int,
               hi_a: int) -> np.ndarray:
    """``act'(a)`` as a 16-fractional-bit integer (the fixed-point error path): LeakyReLU
    ``2**16`` or ``slope_q``; tanh ``round_nearest((2**two_fa - h^2) >> (two_fa - 16))``
    (``two_fa = 2 f_a``); identity ``2**16``; 0 where ``a`` sits at a limit ``lo_a``/``hi_a`` of
    the activation format (the derivative of saturation)."""
    a = np.asarray(a, np.int64)
    one = np.int64(1 << GATE_FRAC)
    if act == LEAKY_RELU:
        g = np.where(a > 0, one, np.int64(slope_q))
    elif act == TANH:
        h = np.asarray(h, np.int64)
        g = shift_round((np.int64(1) << np.int64(two_fa)) - h * h, two_fa - GATE_FRAC, "nearest")
    else:
        g = np.full(a.shape, one, np.int64)
    return np.where((a <= lo_a) | (a >= hi_a), np.int64(0), g)
