"""Bit-true fixed-point conv SPELA blocks: the NumPy reference (the executable specification).

A conv block in fixed point is the package's dense fixed-point layer applied to image patches,
so it inherits the dense layers' arithmetic, formats, saturation and stochastic rounding exactly
(:mod:`spela_hw.backends.reference`):

forward
    ``cols = im2col(x)`` (integer codes of the activation format), then the dense forward of a
    layer with ``F`` outputs and fan-in ``C_in K K`` (``acc = W cols + (b << f_a)`` saturated to
    the accumulator, ``a = round_nearest(acc >> f_w)`` saturated to the activation format,
    LeakyReLU with a 16-fractional-bit slope); max-pool on the integer codes. No BatchNorm: an
    accelerator folds a trained BatchNorm into a per-channel scale and shift, and training it needs
    batch statistics in a wider format; fixed point trains ``norm="none"`` (``docs/conv.md``).
projection (``conv_target`` ``projection`` or ``fixed_projection``)
    Channel ``c``'s projection is a dense identity layer ``S -> d`` with weights ``P_c^T`` in the
    projection format (the weight format's width, range 4: ``P ~ N(0, 1)``) and no bias (its bias
    is held at zero and never stepped): ``q_c`` in the activation format.
loss unit (per sample and channel; float64 scalars from exact int64 dot products)
    ``n2 = |q|^2``, ``dot = q . t`` with ``t`` the group vector in the class-vector format,
    ``r = sqrt(n2)``, ``c = dot / (r |t|)``; ``g = 2 (1 - c) / C`` (the gradient of
    ``mean_c (1 - c)^2``); ``s = scale g 2**(f_a + f_u) / r`` with ``scale`` the optimiser's
    post-synaptic scale (``lr / B`` for SGD, ``1 / B`` with Adam); the term
    ``p = floor((s / |t|) t - (s c / r) q + 1/2)`` saturated to the update format; 0 for ``q = 0``.
error to the map and to the conv layer
    ``e = round_nearest((p P_c) >> f_wP)`` saturated to the update format; routed to each pool
    window's maximum; times the LeakyReLU derivative as a 16-fractional-bit integer (``2**16`` or
    the slope; 0 where the pre-activation sits at a limit of the activation format):
    ``p_conv = round_nearest(e g >> 16)``.
updates
    :func:`spela_hw.rules.optim.step_layer` of the conv layer (``p_conv`` against ``cols``) and of
    every trainable projection (``p`` against the channel's map): plain SGD rounds by the SR unit,
    Adam keeps float32 moments and rounds its step with 24 random bits, as for dense layers. Keys:
    ``stream_key(rounding_seed, 10000 + k, step)`` for block ``k``'s conv layer and
    ``stream_key(rounding_seed, 20000 + 1000 k + c, step)`` for its channel ``c``'s projection.

Backends: this module is the NumPy reference; ``FixedBlock.backend == "numba"`` (the default)
runs the same pipeline on compiled kernels (:mod:`spela_hw.conv.fixed_numba`), bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..backends.reference import ReferenceOps
from ..errors import ConfigError
from ..fixedpoint import FixedPointFormat, saturate, shift_round
from ..rng import stream_key
from ..rules.optim import post_scale, step_layer
from ..specs import NetworkSpec, PrecisionSpec
from .reference import im2col, pool_backward, pool_forward

__all__ = [
    "BACKENDS",
    "PROJECTION_RANGE",
    "FixedBlock",
    "fixed_block_forward",
    "fixed_block_scores",
    "fixed_block_step",
    "init_fixed_block",
    "projection_precision",
]

GATE_FRAC = 16
PROJECTION_RANGE = 4.0  # N(0, 1) projections: 4 sigma
BACKENDS = ("numba", "reference")


@dataclass
class _Layer:
    """The part of a network state :func:`step_layer` reads: one layer's stored arrays."""

    weights: list
    biases: list
    extra: dict = field(default_factory=dict)


@dataclass
class FixedBlock:
    """A conv block's stored integer parameters and the ops of its dense views."""

    conv_ops: ReferenceOps
    conv: _Layer  # weights[0] is the (F, C K K) view of w
    w: np.ndarray  # (F, C, K, K) integer codes
    proj_ops: ReferenceOps | None = None
    proj: _Layer | None = None  # weights[c] = P_c^T (d, S), biases[c] zeros
    targets: np.ndarray | None = None  # (F, G, d) int codes of the group vectors
    target_norms: np.ndarray | None = None  # (F, G)
    groups: np.ndarray | None = None  # (F, N)
    backend: str = "numba"  # "numba" (compiled kernels) or "reference" (this module's NumPy)
    proj_stack: np.ndarray | None = None  # (F, d, S): proj.weights[c] are its views


