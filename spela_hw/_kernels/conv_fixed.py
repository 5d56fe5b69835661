"""Fixed-point conv SPELA block: the numba twins of :mod:`spela_hw.conv.fixed` (bit for bit).

The reference forms ``im2col`` rows and runs the dense fixed-point layer on them; here the
convolution reads the (zero-padded) input maps directly, with the weights input-major
``wt[c, ki, kj, f]`` so that every input value updates the accumulators of all ``F`` filters in
one contiguous loop (and zero inputs are skipped). Integer sums are exact (int64, or int32 lanes
where the caller has checked that no partial sum can leave int32), so their order does not
matter; the loss unit evaluates the reference's float64 expressions in the same order.

Kernels (shapes: ``B`` samples, ``C`` input channels, ``F`` filters, ``K`` kernel, ``(Hc, Wc)``
conv map, ``(Hp, Wp)`` pooled map, ``S = Hp Wp``, ``d`` projection dimension):

==========================  ====================================================================
``conv_forward``            conv + bias, accumulator saturation, rounding to the activation
                            format, LeakyReLU: ``a``, ``h`` ``(B, F, Hc, Wc)``
``conv_activate``           the same from sums formed elsewhere (exact float64 BLAS products)
``max_pool``                ``pool x pool`` max-pool, first maximum of a window in row-major order
``project``                 every channel's projection ``q`` ``(F, B, d)`` (identity layer);
                            ``project_finish`` from sums formed elsewhere
``loss_unit``               the post-synaptic terms ``p`` ``(F, B, d)`` of the projection loss
``conv_error``              ``e = p P_c`` to the map, through the pool and the LeakyReLU gate;
                            ``route_error`` from sums formed elsewhere
``conv_grad_sums``          ``p_conv^T cols`` and ``sum p_conv`` without forming ``cols``
``projection_grad_sums``    ``p_c^T y_c`` and ``sum p_c`` of every channel
``apply_sums``              ``W += round(S)``, ``b += round(Sb)`` by the SR unit (``ops.update``)
==========================  ====================================================================
"""

import math

import numpy as np

from ..codes import NEAREST, STOCHASTIC
from . import jit
from .fixed import sr_offset
from .rounding import saturate, shift_round

GATE_FRAC = 16
GATE_ONE = 1 << GATE_FRAC


@jit
def conv_forward(xp, wt, b, stride, hc, wc, f_a, shift_acc, lo, hi, wrap, slope_q, acc, a_out,
                 h_out, sat):
    """``a = sat(round(sat(conv(xp, w) + (b << f_a)) >> shift_acc))``, ``h = LeakyReLU(a)``.

    ``xp`` ``(B, C, H + 2 pad, W + 2 pad)`` the zero-padded input codes, ``wt`` ``(C, K, K, F)``
    the weights input-major, ``acc`` ``(F,)`` scratch whose dtype holds every partial sum
    (int32 when the caller has bounded them, else int64). ``lo``, ``hi``, ``wrap`` in
    (accumulator, activation, update, weight) order; saturation events counted into ``sat``."""
    nb, nc = xp.shape[0], xp.shape[1]
    k = wt.shape[1]
    nf = wt.shape[3]
    for s in range(nb):
        for i in range(hc):
            for j in range(wc):
                for f in range(nf):
                    acc[f] = 0
                for c in range(nc):
                    for ki in range(k):
                        xrow = xp[s, c, i * stride + ki]
                        for kj in range(k):
                            xv = xrow[j * stride + kj]
                            if xv == 0:
                                continue
                            wrow = wt[c, ki, kj]
                            for f in range(nf):
                                acc[f] += wrow[f] * xv
                for f in range(nf):
                    v = np.int64(acc[f]) + (np.int64(b[f]) << np.int64(f_a))
                    v = saturate(v, lo[0], hi[0], wrap[0], sat, 0)
                    v = saturate(shift_round(v, shift_acc, NEAREST, 0), lo[1], hi[1], wrap[1], sat, 1)
                    a_out[s, f, i, j] = v
                    h_out[s, f, i, j] = v if v > 0 else shift_round(v * slope_q, GATE_FRAC, NEAREST, 0)


@jit
def conv_activate(acc, b, f_a, shift_acc, lo, hi, wrap, slope_q, a_out, h_out, sat):
    """The end of :func:`conv_forward` on precomputed sums ``acc`` ``(B Hc Wc, F)`` (row
    ``s Hc Wc + i Wc + j``; float64 holding exact integers, or int64): bias, saturation,
    rounding and LeakyReLU into ``a_out``, ``h_out`` ``(B, F, Hc, Wc)``."""
    nb, nf, hc, wc = a_out.shape
    for s in range(nb):
        for i in range(hc):
            for j in range(wc):
                row = acc[(s * hc + i) * wc + j]
                for f in range(nf):
                    v = np.int64(row[f]) + (np.int64(b[f]) << np.int64(f_a))
                    v = saturate(v, lo[0], hi[0], wrap[0], sat, 0)
                    v = saturate(shift_round(v, shift_acc, NEAREST, 0), lo[1], hi[1], wrap[1], sat, 1)
                    a_out[s, f, i, j] = v
                    h_out[s, f, i, j] = v if v > 0 else shift_round(v * slope_q, GATE_FRAC, NEAREST, 0)


