"""Pure-NumPy reference backend: the executable specification of every primitive.

Fixed-point pipeline (all integers exact in int64; ``f_x`` = fractional bits of format x)
------------------------------------------------------------------------------------------
forward
    ``acc = W x + (b << f_a)`` exactly, then saturated to the accumulator format
    (``f_acc = f_w + f_a``: the adder tree is wide, the accumulator register is checked once);
    ``a = round_nearest(acc >> f_w)`` saturated to the activation format;
    ``h = act(a)``: identity; LeakyReLU ``a if a > 0 else round_nearest(a * slope_q >> 16)``
    (slope as a 16-fractional-bit constant); tanh by a look-up table over every activation code.
SPELA loss unit (per sample; float64 scalars, exactly rounded IEEE operations only)
    ``n2 = sum h^2``, ``d = sum h v_y`` in int64; ``r = sqrt(n2)``; ``c = d / (r |v_y|)``;
    ``g = 1`` (``-cos``) or ``1 / (2 - c)`` (``log(2 - cos)``);
    ``s = lr/B * g * 2**(f_a + f_u) / r``, ``A = s / |v_y|``, ``C = s * c / r``;
    post-synaptic term ``p_i = floor(gate_i * (A v_i - C h_i) + 1/2)`` saturated to the update
    format, where ``gate_i`` is the activation's derivative (LeakyReLU: 1 or slope; tanh:
    ``1 - h_i^2``). ``p`` is ``lr/B * delta`` in the update format. ``n2 = 0``: ``p = 0``, counted.
update (per mini-batch)
    ``S_ij = sum_n p_ni x_nj`` exactly; ``dW_ij = round(S_ij >> (f_u + f_a - f_w))`` and
    ``db_i = round(sum_n p_ni >> (f_u - f_w))`` with the update format's rounding: nearest (half
    up), truncate (floor) or stochastic by the SR unit of :mod:`spela_hw.rng` (``sr_bits``
    random bits per synapse, ``PrecisionSpec.sr_bits``, from one 32-bit ``lowbias32`` word per
    two neighbouring output neurons: ``(S + r) >> shift`` with ``r`` from
    :func:`spela_hw.rng.sr_weight_offsets` and :func:`spela_hw.rng.sr_bias_offsets`, i.e. ``S``
    rounded to ``sr_bits`` bits below the weight LSB plus ``sr_bits`` random bits, the top bits
    of a 16-bit half-word with the bit below them set); then ``W += dW`` saturated to the
    weight format.
    A zero input or a zero post-synaptic term never changes a weight, even stochastically.
read-out
    ``scores_c = sum_i V_ci h_i`` (int64); argmax with the lowest index winning ties.

backprop loss unit (softmax cross-entropy; per sample, float64 scalars, exactly rounded IEEE
operations only, so that every backend computes the same bits)
    The logits are the last layer's pre-activation ``a`` (a linear output layer). The exponential
    is base 2 from look-up tables, never ``exp`` (libm's last ulp differs between NumPy and
    numba): ``k = floor((max_c a_c - a_c) * c1 + 1/2)`` with ``c1 = log2(e) * 2**(q - f_a)``
    (``q = 10``), ``e_c = LUT[k mod 2**q] * 2**-(k >> q)`` with ``LUT[j] = 2**(-j / 2**q)``
    (``e_c = 0`` once ``k >> q >= 63``); relative error of ``e_c`` at most ``ln 2 * 2**-(q+1)``
    (3.4e-4). ``S = e_0 + e_1 + ...`` in class order; ``P_c = e_c / S``;
    ``p_c = floor(lr/B * 2**f_u * ([c = y] - P_c) + 1/2)`` saturated to the update format;
    ``p_c = 0`` where the logit sits at a limit of the activation format (the derivative of
    saturation is 0: without this, a saturated logit's weights grow without bound).
backprop error path
    ``E = p_next W`` exactly in int64 (``f_u + f_w`` fractional bits; the rule checks that it
    cannot overflow), rounded to the update format ``round_nearest(E >> f_w)`` and saturated
    (counted), then multiplied by the activation's derivative as a 16-fractional-bit integer
    ``g`` (LeakyReLU: ``2**16`` if ``a > 0`` else ``slope_q``; tanh:
    ``round_nearest((2**(2 f_a) - h^2) >> (2 f_a - 16))``; identity: ``2**16``; 0 where ``a``
    sits at a limit of the activation format):
    ``p = round_nearest(v g >> 16)`` (no further saturation: ``|g| <= 2**16``).
    ``grad_sum`` returns ``(p^T x, sum p)`` exactly, for optimisers with state
    (:mod:`spela_hw.rules.optim`).

sigprop loss unit (logits of two streams; :mod:`spela_hw.rules.sigprop`)
    ``sigprop_logits``: ``z_nj = floor(float64(sum_i h_ni t_ji) * unit + 1/2)``, the dot product
    exact in int64 and ``unit`` a float64 constant (one exactly rounded product), e.g.
    ``2**-f_a / temperature`` to bring ``H T^T`` (``2 f_a`` fractional bits) to activation LSBs,
    the unit of ``softmax_ce_post``'s logits (whose base-2 look-up-table exponential sigprop's
    in-batch cross-entropy reuses: no ``exp`` anywhere in a fixed-point path); then
    ``z_nj -= max_j z_nj``, so the largest logit of a row is 0 and never at a limit of the
    activation format (``softmax_ce_post`` passes no gradient through a saturated logit: logits
    more than the format's range below their row's maximum, ``exp < 3.4e-4`` at 16 bits, drop out).
    ``sigprop_post``: ``p = floor(float64(d) * scale [* gate] + 1/2)`` saturated to the update
    format, for an exact int64 error ``d`` (``G T`` from the cross-entropy coefficients,
    ``t - h`` of the pull and Hebbian forms) and a float64 ``scale`` that carries ``lr / B`` and
    the power-of-two change of format; ``gate`` as in SPELA's loss unit.

Float32 path: the same formulas in float32 with NumPy's BLAS products (the softmax in float64
with ``exp``).
"""