def projection_precision(precision: PrecisionSpec) -> PrecisionSpec:
    """The projections' precision: the weight format's width with range ``PROJECTION_RANGE``."""
    w = FixedPointFormat.for_range(precision.weight.bits, PROJECTION_RANGE, overflow=precision.weight.overflow)
    acc = replace(precision.accumulator, frac_bits=w.frac_bits + precision.activation.frac_bits)
    return replace(precision, weight=w, accumulator=acc, weight_exponents=())


def check_fixed_spec(spec) -> None:
    """Refuse what the fixed-point blocks do not implement (ConfigError naming the field)."""
    if spec.norm != "none":
        raise ConfigError("norm", "fixed-point conv blocks train without BatchNorm: use norm='none' "
                                  "(an accelerator folds a trained BatchNorm into a scale and shift)")
    if spec.conv_target == "pooled":
        raise ConfigError("conv_target", "fixed-point conv blocks support 'projection' and "
                                         "'fixed_projection' in this version")


def init_fixed_block(precision: PrecisionSpec, spec, k: int, float_block, backend: str = "numba") -> FixedBlock:
    """Quantise a float block's initial parameters (``float_block``, a ``model.BlockState``);
    ``backend`` (:data:`BACKENDS`) runs its steps, with the same results."""
    check_fixed_spec(spec)
    if backend not in BACKENDS:
        raise ConfigError("backend", f"must be one of {BACKENDS}, got {backend!r}")
    f = float_block.w.shape[0]
    fan_in = int(np.prod(float_block.w.shape[1:]))
    conv_ops = ReferenceOps(precision, NetworkSpec((fan_in, f), activation="leaky_relu", slope=float(spec.slope)))
    w, b, _ = conv_ops.store_params(float_block.w.reshape(f, -1).astype(np.float64), float_block.b.astype(np.float64))
    w4 = w.reshape(float_block.w.shape)
    fb = FixedBlock(conv_ops, _Layer([w4.reshape(f, -1)], [b]), w4, groups=float_block.groups, backend=backend)
    _, s, d = float_block.projection.shape
    fb.proj_ops = ReferenceOps(projection_precision(precision), NetworkSpec((s, d), activation="identity"))
    pw, pb = [], []
    for c in range(f):
        q, zero, _ = fb.proj_ops.store_params(float_block.projection[c].T.astype(np.float64), np.zeros(d))
        pw.append(q)
        pb.append(zero)
    fb.proj_stack = np.stack(pw)  # one array for the kernels; each channel's weights a view of it
    fb.proj = _Layer(list(fb.proj_stack), pb)
    g = float_block.targets.shape[1]
    fb.targets = np.zeros((f, g, d), np.int64)
    fb.target_norms = np.ones((f, g))
    for c in range(f):
        used = np.unique(float_block.groups[c])
        vq, norms, _ = fb.proj_ops.store_class_vectors(float_block.targets[c, used].astype(np.float64))
        fb.targets[c, used], fb.target_norms[c, used] = vq, norms
    return fb


def fixed_block_forward(fb: FixedBlock, blk, x: np.ndarray):
    """``(y, cache, sat)`` of a block on integer input maps ``x`` ``(B, C, H, W)``."""
    if fb.backend == "numba":
        from . import fixed_numba

        return fixed_numba.forward(fb, blk, x)
    cols, hc, wc = im2col(np.asarray(x, np.int64), blk.kernel, blk.stride, blk.padding)
    bsz = len(x)
    rows = cols.reshape(bsz * hc * wc, -1)
    a, h, sat = fb.conv_ops.forward(fb.conv.weights[0], fb.conv.biases[0], rows)
    f = fb.w.shape[0]
    hmap = np.ascontiguousarray(h.reshape(bsz, hc * wc, f).transpose(0, 2, 1)).reshape(bsz, f, hc, wc)
    y, idx = pool_forward(hmap, blk.pool)
    return y, (rows, a, idx, hmap.shape), sat


def _project(fb: FixedBlock, y: np.ndarray):
    """``q`` ``(C, B, d)`` in the activation format and the maps ``(C, B, S)``; saturations."""
    ys = np.ascontiguousarray(y.reshape(y.shape[0], y.shape[1], -1).transpose(1, 0, 2))
    sat = np.zeros(4, np.int64)
    qs = []
    for c in range(len(ys)):
        q, _, s = fb.proj_ops.forward(fb.proj.weights[c], fb.proj.biases[c], ys[c])
        qs.append(q)
        sat += s
    return np.stack(qs), ys, sat