@jit
def max_pool(h, pool, y_out, idx_out):
    """``y = max`` of each ``pool x pool`` window (stride ``pool``, odd edges dropped) and the
    index ``di * pool + dj`` of its first maximum in row-major order (NumPy's ``argmax``)."""
    nb, nf = h.shape[0], h.shape[1]
    hp, wp = y_out.shape[2], y_out.shape[3]
    for s in range(nb):
        for f in range(nf):
            for i in range(hp):
                for j in range(wp):
                    best = h[s, f, i * pool, j * pool]
                    arg = 0
                    for di in range(pool):
                        for dj in range(pool):
                            v = h[s, f, i * pool + di, j * pool + dj]
                            if v > best:
                                best = v
                                arg = di * pool + dj
                    y_out[s, f, i, j] = best
                    idx_out[s, f, i, j] = arg


@jit
def project(y, pw, shift_acc, lo, hi, wrap, q_out, sat):
    """``q[c, s] = sat(round(sat(P_c^T y[s, c]) >> shift_acc))`` (an identity layer without
    bias) for every channel ``c`` and sample ``s``; ``y`` ``(B, C, S)``, ``pw`` ``(C, d, S)``."""
    nb, nc, ns = y.shape
    d = pw.shape[1]
    acc = np.empty((nc, nb, d), np.int64)
    for c in range(nc):
        for s in range(nb):
            ys = y[s, c]
            for t in range(d):
                prow = pw[c, t]
                v = np.int64(0)
                for u in range(ns):
                    v += np.int64(prow[u]) * ys[u]
                acc[c, s, t] = v
    project_finish(acc, shift_acc, lo, hi, wrap, q_out, sat)


@jit
def project_finish(acc, shift_acc, lo, hi, wrap, q_out, sat):
    """The end of :func:`project` on its sums ``acc`` ``(C, B, d)`` (int64, or float64 holding
    exact integers): accumulator saturation, rounding, activation saturation."""
    nc, nb, d = acc.shape
    for c in range(nc):
        for s in range(nb):
            for t in range(d):
                v = saturate(np.int64(acc[c, s, t]), lo[0], hi[0], wrap[0], sat, 0)
                q_out[c, s, t] = saturate(shift_round(v, shift_acc, NEAREST, 0), lo[1], hi[1], wrap[1], sat, 1)


@jit(error_model="numpy")
def loss_unit(q, labels, groups, targets, tnorms, scale, pow2_au, lo_u, hi_u, p_out, sat):
    """The projection loss unit of :mod:`spela_hw.conv.fixed` (its float64 expressions in the
    same order): ``p`` ``(C, B, d)`` from ``q`` ``(C, B, d)``, the group vectors ``targets``
    ``(C, G, d)`` of norms ``tnorms`` and each channel's class -> group map ``groups``."""
    nc, nb, d = q.shape
    for c in range(nc):
        for s in range(nb):
            g = groups[c, labels[s]]
            t = targets[c, g]
            tn = tnorms[c, g]
            qs = q[c, s]
            n2 = np.int64(0)
            dot = np.int64(0)
            for k in range(d):
                n2 += qs[k] * qs[k]
                dot += qs[k] * t[k]
            ps = p_out[c, s]
            if n2 == 0:
                for k in range(d):
                    ps[k] = 0
                continue
            r = math.sqrt(np.float64(n2))
            cs = np.float64(dot) / (r * tn)
            gr = 2.0 * (1.0 - cs) / nc
            sc = scale * gr * pow2_au / r
            A = sc / tn
            C = sc * cs / r
            for k in range(d):
                v = math.floor(A * np.float64(t[k]) - C * np.float64(qs[k]) + 0.5)
                if v < lo_u or v > hi_u:
                    sat[2] += 1
                    v = lo_u if v < lo_u else hi_u
                ps[k] = np.int64(v)