from __future__ import annotations

import numpy as np

from ..activations import activate, activate_fixed, gate, gate_fixed
from ..fixedpoint import ROUNDING_MODES, saturate, shift_round
from ..rng import sr_bias_offsets, sr_weight_offsets
from .common import (GATE_FRAC, LOSS_CODE, SAT_ACCUMULATOR, SAT_ACTIVATION, SAT_UPDATE, SAT_WEIGHT,
                     OpsBase, backprop_constants)

__all__ = ["ReferenceOps"]


class ReferenceOps(OpsBase):
    """NumPy implementations of the primitives (see the module docstring for the arithmetic)."""

    name = "reference"

    # -- helpers -------------------------------------------------------------------------------
    def _sat(self, q, k, sat):
        fmt = (self.precision.accumulator, self.precision.activation, self.precision.update,
               self.precision.weight)[k]
        q, n = saturate(q, fmt, raise_on_overflow=False)
        sat[k] += n
        return q

    def _gate(self, a, h):
        """Derivative of the activation at ``a`` in float64 (:func:`spela_hw.activations.gate`)."""
        return gate(a, h, self.act_code, self.slope, self.gate_h2 if self.fixed else 1.0)

    # -- primitives ----------------------------------------------------------------------------
    def normalize_rows(self, x: np.ndarray) -> np.ndarray:
        """Each row scaled to unit L2 norm (all-zero rows stay zero)."""
        if not self.fixed:
            n = np.sqrt((x * x).sum(axis=1, dtype=np.float32))
            return (x / np.maximum(n, np.float32(1e-12))[:, None]).astype(np.float32)
        x = np.asarray(x, np.int64)
        r = np.sqrt((x * x).sum(axis=1).astype(np.float64))
        s = np.where(r > 0, self.pow2_a / np.where(r > 0, r, 1.0), 0.0)
        q = np.floor(x * s[:, None] + 0.5).astype(np.int64)
        return saturate(q, self.precision.activation, raise_on_overflow=False)[0]

    def forward(self, w, b, x):
        """Affine map and activation of a batch ``x`` ``(B, n)``: returns ``(a, h, sat)``."""
        sat = np.zeros(4, np.int64)
        if not self.fixed:
            a = x @ w.T + b
            return a.astype(np.float32), activate(a, self.act_code, self.slope).astype(np.float32), sat
        acc = np.asarray(x, np.int64) @ w.astype(np.int64).T + (b.astype(np.int64) << self.f_a)
        acc = self._sat(acc, SAT_ACCUMULATOR, sat)
        a = self._sat(shift_round(acc, self.shift_acc, "nearest"), SAT_ACTIVATION, sat)
        h = activate_fixed(a, self.act_code, self.slope_q, self.lut, self.precision.activation.min_int)
        return a, h.astype(np.int64), sat

    def spela_post(self, a, h, v_y, vnorm_y, scale: float, loss: str):
        """SPELA's post-synaptic term ``p = scale * delta`` for a batch.

        ``delta = -dl/da = g (v_y / (|v_y| |h|) - c h / |h|^2) * act'(a)`` for the loss
        ``l = f(c)`` of ``c = cos(h, v_y)``, ``g = -f'(c)`` (derived in :mod:`spela_hw.rules.spela`;
        the fixed-point arithmetic in the module docstring). ``v_y`` are the label's stored class
        vectors ``(B, m)``, ``vnorm_y`` their norms (float32 class vectors are unit rows: the float
        path takes ``|v_y| = 1``), ``scale = lr / B``. Returns ``(p, zero_norm_events, sat)``.
        """
        sat = np.zeros(4, np.int64)
        gate = self._gate(a, h)
        if not self.fixed:
            nrm = np.sqrt((h * h).sum(axis=1, dtype=np.float32))
            zero = nrm == 0
            safe = np.where(zero, np.float32(1), nrm)
            c = (h * v_y).sum(axis=1, dtype=np.float32) / safe
            g = np.ones_like(c) if LOSS_CODE[loss] == 0 else 1 / (2 - c)
            delta = (g / safe)[:, None] * gate * (v_y - c[:, None] * h / safe[:, None])
            p = np.float32(scale) * delta
            p[zero] = 0
            return p.astype(np.float32), int(zero.sum()), sat
        h = np.asarray(h, np.int64)
        n2 = (h * h).sum(axis=1)
        dot = (h * v_y).sum(axis=1)
        zero = n2 == 0
        r = np.sqrt(np.where(zero, 1, n2).astype(np.float64))
        c = dot.astype(np.float64) / (r * vnorm_y)
        g = np.ones_like(c) if LOSS_CODE[loss] == 0 else 1.0 / (2.0 - c)
        s = scale * g * self.pow2_au / r
        A = s / vnorm_y
        C = s * c / r
        t = (A[:, None] * v_y - C[:, None] * h) * gate
        t = np.floor(t + 0.5)
        lo, hi = self.lo[SAT_UPDATE], self.hi[SAT_UPDATE]
        sat[SAT_UPDATE] += int(np.count_nonzero(((t < lo) | (t > hi)) & ~zero[:, None]))
        p = np.clip(t, lo, hi).astype(np.int64)
        p[zero] = 0
        return p, int(zero.sum()), sat

    def update(self, w, b, p, x, key: int):
        """``W += round(p^T x)``, ``b += round(sum p)`` in place. Returns ``(writes, sat)``."""
        sat = np.zeros(4, np.int64)
        if not self.fixed:
            dw = p.T @ x
            db = p.sum(axis=0)
            w += dw
            b += db
            return int(np.count_nonzero(dw) + np.count_nonzero(db)), sat
        m, n = w.shape
        mode = ROUNDING_MODES[self.rounding]
        P = np.asarray(p, np.int64)
        S = P.T @ np.asarray(x, np.int64)
        Sb = P.sum(axis=0)
        rw = rb = None
        if mode == "stochastic":
            rw = sr_weight_offsets(key, m, n, self.shift_w, self.sr_bits)
            rb = sr_bias_offsets(key, m, n, self.shift_b, self.sr_bits)
        dw = shift_round(S, self.shift_w, mode, rw)
        db = shift_round(Sb, self.shift_b, mode, rb)
        w[...] = self._sat(w.astype(np.int64) + dw, SAT_WEIGHT, sat)
        b[...] = self._sat(b.astype(np.int64) + db, SAT_WEIGHT, sat)
        return int(np.count_nonzero(dw) + np.count_nonzero(db)), sat

    def readout(self, h, v):
        """Read-out scores ``h V^T`` ``(B, N)`` (cosine up to the positive factor 1/|h|)."""
        if not self.fixed:
            return h @ v.T
        return np.asarray(h, np.int64) @ np.asarray(v, np.int64).T

    # -- backprop primitives (see the "backprop" section of the module docstring) ---------------
    def _saturated(self, a):
        """Pre-activations at a limit of the activation format (their derivative is taken as 0)."""
        a = np.asarray(a, np.int64)
        return (a <= self.lo[SAT_ACTIVATION]) | (a >= self.hi[SAT_ACTIVATION])

    def _gate_q(self, a, h):
        """Activation derivative as a 16-fractional-bit integer (fixed-point error path)."""
        return gate_fixed(a, h, self.act_code, self.slope_q, backprop_constants(self)["two_fa"],
                          self.lo[SAT_ACTIVATION], self.hi[SAT_ACTIVATION])

    def softmax_ce_post(self, a, y, scale: float):
        """Backprop's output term ``p = scale * (onehot(y) - softmax(a))`` for logits ``a`` ``(B, N)``.

        ``scale`` is ``lr / B`` (SGD) or ``1 / B`` (optimisers with state). Returns ``(p, sat)``.
        """
        sat = np.zeros(4, np.int64)
        y = np.asarray(y, np.int64)
        onehot = np.arange(a.shape[1])[None, :] == y[:, None]
        if not self.fixed:
            z = np.asarray(a, np.float64)
            e = np.exp(z - z.max(axis=1, keepdims=True))
            prob = e / e.sum(axis=1, keepdims=True)
            return (scale * np.where(onehot, 1.0 - prob, -prob)).astype(np.float32), sat
        K = backprop_constants(self)
        q = K["q"]
        a = np.asarray(a, np.int64)
        d = (a.max(axis=1, keepdims=True) - a).astype(np.float64)
        k = np.floor(d * K["c1"] + 0.5).astype(np.int64)
        e = K["lut"][k & ((1 << q) - 1)] * K["pow2neg"][np.minimum(k >> q, 63)]
        tot = e[:, 0].copy()
        for c in range(1, e.shape[1]):  # class order, as the loss unit adds them
            tot = tot + e[:, c]
        prob = e / tot[:, None]
        t = np.floor(float(scale) * K["pow2_u"] * np.where(onehot, 1.0 - prob, -prob) + 0.5)
        t[self._saturated(a)] = 0.0
        lo, hi = self.lo[SAT_UPDATE], self.hi[SAT_UPDATE]
        sat[SAT_UPDATE] += int(np.count_nonzero((t < lo) | (t > hi)))
        return np.clip(t, lo, hi).astype(np.int64), sat

    def backprop_error(self, w, p_next, a, h):
        """Error term of the layer below: ``p = (p_next W) * act'(a)`` (``W`` of the layer above).

        ``p_next`` ``(B, m_next)`` is the layer above's term, ``a``, ``h`` ``(B, m)`` this layer's
        stored pre-activation and output. Returns ``(p, sat)``.
        """
        sat = np.zeros(4, np.int64)
        if not self.fixed:
            e = np.asarray(p_next, np.float32) @ np.asarray(w, np.float32)
            return (e * self._gate(a, h)).astype(np.float32), sat
        e = np.asarray(p_next, np.int64) @ np.asarray(w, np.int64)
        v = self._sat(shift_round(e, self.f_w, "nearest"), SAT_UPDATE, sat)
        return shift_round(v * self._gate_q(a, h), GATE_FRAC, "nearest"), sat

    def grad_sum(self, p, x):
        """``(p^T x, sum_n p)``: the summed outer products an optimiser with state steps from.

        Exact int64 in fixed point (``f_u + f_a`` and ``f_u`` fractional bits), float32 otherwise.
        """
        if not self.fixed:
            p = np.asarray(p, np.float32)
            return p.T @ np.asarray(x, np.float32), p.sum(axis=0)
        P = np.asarray(p, np.int64)
        return P.T @ np.asarray(x, np.int64), P.sum(axis=0)


    # -- sigprop primitives (see the "sigprop" section of the module docstring) -----------------
    def sigprop_logits(self, h, t, unit: float):
        """Logits ``(H T^T) * unit`` ``(B, B')`` of an input batch ``h`` against target rows ``t``,
        relative to each row's maximum (all ``<= 0``; the softmax is unchanged).

        Fixed point: exact int64 dot products rounded to nearest after the float64 product with
        ``unit`` (int64 result); float32 otherwise.
        """
        if not self.fixed:
            z = np.asarray(h, np.float32) @ np.asarray(t, np.float32).T * np.float32(unit)
            return (z - z.max(axis=1, keepdims=True)).astype(np.float32)
        z = np.asarray(h, np.int64) @ np.asarray(t, np.int64).T
        z = np.floor(z.astype(np.float64) * float(unit) + 0.5).astype(np.int64)
        return z - z.max(axis=1, keepdims=True)

    def sigprop_post(self, a, h, d, scale: float, gated: bool):
        """Post-synaptic term ``p = scale * d`` (times the activation's derivative at ``a`` when
        ``gated``) in the update format. Returns ``(p, sat)``."""
        sat = np.zeros(4, np.int64)
        if not self.fixed:
            p = np.asarray(d, np.float32) * np.float32(scale)
            if gated:
                p = p * self._gate(a, h)
            return p.astype(np.float32), sat
        t = np.asarray(d, np.int64).astype(np.float64) * float(scale)
        if gated:
            t = t * self._gate(a, h)
        t = np.floor(t + 0.5)
        lo, hi = self.lo[SAT_UPDATE], self.hi[SAT_UPDATE]
        sat[SAT_UPDATE] += int(np.count_nonzero((t < lo) | (t > hi)))
        return np.clip(t, lo, hi).astype(np.int64), sat
