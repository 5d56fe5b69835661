"""The numba backend of the fixed-point conv blocks: :mod:`spela_hw.conv.fixed`'s pipeline on the
kernels of :mod:`spela_hw._kernels.conv_fixed`, bit for bit (same codes, same saturation counts,
same stochastic-rounding stream; ``tests/test_conv_kernels.py``).

What differs is only how the work is laid out. The convolution's integer sums and the conv
layer's update sums are BLAS products in float64 when they are exact there: every term and
every partial sum an integer below ``2**53``, which a bound on the operands' largest magnitudes
and the number of terms guarantees (then any summation order, FMA included, gives the exact
integer); otherwise loop kernels in int32 or int64 (the convolution reads the padded maps
directly, the update sums run over the non-zero post-synaptic terms only). Every channel's
projection is one slice of a stacked ``(C, d, S)`` array (``FixedBlock.proj.weights`` are views
of it). Adam steps from the exact sums on a kernel (:mod:`spela_hw._kernels.optim_fixed`),
momentum by :func:`spela_hw.rules.optim.step_from_sums`, plain SGD rounds them with the SR unit
as ``ops.update`` does.
"""

from __future__ import annotations

import numpy as np

from .._kernels import conv_fixed as K
from .._kernels import optim_fixed
from ..rng import stream_keys
from ..rules.optim import (
    STEP_FRAC,
    is_stateful,
    layer_optimizer_state,
    post_scale,
    step_from_sums,
)
from .reference import im2col

__all__ = ["forward", "project", "step"]

_I32 = 2**31 - 1
_EXACT = 2**53  # float64 holds every integer below this exactly
_COLS_MAX = 1 << 22  # im2col values per BLAS product (32 MB in float64)
#: From this batch size the projections' products run on BLAS (when exact): below, converting
#: the projections to float64 costs more than the loop kernels.
BLAS_BATCH = 8


def _amax(a: np.ndarray) -> int:
    """Largest magnitude in ``a`` (two reductions, no widened copy: 10-25x faster than ``abs``)."""
    return max(int(a.max()), -int(a.min())) if a.size else 0


def _exact(a: np.ndarray, b: np.ndarray, terms: int) -> bool:
    """Whether float64 sums of ``terms`` products of entries of ``a`` and ``b`` are exact."""
    return terms * _amax(a) * _amax(b) < _EXACT


