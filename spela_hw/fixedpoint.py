"""Fixed-point number formats and the reference (pure NumPy) integer arithmetic.

A value ``q`` stored in a :class:`FixedPointFormat` with ``frac_bits = f`` means ``q * 2**-f``.
Integers are held in ``int64`` NumPy arrays whatever the width of the format, so that no NumPy
operation can silently wrap; the format's ``bits`` decide where values saturate (or wrap).

Rounding conventions (used identically by the reference backend and the numba kernels):

* ``nearest``: round half up, ``floor(x + 1/2)``;
* ``truncate``: drop the low bits, i.e. ``floor(x)`` (an arithmetic right shift);
* ``stochastic``: ``floor(x + r)`` with ``r`` uniform in ``[0, 1)`` drawn from a counter-based
  generator (:mod:`spela_hw.rng`), so that results are reproducible from a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codes import NEAREST, SATURATE, STOCHASTIC, TRUNCATE, WRAP
from .errors import ConfigError, SaturationError

__all__ = [
    "FixedPointFormat",
    "ROUNDING_MODES",
    "OVERFLOW_MODES",
    "quantize",
    "dequantize",
    "saturate",
    "shift_round",
]

ROUNDING_MODES = ("nearest", "stochastic", "truncate")
OVERFLOW_MODES = ("saturate", "wrap", "raise")

# Integer codes passed to kernels (kernels take scalars, never strings).
ROUNDING_CODE = {"nearest": NEAREST, "stochastic": STOCHASTIC, "truncate": TRUNCATE}
OVERFLOW_CODE = {"saturate": SATURATE, "wrap": WRAP, "raise": SATURATE}  # "raise": the wrapper raises


@dataclass(frozen=True)
class FixedPointFormat:
    """A two's-complement (or unsigned) fixed-point format.

    Parameters
    ----------
    bits : int
        Total width including the sign bit, 2..32.
    frac_bits : int
        Fractional bits; the value of one LSB is ``2**-frac_bits``. May be negative (an LSB larger
        than one) or exceed ``bits``; must lie in -32..48.
    signed : bool
        Two's complement when true, unsigned otherwise.
    rounding : {"nearest", "stochastic", "truncate"}
        How values with more precision are brought into this format.
    overflow : {"saturate", "wrap", "raise"}
        What happens to values outside the range. Saturation events are always counted.
    """

    bits: int
    frac_bits: int
    signed: bool = True
    rounding: str = "nearest"
    overflow: str = "saturate"

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)):
            raise ConfigError("bits", f"must be an integer, got {self.bits!r}")
        if not 2 <= self.bits <= 32:
            raise ConfigError("bits", f"must be between 2 and 32, got {self.bits}")
        if isinstance(self.frac_bits, bool) or not isinstance(self.frac_bits, (int, np.integer)):
            raise ConfigError("frac_bits", f"must be an integer, got {self.frac_bits!r}")
        if not -32 <= self.frac_bits <= 48:
            raise ConfigError("frac_bits", f"must be between -32 and 48, got {self.frac_bits}")
        if self.rounding not in ROUNDING_MODES:
            raise ConfigError("rounding", f"must be one of {ROUNDING_MODES}, got {self.rounding!r}")
        if self.overflow not in OVERFLOW_MODES:
            raise ConfigError("overflow", f"must be one of {OVERFLOW_MODES}, got {self.overflow!r}")

    # -- range -------------------------------------------------------------------------------
    @property
    def min_int(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac_bits

    @property
    def min_value(self) -> float:
        return self.min_int * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_int * self.lsb

    def __str__(self) -> str:  # Q notation: sQ3.4 is signed, 3 integer bits, 4 fractional bits
        s = "s" if self.signed else "u"
        return f"{s}Q{self.bits - self.frac_bits - int(self.signed)}.{self.frac_bits}"

    def to_dict(self) -> dict:
        return {
            "bits": int(self.bits),
            "frac_bits": int(self.frac_bits),
            "signed": bool(self.signed),
            "rounding": self.rounding,
            "overflow": self.overflow,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FixedPointFormat":
        if not isinstance(d, dict):
            raise ConfigError("format", f"must be a table of bits, frac_bits, ..., got {d!r}")
        unknown = set(d) - {"bits", "frac_bits", "signed", "rounding", "overflow"}
        if unknown:
            raise ConfigError(sorted(unknown)[0], "unknown field of FixedPointFormat")
        for required in ("bits", "frac_bits"):
            if required not in d:
                raise ConfigError(required, "missing")
        if not isinstance(d.get("signed", True), bool):
            raise ConfigError("signed", f"must be true or false, got {d['signed']!r}")
        return cls(**d)

    @classmethod
    def for_range(cls, bits: int, max_abs: float, signed: bool = True, **kw) -> "FixedPointFormat":
        """The format of width ``bits`` with the most fractional bits that still holds ``max_abs``."""
        if not max_abs > 0 or not np.isfinite(max_abs):
            raise ConfigError("max_abs", f"must be a positive finite number, got {max_abs!r}")
        int_bits = max(int(np.ceil(np.log2(max_abs))), -32)
        return cls(bits=bits, frac_bits=bits - int(signed) - int_bits, signed=signed, **kw)


def saturate(
    q: np.ndarray, fmt: FixedPointFormat, raise_on_overflow: bool = True
) -> tuple[np.ndarray, int]:
    """Bring int64 values into ``fmt``'s range by its overflow policy; return (values, events).

    With ``raise_on_overflow=False`` the ``"raise"`` policy saturates (the caller raises later,
    as the kernels' wrappers do).
    """
    q = np.asarray(q, dtype=np.int64)
    lo, hi = fmt.min_int, fmt.max_int
    out_of_range = (q < lo) | (q > hi)
    events = int(np.count_nonzero(out_of_range))
    if events == 0:
        return q, 0
    if fmt.overflow == "raise" and raise_on_overflow:
        raise SaturationError(f"{events} value(s) overflow the {fmt} format")
    if fmt.overflow == "wrap":
        span = 1 << fmt.bits
        return ((q - lo) % span) + lo, events
    return np.clip(q, lo, hi), events


def shift_round(v: np.ndarray, shift: int, mode: str, r: np.ndarray | None = None) -> np.ndarray:
    """Divide int64 ``v`` by ``2**shift`` with the given rounding (a left shift when ``shift < 0``).

    For ``mode="stochastic"``, ``r`` holds uniform integers in ``[0, 2**shift)``.
    """
    v = np.asarray(v, dtype=np.int64)
    if shift <= 0:
        return v << np.int64(-shift)
    if mode == "nearest":
        return (v + np.int64(1 << (shift - 1))) >> np.int64(shift)
    if mode == "truncate":
        return v >> np.int64(shift)
    if mode == "stochastic":
        if r is None:
            raise ValueError("stochastic rounding needs random integers r")
        return (v + np.asarray(r, dtype=np.int64)) >> np.int64(shift)
    raise ConfigError("rounding", f"unknown rounding mode {mode!r}")


def quantize(
    x: np.ndarray, fmt: FixedPointFormat, uniform: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Quantise real values to ``fmt``; return ``(int64 values, saturation events)``.

    ``uniform`` supplies the ``[0, 1)`` random numbers when ``fmt.rounding == "stochastic"``.
    NaN or infinite inputs raise :class:`~spela_hw.errors.DataError`.
    """
    from .errors import DataError

    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError(f"cannot quantise non-finite values to {fmt} (NaN or inf in input)")
    scaled = np.ldexp(x, fmt.frac_bits)
    if fmt.rounding == "nearest":
        q = np.floor(scaled + 0.5)
    elif fmt.rounding == "truncate":
        q = np.floor(scaled)
    else:
        if uniform is None:
            raise ValueError("stochastic quantisation needs uniform random numbers")
        q = np.floor(scaled + uniform)
    # Clip in float first so that huge values cannot overflow the int64 cast.
    q = np.clip(q, -(2.0**62), 2.0**62).astype(np.int64)
    return saturate(q, fmt)


def dequantize(q: np.ndarray, fmt: FixedPointFormat) -> np.ndarray:
    """Real values (float64) of int values stored in ``fmt``."""
    return np.ldexp(np.asarray(q, dtype=np.float64), -fmt.frac_bits)