@jit
def conv_error(p, pw, f_wp, lo, hi, wrap, idx, pool, a, slope_q, pconv_out, sat):
    """The conv layer's post-synaptic terms ``p_conv`` ``(B, F, Hc, Wc)`` (zero-filled by the
    caller): ``e = sat(round(p_c P_c >> f_wp))`` (exact int64 products), routed to each window's
    maximum (``idx``), times the LeakyReLU derivative as a 16-fractional-bit integer (0 where
    ``a`` sits at a limit of the activation format)."""
    nc, nb, d = p.shape
    ns = pw.shape[2]
    e = np.zeros((nc, nb, ns), np.int64)
    for c in range(nc):
        for s in range(nb):
            ps = p[c, s]
            es = e[c, s]
            for t in range(d):
                pv = ps[t]
                if pv == 0:
                    continue
                prow = pw[c, t]
                for u in range(ns):
                    es[u] += pv * np.int64(prow[u])
    route_error(e, f_wp, lo, hi, wrap, idx, pool, a, slope_q, pconv_out, sat)


@jit
def route_error(e, f_wp, lo, hi, wrap, idx, pool, a, slope_q, pconv_out, sat):
    """The end of :func:`conv_error` on its sums ``e`` ``(C, B, S)`` (int64, or float64 holding
    exact integers)."""
    nc, nb, ns = e.shape
    wp = idx.shape[3]
    for c in range(nc):
        for s in range(nb):
            for u in range(ns):
                v = saturate(shift_round(np.int64(e[c, s, u]), f_wp, NEAREST, 0), lo[2], hi[2], wrap[2], sat, 2)
                i, j = u // wp, u % wp
                di, dj = divmod(idx[s, c, i, j], pool)
                ii, jj = i * pool + di, j * pool + dj
                av = a[s, c, ii, jj]
                if av <= lo[1] or av >= hi[1]:
                    gate = np.int64(0)
                else:
                    gate = np.int64(GATE_ONE) if av > 0 else np.int64(slope_q)
                pconv_out[s, c, ii, jj] = shift_round(v * gate, GATE_FRAC, NEAREST, 0)


@jit
def conv_grad_sums(xp, pconv, k, stride, s_out, sb_out):
    """``s_out[f, c, ki, kj] += sum p_conv[s, f, i, j] xp[s, c, i stride + ki, j stride + kj]``
    and ``sb_out[f] += sum p_conv[s, f]``: the reference's ``p_conv^T cols`` over the non-zero
    terms only (exact int64)."""
    nb, nf, hc, wc = pconv.shape
    nc = xp.shape[1]
    for s in range(nb):
        for f in range(nf):
            for i in range(hc):
                for j in range(wc):
                    pv = pconv[s, f, i, j]
                    if pv == 0:
                        continue
                    sb_out[f] += pv
                    for c in range(nc):
                        for ki in range(k):
                            xrow = xp[s, c, i * stride + ki]
                            srow = s_out[f, c, ki]
                            for kj in range(k):
                                srow[kj] += pv * xrow[j * stride + kj]


@jit
def projection_grad_sums(p, y, s_out, sb_out):
    """``s_out[c, t, u] += sum_s p[c, s, t] y[s, c, u]``, ``sb_out[c, t] += sum_s p[c, s, t]``."""
    nc, nb, d = p.shape
    ns = y.shape[2]
    for c in range(nc):
        for s in range(nb):
            ys = y[s, c]
            for t in range(d):
                pv = p[c, s, t]
                if pv == 0:
                    continue
                sb_out[c, t] += pv
                srow = s_out[c, t]
                for u in range(ns):
                    srow[u] += pv * ys[u]


@jit
def apply_sums(w, b, s, sb, key, srmask, sh_w, sh_b, mode, lo, hi, wrap, sat):
    """``ops.update`` from the exact sums: ``W += round(S >> sh_w)``, ``b += round(Sb >> sh_b)``
    (``w`` ``(m, n)``), saturated to the weight format (counted in ``sat[3]``); stochastic
    rounding reads the SR unit's offsets of :func:`spela_hw.rng.sr_weight_offsets` and
    :func:`~spela_hw.rng.sr_bias_offsets`. A zero sum never changes a weight. Returns the
    number of changed weights and biases."""
    m, n = w.shape
    words = (m + 1) // 2
    writes = 0
    for i in range(m):
        for j in range(n):
            v = s[i, j]
            if v == 0:
                continue
            r = np.int64(0)
            if mode == STOCHASTIC:
                r = sr_offset(key, np.uint64(j * words + i // 2), i % 2, sh_w, srmask)
            dv = shift_round(v, sh_w, mode, r)
            if dv != 0:
                writes += 1
                w[i, j] = saturate(np.int64(w[i, j]) + dv, lo[3], hi[3], wrap[3], sat, 3)
    for i in range(m):
        v = sb[i]
        if v == 0:
            continue
        r = np.int64(0)
        if mode == STOCHASTIC:
            r = sr_offset(key, np.uint64(n * words + i // 2), i % 2, sh_b, srmask)
        dv = shift_round(v, sh_b, mode, r)
        if dv != 0:
            writes += 1
            b[i] = saturate(np.int64(b[i]) + dv, lo[3], hi[3], wrap[3], sat, 3)
    return writes
