"""What every backend shares: validation of the fixed-point pipeline and its constants."""

from __future__ import annotations

import math

import numpy as np

from ..codes import ACTIVATION_CODE, LOSS_CODE
from ..errors import ConfigError, SaturationError
from ..fixedpoint import OVERFLOW_CODE, ROUNDING_CODE, dequantize, quantize
from ..rng import sr_mask32
from ..specs import NetworkSpec, PrecisionSpec

# Index of each format in the saturation-count vector the primitives return.
SAT_ACCUMULATOR, SAT_ACTIVATION, SAT_UPDATE, SAT_WEIGHT = range(4)
SAT_FORMATS = ("accumulator", "activation", "update", "weight")

ACT_CODE = ACTIVATION_CODE
SLOPE_FRAC = 16  # LeakyReLU slope is a 16-fractional-bit constant in fixed point


def storage_dtype(bits: int):
    """Narrowest signed integer type that stores a weight of ``bits`` bits."""
    return np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32


class OpsBase:
    """Validated constants of one (precision, network) pair, shared by all backends.

    Primitives that touch a layer's weights (``forward``, ``update``, ``grad_sum``,
    ``backprop_error``, ``store_params``, ``real_params``) belong to :meth:`layer` ``(k)``, which
    differs from this object when the precision gives layers their own weight binary point
    (``PrecisionSpec.weight_exponents``); everything else (activations, class vectors, the loss
    unit) is shared by all layers.
    """

    name = "base"

    def __init__(self, precision: PrecisionSpec, spec: NetworkSpec):
        self.precision = precision
        self.spec = spec
        self.fixed = precision.is_fixed
        exps = precision.weight_exponents
        if exps and len(exps) != spec.n_layers:
            raise ConfigError("weight_exponents", f"has {len(exps)} entries for {spec.n_layers} layers")
        self._layers = [type(self)(precision.for_layer(k), spec) for k in range(spec.n_layers)] if exps else None
        self.act_code = ACT_CODE[spec.activation]
        self.slope = float(spec.slope)
        if not self.fixed:
            return
        w, a, acc, u = precision.weight, precision.activation, precision.accumulator, precision.update
        if acc.frac_bits != w.frac_bits + a.frac_bits:
            raise ConfigError(
                "accumulator.frac_bits",
                f"must equal weight.frac_bits + activation.frac_bits = {w.frac_bits + a.frac_bits} "
                f"(the product's fractional bits), got {acc.frac_bits}",
            )
        max_fan_in = max(spec.dims[:-1])
        if w.bits + a.bits + math.ceil(math.log2(max_fan_in + 1)) > 62:
            raise ConfigError("accumulator", "weight.bits + activation.bits + log2(fan_in) exceed 62 bits")
        if spec.activation == "tanh" and a.bits > 16:
            raise ConfigError("activation.bits", "tanh in fixed point uses a look-up table: at most 16 bits")
        if a.frac_bits < 0:
            raise ConfigError("activation.frac_bits", f"must be >= 0, got {a.frac_bits}")
        self.f_w, self.f_a, self.f_u = w.frac_bits, a.frac_bits, u.frac_bits
        self.pow2_au = 2.0 ** (a.frac_bits + u.frac_bits)
        self.pow2_a = 2.0**a.frac_bits
        self.shift_acc = acc.frac_bits - a.frac_bits  # accumulator -> activation format
        self.shift_w = u.frac_bits + a.frac_bits - w.frac_bits  # update x input -> weight LSB
        self.shift_b = u.frac_bits - w.frac_bits  # update -> bias (weight) LSB
        self.rounding = ROUNDING_CODE[u.rounding]
        self.sr_bits = precision.sr_bits  # random bits per synapse of the SR unit
        self.sr_mask32 = np.uint32(sr_mask32(precision.sr_bits))  # kept bits of a hash word
        if u.rounding == "stochastic":
            for name, sh in (("update.frac_bits", self.shift_w), ("update.frac_bits (bias)", self.shift_b)):
                if not 1 <= sh <= 62:
                    raise ConfigError(
                        name,
                        f"stochastic rounding needs update.frac_bits + activation.frac_bits - "
                        f"weight.frac_bits in 1..62 (and update.frac_bits > weight.frac_bits), got shift {sh}",
                    )
        self.slope_q = int(math.floor(self.slope * 2**SLOPE_FRAC + 0.5))
        # limits as (lo, hi) and overflow codes, in SAT_* order
        fmts = (acc, a, u, w)
        self.lo = np.array([f.min_int for f in fmts], dtype=np.int64)
        self.hi = np.array([f.max_int for f in fmts], dtype=np.int64)
        self.wrap = np.array([OVERFLOW_CODE[f.overflow] for f in fmts], dtype=np.int64)
        self.raise_on = [f.overflow == "raise" for f in fmts]
        self.gate_h2 = 2.0 ** (-2 * a.frac_bits)  # tanh'(h) = 1 - h^2 with h^2 exact in int64
        if spec.activation == "tanh":
            codes = np.arange(a.min_int, a.max_int + 1, dtype=np.int64)
            self.lut = quantize(np.tanh(dequantize(codes, a)), a)[0]
        else:
            self.lut = np.zeros(1, dtype=np.int64)

    def layer(self, k: int) -> "OpsBase":
        """The ops of layer ``k`` (this object unless layers have their own weight formats)."""
        return self if self._layers is None else self._layers[k]

    # -- parameters ----------------------------------------------------------------------------
    def store_params(self, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Real-valued weights and biases -> stored arrays (float32, or integers in weight format)."""
        if not self.fixed:
            return np.ascontiguousarray(w, np.float32), np.ascontiguousarray(b, np.float32), 0
        fmt = self.precision.weight
        try:
            qw, s1 = quantize(w, fmt)
            qb, s2 = quantize(b, fmt)
        except SaturationError as exc:
            raise SaturationError(f"weights do not fit the weight format {fmt}: {exc}") from None
        dt = storage_dtype(fmt.bits)
        return np.ascontiguousarray(qw.astype(dt)), np.ascontiguousarray(qb.astype(dt)), s1 + s2

    def real_params(self, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stored weights and biases -> float64 real values."""
        if not self.fixed:
            return w.astype(np.float64), b.astype(np.float64)
        fmt = self.precision.weight
        return dequantize(w, fmt), dequantize(b, fmt)

    def store_class_vectors(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Unit class vectors ``(N, m)`` -> (stored vectors, their norms, the storage scale).

        In fixed point the vectors are stored at a power-of-two scale ``s`` chosen so that the
        largest entry uses the top of the class-vector format (only the direction matters).
        """
        if not self.fixed:
            return np.ascontiguousarray(v, np.float32), np.ones(len(v)), 1.0
        fmt = self.precision.class_vector
        scale = 2.0 ** math.floor(math.log2(fmt.max_value / np.abs(v).max()))
        vq, _ = quantize(v * scale, fmt)
        norms = np.sqrt((vq * vq).sum(axis=1).astype(np.float64))
        if np.any(norms == 0):
            raise ConfigError("class_vector.bits", f"{fmt} rounds some class vector to zero")
        return vq, norms, scale

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Layer-1 input: float32, or int64 in the activation format (round to nearest)."""
        if not self.fixed:
            return np.ascontiguousarray(x, dtype=np.float32)
        q, _ = quantize(x, self.precision.activation)
        return q

    def check_overflow(self, sat: np.ndarray) -> None:
        """Apply the ``"raise"`` overflow policy to the counts a primitive returned."""
        if not self.fixed:
            return
        for k, (flag, name) in enumerate(zip(self.raise_on, SAT_FORMATS)):
            if flag and sat[k]:
                raise SaturationError(f"{int(sat[k])} value(s) overflowed the {name} format "
                                      f"{getattr(self.precision, name)}")


# -- backprop (softmax cross-entropy loss unit and error path) ---------------------------------
EXP2_FRAC_BITS = 10  # fraction bits of the base-2 exponential's look-up table (1024 entries)
GATE_FRAC = 16  # activation derivatives are 16-fractional-bit integers on the error path


def exp2_tables(q: int = EXP2_FRAC_BITS) -> tuple[np.ndarray, np.ndarray]:
    """Look-up tables of the loss unit's exponential: ``2**(-j / 2**q)`` and ``2**-n`` (n < 63, 0 at 63)."""
    lut = np.exp2(-np.arange(1 << q, dtype=np.float64) / (1 << q))
    pow2neg = np.ldexp(1.0, -np.arange(64))
    pow2neg[63] = 0.0
    return lut, pow2neg


def backprop_constants(ops: OpsBase) -> dict:
    """Constants of the fixed-point softmax and error path of ``ops`` (computed once, shared).

    ``c1 = log2(e) * 2**(q - f_a)`` turns a logit difference in activation LSBs into units of
    ``2**-q`` of a base-2 exponent; ``two_fa = 2 f_a`` is the scale of ``h^2`` for tanh's
    derivative.
    """
    cached = ops.__dict__.get("_backprop_constants")
    if cached is None:
        lut, pow2neg = exp2_tables()
        cached = {"q": EXP2_FRAC_BITS, "lut": lut, "pow2neg": pow2neg}
        if ops.fixed:
            cached["c1"] = math.log2(math.e) * 2.0 ** (EXP2_FRAC_BITS - ops.f_a)
            cached["pow2_u"] = 2.0**ops.f_u
            cached["two_fa"] = 2 * ops.f_a
        ops.__dict__["_backprop_constants"] = cached
    return cached
