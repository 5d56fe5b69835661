"""numba backend: the same primitives as :class:`~spela_hw.backends.reference.ReferenceOps`,
running compiled kernels. Fixed-point results equal the reference bit for bit."""

from __future__ import annotations

import numpy as np

from .._kernels import backprop as kbp
from .._kernels import fixed as kfx
from .._kernels import floating as kfl
from .._kernels import update as kup
from .._kernels import sigprop as ksp
from ..errors import DataError
from .common import LOSS_CODE, SAT_ACTIVATION, SAT_UPDATE, SAT_WEIGHT, OpsBase, backprop_constants
from .numba_fused import BATCHED_FORWARD_MIN, forward_batch, update_is_fast

__all__ = ["NumbaOps"]

#: Float32 batches of at least this many samples use BLAS for ``forward`` and ``update`` (the
#: per-step path of backprop and sigprop, and inference); a batch of one keeps the zero-skipping
#: kernels. BLAS also beat the zero-skipping batched kernel on sparse inputs: one thread, 2,048
#: MNIST images into 1,024 outputs, 9.5 against 15.6 us per sample (104 against 12 on a dense
#: hidden layer).
BLAS_BATCH_MIN = 8
#: Float32 SPELA mini-batches of at least this many samples train step by step on BLAS instead of
#: the fused kernels when the layers after the first hold at least as many weights as the first.
#: The fused kernels skip the first layer's zero inputs (most of an MNIST image), BLAS multiplies
#: the dense hidden layers faster: one thread, 784-1024x4, 1.18x at batch 16, 1.96x at 50, 2.97x
#: at 128; 784-1024-10 (the sparse first layer dominant) 0.71x at 50 (bench/RESULTS.md, "Fused
#: kernels or BLAS").
BLAS_STEPS_MIN_BATCH = 16


def _c(x, dtype=None):
    return np.ascontiguousarray(x, dtype=dtype)