def _col_chunks(xq: np.ndarray, kk: int, stride: int):
    """``(s0, s1, cols)``: im2col rows ``(samples x positions, C K K)`` in float64 of the padded
    input, a few samples at a time (at most ``_COLS_MAX`` values each)."""
    per = max(1, _COLS_MAX // max(1, im2col(xq[:1], kk, stride, 0)[0].size))
    for s0 in range(0, len(xq), per):
        cols, _, _ = im2col(xq[s0:s0 + per].astype(np.float64), kk, stride, 0)
        yield s0, min(s0 + per, len(xq)), cols.reshape(-1, cols.shape[-1])


def _narrow(a: np.ndarray, w: np.ndarray, fan_in: int) -> np.dtype:
    """int32 when no partial sum of ``fan_in`` products of ``a`` and ``w`` can leave int32."""
    amax = _amax(a)
    return np.dtype(np.int32) if amax <= _I32 and fan_in * amax * _amax(w) <= _I32 else np.dtype(np.int64)


def forward(fb, blk, x: np.ndarray):
    """``(y, cache, sat)`` as :func:`spela_hw.conv.fixed.fixed_block_forward`; the cache holds
    the padded input, the pre-activations and the pool's indices."""
    ops = fb.conv_ops
    x = np.asarray(x, np.int64)
    pad, kk, stride = blk.padding, blk.kernel, blk.stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    nb, nc, hh, ww = xp.shape
    hc, wc = (hh - kk) // stride + 1, (ww - kk) // stride + 1
    dt = _narrow(xp, fb.w, nc * kk * kk)
    xq = np.ascontiguousarray(xp, dt)
    f = fb.w.shape[0]
    a = np.empty((nb, f, hc, wc), np.int64)
    h = np.empty_like(a)
    sat = np.zeros(4, np.int64)
    bias = np.ascontiguousarray(fb.conv.biases[0])
    chunks = None
    if _exact(xq, fb.w, nc * kk * kk):
        wt = fb.w.reshape(f, -1).T.astype(np.float64)
        chunks = list(_col_chunks(xq, kk, stride)) if len(xq) * hc * wc * nc * kk * kk <= _COLS_MAX else None
        for s0, s1, cols in chunks or _col_chunks(xq, kk, stride):
            K.conv_activate(cols @ wt, bias, ops.f_a, ops.shift_acc, ops.lo, ops.hi, ops.wrap, np.int64(ops.slope_q),
                            a[s0:s1], h[s0:s1], sat)
    else:
        wt = np.ascontiguousarray(fb.w.transpose(1, 2, 3, 0), dt)
        K.conv_forward(xq, wt, bias, stride, hc, wc, ops.f_a, ops.shift_acc, ops.lo, ops.hi, ops.wrap,
                       np.int64(ops.slope_q), np.zeros(f, dt), a, h, sat)
    xin = (xq, chunks)  # the update sums reuse the im2col rows of one chunk
    if blk.pool == 1:
        return h, (xin, a, None, h.shape), sat
    y = np.empty((nb, f, hc // blk.pool, wc // blk.pool), np.int64)
    idx = np.empty(y.shape, np.int64)
    K.max_pool(h, blk.pool, y, idx)
    return y, (xin, a, idx, h.shape), sat


def _views_of(stack, arrays) -> bool:
    return stack is not None and len(arrays) == len(stack) and all(a.base is stack for a in arrays)


def projection_stack(fb) -> np.ndarray:
    """The projections ``(C, d, S)`` of which ``fb.proj.weights`` are views (re-stacked, and the
    views re-pointed, if something replaced the per-channel arrays, e.g. a model file)."""
    if not _views_of(fb.proj_stack, fb.proj.weights):
        fb.proj_stack = np.ascontiguousarray(np.stack(fb.proj.weights))
        fb.proj.weights[:] = list(fb.proj_stack)
    return fb.proj_stack


_MOMENTS = ("m_w", "v_w", "m_b", "v_b")


def _adam_moments(layer, optimizer, ks) -> list:
    """Adam's moments of ``layer``'s arrays ``ks`` stacked ``(L, ...)`` (the per-array state
    dicts hold views of the stacks, re-stacked when a model file replaced them); every array's
    step count advanced, as ``optim._steps`` does."""
    states = [layer_optimizer_state(layer, optimizer, k) for k in ks]
    stacks = layer.extra.setdefault("_adam_stacks", {})
    out = []
    for name in _MOMENTS:
        parts = [st[name] for st in states]
        if len(ks) == 1:  # one array: its own moments, with a leading axis
            out.append(parts[0][None])
            continue
        if not _views_of(stacks.get(name), parts):
            stacks[name] = np.ascontiguousarray(np.stack(parts))
            for st, view in zip(states, stacks[name]):
                st[name] = view
        out.append(stacks[name])
    for st in states:
        st["t"] += 1
    ts = np.array([st["t"] for st in states], np.float64)
    return out, ts


def _float_projections(fb, nb: int):
    """The projections ``(C, d, S)`` in float64 for a batch of ``nb`` (BLAS), or ``None`` (kernels)."""
    return projection_stack(fb).astype(np.float64) if nb >= BLAS_BATCH else None


def project(fb, y: np.ndarray, pw64=None):
    """``(q (C, B, d), maps (B, C, S), sat)``: every channel's projection of ``y`` (``pw64``:
    the projections in float64 for BLAS, when exact there)."""
    ops = fb.proj_ops
    pw = projection_stack(fb)
    ys = np.ascontiguousarray(y.reshape(y.shape[0], y.shape[1], -1))
    q = np.empty((pw.shape[0], len(y), pw.shape[1]), np.int64)
    sat = np.zeros(4, np.int64)
    pw64 = _float_projections(fb, len(y)) if pw64 is None else pw64
    if pw64 is not None and _exact(ys, pw, ys.shape[2]):
        acc = np.matmul(ys.transpose(1, 0, 2).astype(np.float64), pw64.transpose(0, 2, 1))
        K.project_finish(acc, ops.shift_acc, ops.lo, ops.hi, ops.wrap, q, sat)
    else:
        K.project(ys, pw, ops.shift_acc, ops.lo, ops.hi, ops.wrap, q, sat)
    return q, ys, sat


def _step_sums(layer, ops, optimizer, ks, w, b, gw, gb, lr: float, keys) -> np.ndarray:
    """One optimiser step of ``layer``'s stored arrays ``ks`` (their weights stacked in ``w``
    ``(L, m, n)``, biases ``b`` ``(L, m)``) from their exact sums ``gw``, ``gb``; saturations."""
    sat = np.zeros(4, np.int64)
    lops = ops.layer(ks[0])
    if optimizer.kind == "adam" and lops is ops:
        (mw, vw, mb, vb), ts = _adam_moments(layer, optimizer, ks)
        c1 = (1.0 - optimizer.beta1**ts).astype(np.float32)
        c2 = (1.0 - optimizer.beta2**ts).astype(np.float32)
        optim_fixed.adam_fixed(w, b, gw, gb, mw, vw, mb, vb, 2.0 ** -(ops.f_u + ops.f_a), 2.0**-ops.f_u,
                               np.float32(lr), np.float32(optimizer.beta1), np.float32(optimizer.beta2),
                               np.float32(optimizer.eps), c1, c2, np.array(keys, np.uint64),
                               2.0 ** (ops.f_w + STEP_FRAC), ops.rounding, ops.lo, ops.hi, ops.wrap, sat)
        return sat
    for t, k in enumerate(ks):
        if is_stateful(optimizer):  # momentum, or layers of their own formats: NumPy
            sat += step_from_sums(layer, ops, optimizer, k, gw[t], gb[t], lr, int(keys[t]))[1]
            continue
        lops = ops.layer(k)
        K.apply_sums(w[t], b[t], gw[t], gb[t], np.uint64(keys[t]), np.uint32(lops.sr_mask32), lops.shift_w,
                     lops.shift_b, lops.rounding, lops.lo, lops.hi, lops.wrap, sat)
    return sat


def _conv_grad_sums(xin, pconv: np.ndarray, blk):
    """``(p_conv^T cols (F, C, K, K), sum p_conv (F,))`` exactly: BLAS in float64 per chunk of
    samples when exact there (int64 sums of the chunks), else the loop kernel. ``xin``: the
    padded input and the forward pass's im2col chunks (or ``None``)."""
    xq, chunks = xin
    nb, f, hc, wc = pconv.shape
    gb = pconv.sum(axis=(0, 2, 3))
    if _exact(pconv, xq, nb * hc * wc):
        gw = np.zeros((f, xq.shape[1] * blk.kernel**2), np.int64)
        p2 = pconv.transpose(0, 2, 3, 1).reshape(-1, f).astype(np.float64)
        for s0, s1, cols in chunks or _col_chunks(xq, blk.kernel, blk.stride):
            gw += (p2[s0 * hc * wc:s1 * hc * wc].T @ cols).astype(np.int64)
        return gw.reshape(f, xq.shape[1], blk.kernel, blk.kernel), gb
    gw = np.zeros((f, xq.shape[1], blk.kernel, blk.kernel), np.int64)
    K.conv_grad_sums(xq, pconv, blk.kernel, blk.stride, gw, np.zeros(f, np.int64))
    return gw, gb


def step(fb, blk, x, labels, optimizer, lr: float, train_projection: bool, rounding_seed: int, k: int,
         step_index: int):
    """:func:`spela_hw.conv.fixed.fixed_block_step` on the kernels: ``(y, update)``."""
    y, (xin, a, idx, hshape), sat = forward(fb, blk, x)

    def update() -> np.ndarray:
        nonlocal sat, idx
        pw64 = _float_projections(fb, len(x))
        q, ys, s = project(fb, y, pw64)
        sat += s
        pops = fb.proj_ops
        p = np.empty_like(q)
        K.loss_unit(q, np.ascontiguousarray(labels, np.int64), fb.groups, fb.targets, fb.target_norms,
                    post_scale(optimizer, lr, len(x)), pops.pow2_au, float(pops.lo[2]), float(pops.hi[2]), p, sat)
        pw = projection_stack(fb)
        pconv = np.zeros(hshape, np.int64)
        pool = blk.pool
        if idx is None:  # no pool: every position is its own window
            idx = np.zeros(hshape, np.int64)
        slope_q = np.int64(fb.conv_ops.slope_q)
        if pw64 is not None and _exact(p, pw, pw.shape[1]):
            e = np.matmul(p.astype(np.float64), pw64)
            K.route_error(e, pops.f_w, pops.lo, pops.hi, pops.wrap, idx, pool, a, slope_q, pconv, sat)
        else:
            K.conv_error(p, pw, pops.f_w, pops.lo, pops.hi, pops.wrap, idx, pool, a, slope_q, pconv, sat)
        gw, gb = _conv_grad_sums(xin, pconv, blk)
        f = fb.w.shape[0]
        # the conv layer's key and every projection's, in one vector call
        keys = stream_keys(rounding_seed, np.r_[10_000 + k, 20_000 + 1000 * k + np.arange(f)], step_index)
        sat += _step_sums(fb.conv, fb.conv_ops, optimizer, [0], fb.w.reshape(1, f, -1), fb.conv.biases[0][None],
                          gw.reshape(1, f, -1), gb[None], lr, keys[:1])
        if train_projection:
            sb = p.sum(axis=1)
            if pw64 is not None and _exact(p, ys, len(x)):
                sw = np.matmul(p.transpose(0, 2, 1).astype(np.float64), ys.transpose(1, 0, 2).astype(np.float64))
                sw = sw.astype(np.int64)
            else:
                sw = np.zeros(pw.shape, np.int64)
                K.projection_grad_sums(p, ys, sw, np.zeros(sb.shape, np.int64))
            bias = np.zeros(sb.shape, pw.dtype)  # the projection has no bias: held at zero, never stored
            sat += _step_sums(fb.proj, pops, optimizer, range(f), pw, bias, sw, sb, lr, keys[1:])
            if is_stateful(optimizer) and optimizer.kind != "adam":  # NumPy stepped the stored biases
                for bc in fb.proj.biases:
                    bc[...] = 0
        fb.conv_ops.check_overflow(sat)  # the "raise" policy
        return sat

    return y, update