def fixed_block_scores(fb: FixedBlock, y: np.ndarray) -> np.ndarray:
    """Read-out scores ``(B, N)``: the mean over channels of the cosine to each class's group vector."""
    if fb.backend == "numba":
        from . import fixed_numba

        q = fixed_numba.project(fb, y)[0]
    else:
        q = _project(fb, y)[0]
    n2 = (q * q).sum(axis=2).astype(np.float64)
    r = np.sqrt(np.where(n2 > 0, n2, 1.0))
    dots = np.einsum("cbd,cgd->cbg", q, fb.targets).astype(np.float64)
    cos = dots / (r[:, :, None] * fb.target_norms[:, None, :])
    cos = np.where(n2[:, :, None] > 0, cos, 0.0)
    idx = np.broadcast_to(fb.groups[:, None, :], (cos.shape[0], cos.shape[1], fb.groups.shape[1]))
    return np.take_along_axis(cos, idx, axis=2).mean(axis=0)


def _loss_unit(fb: FixedBlock, q, labels, scale: float):
    """The post-synaptic term ``p`` ``(C, B, d)`` of every channel (module docstring) and its saturations."""
    ops = fb.proj_ops
    n_ch = q.shape[0]
    gidx = fb.groups[:, labels]  # (C, B)
    t = np.take_along_axis(fb.targets, gidx[:, :, None], axis=1)  # (C, B, d)
    tn = np.take_along_axis(fb.target_norms, gidx, axis=1)  # (C, B)
    n2 = (q * q).sum(axis=2)
    dot = (q * t).sum(axis=2)
    zero = n2 == 0
    r = np.sqrt(np.where(zero, 1, n2).astype(np.float64))
    c = dot.astype(np.float64) / (r * tn)
    g = 2.0 * (1.0 - c) / n_ch
    s = scale * g * ops.pow2_au / r
    p = np.floor((s / tn)[:, :, None] * t - (s * c / r)[:, :, None] * q + 0.5)
    lo, hi = ops.lo[2], ops.hi[2]
    sat = np.zeros(4, np.int64)
    sat[2] += int(np.count_nonzero(((p < lo) | (p > hi)) & ~zero[:, :, None]))
    p = np.clip(p, lo, hi).astype(np.int64)
    p[zero] = 0
    return p, sat


def fixed_block_step(fb: FixedBlock, blk, x: np.ndarray, labels: np.ndarray, optimizer, lr: float,
                     train_projection: bool, rounding_seed: int, k: int, step: int):
    """One SPELA step of a fixed-point block: its forward pass now, and ``(y, update)``: ``y`` its
    output before the step, ``update()`` the step (returns the step's saturation counts, the
    forward pass's included, after applying the overflow policy to them; touches this block only,
    :mod:`spela_hw.conv.updates`)."""
    if fb.backend == "numba":
        from . import fixed_numba

        return fixed_numba.step(fb, blk, x, labels, optimizer, lr, train_projection, rounding_seed, k, step)
    y, (rows, a, idx, hshape), sat = fixed_block_forward(fb, blk, x)

    def update() -> np.ndarray:
        nonlocal sat
        q, ys, s = _project(fb, y)
        sat += s
        bsz = len(x)
        p, s = _loss_unit(fb, q, labels, post_scale(optimizer, lr, bsz))
        sat += s
        upd = fb.proj_ops.precision.update
        fwp = fb.proj_ops.f_w
        e = np.einsum("cbd,cds->cbs", p, np.stack(fb.proj.weights))  # exact int64
        e, n = saturate(shift_round(e, fwp, "nearest"), upd, raise_on_overflow=False)
        sat[2] += n
        de = np.ascontiguousarray(e.transpose(1, 0, 2)).reshape(y.shape)
        dh = pool_backward(de, idx, blk.pool, hshape)  # (B, F, Hc, Wc)
        f = hshape[1]
        d_rows = np.ascontiguousarray(dh.reshape(bsz, f, -1).transpose(0, 2, 1)).reshape(-1, f)
        ops = fb.conv_ops
        at_limit = (a <= ops.lo[1]) | (a >= ops.hi[1])
        gate = np.where(at_limit, 0, np.where(a > 0, np.int64(1 << GATE_FRAC), np.int64(ops.slope_q)))
        p_conv = shift_round(d_rows * gate, GATE_FRAC, "nearest")
        _, s = step_layer(fb.conv, ops, optimizer, 0, p_conv, rows, lr, stream_key(rounding_seed, 10_000 + k, step))
        sat += s
        if train_projection:
            for c in range(f):
                _, s = step_layer(fb.proj, fb.proj_ops, optimizer, c, p[c], ys[c], lr,
                                  stream_key(rounding_seed, 20_000 + 1000 * k + c, step))
                sat += s
                fb.proj.biases[c][...] = 0  # the projection has no bias
        fb.conv_ops.check_overflow(sat)  # the "raise" policy
        return sat

    return y, update