class NumbaOps(OpsBase):
    name = "numba"

    #: Threads of the fused SPELA path (:meth:`spela_train_chunk`): with 2 or more, two threads
    #: each own part of every layer. Results never depend on it; 1 avoids per-step thread
    #: barriers on busy machines.
    threads = 1

    def __getstate__(self):
        # buffers the fused path keeps between calls (``_scratch_*``) are not state
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_scratch_")}

    def spela_train_chunk(self, state, rule, x, y, lr, batch_size, counts, device=None) -> bool:
        """Train many SPELA steps of ``batch_size`` samples in one compiled call.

        Same result and counts as :func:`spela_hw.rules.spela.train_batch` on each slice (bit for
        bit in fixed point); see :mod:`spela_hw.backends.numba_fused`. Returns ``False`` without
        doing anything when the configuration needs the per-step path (device model,
        ``update_order="recompute"``, optimiser other than plain SGD, ``"raise"`` overflow) or
        when that path is faster (float32 mini-batches of wide hidden layers on BLAS).
        """
        from .numba_fused import fused_supported, spela_train_chunk

        if not fused_supported(self, rule, device) or self._blas_steps_faster(state, batch_size):
            return False
        spela_train_chunk(self, state, rule, x, y, lr, batch_size, counts,
                          threads=int(self.threads))
        return True

    def _blas_steps_faster(self, state, batch_size: int) -> bool:
        """Whether a float32 chunk trains faster step by step on BLAS (``BLAS_STEPS_MIN_BATCH``)."""
        if self.fixed or batch_size < BLAS_STEPS_MIN_BATCH:
            return False
        return sum(w.size for w in state.weights[1:]) >= state.weights[0].size

    def quantize_input(self, x):
        """:meth:`OpsBase.quantize_input` compiled (round to nearest, saturate or wrap)."""
        fmt = self.precision.activation if self.fixed else None
        x = np.asarray(x)
        if fmt is None or fmt.rounding != "nearest" or fmt.overflow == "raise" or x.ndim != 2 \
                or x.dtype.kind != "f":
            return super().quantize_input(x)
        out = np.empty(x.shape, np.int64)
        sat = np.zeros(4, np.int64)
        bad = kfx.quantize_nearest(_c(x), 2.0**fmt.frac_bits, self.lo[SAT_ACTIVATION],
                                   self.hi[SAT_ACTIVATION], self.wrap[SAT_ACTIVATION], out, sat)
        if bad:
            raise DataError(f"cannot quantise non-finite values to {fmt} (NaN or inf in input)")
        return out

    def normalize_rows(self, x):
        if not self.fixed:
            x = _c(x, np.float32)
            out = np.empty_like(x)
            kfl.normalize_rows(x, out)
            return out
        x = _c(x, np.int64)
        out = np.empty_like(x)
        sat = np.zeros(4, np.int64)
        k = SAT_ACTIVATION
        kfx.normalize_rows(x, self.pow2_a, self.lo[k], self.hi[k], self.wrap[k], out, sat)
        return out

    def forward(self, w, b, x):
        nb, m = x.shape[0], w.shape[0]
        if not self.fixed and nb >= BLAS_BATCH_MIN:
            # BLAS on the row-major weights (the reference's own expression), no transpose.
            a = np.asarray(x, np.float32) @ np.asarray(w, np.float32).T + b
            h = np.empty_like(a)
            kfl.activate(a, self.act_code, self.slope, h)
            return a, h, np.zeros(4, np.int64)
        if nb >= BATCHED_FORWARD_MIN:  # transposed once, zero-skipping, sub-batched
            return forward_batch(self, w, b, x, threads=int(self.threads))
        sat = np.zeros(4, np.int64)
        if not self.fixed:
            a = np.empty((nb, m), np.float32)
            h = np.empty((nb, m), np.float32)
            kfl.forward(w, b, _c(x, np.float32), self.act_code, self.slope, a, h)
            return a, h, sat
        a = np.empty((nb, m), np.int64)
        h = np.empty((nb, m), np.int64)
        kfx.forward(w, b, _c(x, np.int64), self.f_a, self.shift_acc, self.lo, self.hi, self.wrap,
                    self.act_code, self.slope_q, self.lut, self.precision.activation.min_int, a, h, sat)
        return a, h, sat

    def spela_post(self, a, h, v_y, vnorm_y, scale, loss):
        sat = np.zeros(4, np.int64)
        p = np.empty(h.shape, np.float32 if not self.fixed else np.int64)
        if not self.fixed:
            z = kfl.spela_post(a, h, _c(v_y, np.float32), float(scale), LOSS_CODE[loss],
                               self.act_code, self.slope, p)
            return p, int(z), sat
        k = SAT_UPDATE
        z = kfx.spela_post(a, h, _c(v_y, np.int64), _c(vnorm_y, np.float64), float(scale),
                           LOSS_CODE[loss], self.act_code, self.slope, self.gate_h2, self.pow2_au,
                           float(self.lo[k]), float(self.hi[k]), p, sat)
        return p, int(z), sat

    def update(self, w, b, p, x, key):
        # Rows streamed over the span of non-zero inputs, vectorised (see _kernels.update).
        sat = np.zeros(4, np.int64)
        if not self.fixed:
            if p.shape[0] >= BLAS_BATCH_MIN:  # the reference's BLAS product, in place after
                p32 = np.asarray(p, np.float32)
                writes = kfl.add_count(w, p32.T @ np.asarray(x, np.float32))
                return int(writes + kfl.add_count(b, p32.sum(axis=0))), sat
            return int(kup.update_rows_float(w, b, _c(p, np.float32), _c(x, np.float32))), sat
        k = SAT_WEIGHT
        p, x = _c(p, np.int64), _c(x, np.int64)
        writes = kup.update_rows_fixed(w, b, p, x, np.uint64(key), self.sr_mask32, self.shift_w,
                                       self.shift_b, self.rounding, self.lo[k], self.hi[k], self.wrap[k],
                                       update_is_fast(self, p.shape[0], p, x), sat)
        return int(writes), sat

    def readout(self, h, v):
        out = np.empty((h.shape[0], v.shape[0]), np.float32 if not self.fixed else np.int64)
        (kfl if not self.fixed else kfx).readout(h, v, out)
        return out

    # -- backprop primitives (semantics in spela_hw.backends.reference) -------------------------
    def softmax_ce_post(self, a, y, scale):
        sat = np.zeros(4, np.int64)
        y = _c(y, np.int64)
        if not self.fixed:
            p = np.empty(a.shape, np.float32)
            kbp.softmax_ce_post_float(_c(a, np.float32), y, float(scale), p)
            return p, sat
        K = backprop_constants(self)
        p = np.empty(a.shape, np.int64)
        k = SAT_UPDATE
        kbp.softmax_ce_post_fixed(_c(a, np.int64), y, K["c1"], K["q"], K["lut"], K["pow2neg"],
                                  float(scale) * K["pow2_u"], self.lo[SAT_ACTIVATION], self.hi[SAT_ACTIVATION],
                                  float(self.lo[k]), float(self.hi[k]), p, sat)
        return p, sat

    def backprop_error(self, w, p_next, a, h):
        sat = np.zeros(4, np.int64)
        nb, m = p_next.shape[0], w.shape[1]
        if not self.fixed:
            p = np.empty((nb, m), np.float32)
            kbp.error_float(_c(w, np.float32), _c(p_next, np.float32), _c(a, np.float32),
                            _c(h, np.float32), self.act_code, self.slope, p)
            return p, sat
        p = np.empty((nb, m), np.int64)
        k = SAT_UPDATE
        kbp.error_fixed(_c(w), _c(p_next, np.int64), _c(a, np.int64), _c(h, np.int64), self.f_w,
                        self.act_code, np.int64(self.slope_q), backprop_constants(self)["two_fa"],
                        self.lo[SAT_ACTIVATION], self.hi[SAT_ACTIVATION], self.lo[k], self.hi[k],
                        self.wrap[k], p, sat)
        return p, sat

    def grad_sum(self, p, x):
        if not self.fixed:  # BLAS in float64: ~7x the scalar kernel on a 128x1024x784 batch
            p64, x64 = np.asarray(p, np.float64), np.asarray(x, np.float64)
            return (p64.T @ x64).astype(np.float32), p64.sum(axis=0).astype(np.float32)
        m, n = p.shape[1], x.shape[1]
        s, sb = np.zeros((m, n), np.int64), np.zeros(m, np.int64)
        kbp.grad_sum(_c(p, np.int64), _c(x, np.int64), s, sb)
        return s, sb


    # -- sigprop primitives (semantics in spela_hw.backends.reference) --------------------------
    def sigprop_logits(self, h, t, unit):
        out = np.empty((h.shape[0], t.shape[0]), np.float32 if not self.fixed else np.int64)
        if not self.fixed:
            ksp.logits_float(_c(h, np.float32), _c(t, np.float32), float(unit), out)
        else:
            ksp.logits_fixed(_c(h, np.int64), _c(t, np.int64), float(unit), out)
        return out

    def sigprop_post(self, a, h, d, scale, gated):
        sat = np.zeros(4, np.int64)
        if a is None:  # ungated: the derivative is never read
            a = h = np.zeros((1, 1), np.float32 if not self.fixed else np.int64)
        if not self.fixed:
            p = np.empty(d.shape, np.float32)
            ksp.post_float(_c(a, np.float32), _c(h, np.float32), _c(d, np.float32), float(scale),
                           bool(gated), self.act_code, self.slope, p)
            return p, sat
        p = np.empty(d.shape, np.int64)
        k = SAT_UPDATE
        ksp.post_fixed(_c(a, np.int64), _c(h, np.int64), _c(d, np.int64), float(scale), bool(gated),
                       self.act_code, self.slope, self.gate_h2, float(self.lo[k]), float(self.hi[k]),
                       p, sat)
        return p, sat
