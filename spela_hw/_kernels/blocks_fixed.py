"""Fixed-point block passes: one block of output neurons of one layer, its pending update (step
``t``) fused with its forward pass (step ``t + 1``), input-major (:func:`fx_block_im`) or
output-major (:func:`fx_block_om`); see :mod:`spela_hw._kernels` for why and for the lanes.
"""


import numpy as np

from ..codes import LEAKY_RELU, NEAREST, STOCHASTIC
from . import jit
from .activation import act_fixed
from .buffers import B_SAT_ACC, B_SAT_ACT
from .fixed import saturate, shift_round, sr_key32
from .rounding_lanes import (BIAS, ashr32, fx_apply, fx_apply_p16, fx_apply_p32, fx_apply_px,
                             fx_apply_px32, fx_apply_xp32, fx_bias, fx_bias_block)
from .sparse import active_rows
from .sr_unit import sr_const_fill, sr_half_extract, sr_words

@jit
def fx_activate(v, lo, hi, wrap, shift_acc, act, sat1):
    """Accumulator -> (a, h): saturate, round to the activation format, activation function
    ``act`` (:class:`~.records.Activation`; the general path: any overflow mode)."""
    v = saturate(v, lo[0], hi[0], wrap[0], sat1, 0)
    av = saturate(shift_round(v, shift_acc, NEAREST, 0), lo[1], hi[1], wrap[1], sat1, 1)
    return av, act_fixed(av, act.code, act.slope_q, act.lut, act.act_min)


@jit
def fx_activate_row(ac, a3, ao, ho, w, lo, hi, wrap, shift_acc, act, sat1):
    """(ao, ho)[i] = activation of the accumulator ac[i] + a3[i], i < w (branch-light when the
    formats saturate; the general path otherwise)."""
    if wrap[0] != 0 or wrap[1] != 0 or shift_acc <= 0:
        for i in range(w):
            av, hv = fx_activate(ac[i] + a3[i], lo, hi, wrap, shift_acc, act, sat1)
            ao[i] = av
            ho[i] = hv
        return
    act_code, slope_q, lut, act_min = act.code, act.slope_q, act.lut, act.act_min
    lo0, hi0, lo1, hi1 = lo[0], hi[0], lo[1], hi[1]
    half = np.int64(1) << np.int64(shift_acc - 1)
    n0 = 0
    n1 = 0
    lim = np.int64(1) << np.int64(61)
    if act_code == LEAKY_RELU and -lim < lo0 and hi0 < lim and shift_acc < 62 and \
            max(-lo1, hi1) * abs(slope_q) + 32768 < (np.int64(1) << np.int64(31)):
        # LeakyReLU in vector lanes: the rounding shift as a logical shift of v + half + 2**62
        # (AVX2 has no 64-bit arithmetic shift) and the slope product in int32 (it fits)
        ush = np.uint64(shift_acc)
        off = np.int64(BIAS >> ush)
        s32 = np.int32(slope_q)
        r32 = np.int32(32768)
        s16 = np.int32(16)
        for i in range(w):
            v = ac[i] + np.int64(a3[i])
            n0 += np.int64(v < lo0) + np.int64(v > hi0)
            v = lo0 if v < lo0 else v
            v = hi0 if v > hi0 else v
            av = np.int64((np.uint64(v + half) + BIAS) >> ush) - off
            n1 += np.int64(av < lo1) + np.int64(av > hi1)
            av = lo1 if av < lo1 else av
            av = hi1 if av > hi1 else av
            ao[i] = av
            neg = np.int64(ashr32(np.int32(np.int32(av) * s32 + r32), s16))
            ho[i] = av if av > 0 else neg
        sat1[0] += n0
        sat1[1] += n1
        return
    for i in range(w):
        v = ac[i] + np.int64(a3[i])
        n0 += np.int64(v < lo0) + np.int64(v > hi0)
        v = lo0 if v < lo0 else v
        v = hi0 if v > hi0 else v
        av = (v + half) >> shift_acc
        n1 += np.int64(av < lo1) + np.int64(av > hi1)
        av = lo1 if av < lo1 else av
        av = hi1 if av > hi1 else av
        ao[i] = av
        ho[i] = act_fixed(av, act_code, slope_q, lut, act_min)
    sat1[0] += n0
    sat1[1] += n1


@jit
def fx_block_im(i0, i1, n, m, wt, b, key, lay, act, pp, pend, cur, scr, a_out, h_out, cnt):
    """Input-major block [i0, i1) (``i0`` even) of a layer with formats ``lay``
    (:class:`~.records.FixedLayer`) and activation ``act``: the pending update (terms ``pp`` of
    the inputs ``pend``, rounding key ``key``), then the forward pass of the new inputs ``cur``
    (both :class:`~.records.Inputs`, by column) into ``a_out``, ``h_out``. ``wt`` holds the
    block's own weights ``(n, i1 - i0)`` (:func:`~.buffers.block_view`); the scratch ``scr``
    (:class:`~.records.FixedScratch`: ``acc``, ``acc32`` ``(cur.nb, >= w)``, ``srow``, ``zbuf``
    read as the SR unit's uint32 words, one per two outputs, ``phl`` the pending terms split for
    :func:`~.rounding_lanes.fx_apply_px32`) is the block's own, indexed from 0."""
    lo, hi, wrap, f_a, shift_acc = lay.lo, lay.hi, lay.wrap, lay.f_a, lay.shift_acc
    sh_w, sh_b, mode, srmask = lay.sh_w, lay.sh_b, lay.mode, lay.srmask
    kflush, fast, fast32 = lay.kflush, lay.fast, lay.fast32
    has_prev, pnb, pptr, pidx, pval = pend.nb > 0, pend.nb, pend.ptr, pend.idx, pend.val
    cnb, cptr, cidx, cval = cur.nb, cur.ptr, cur.idx, cur.val
    acc, acc32, srow, zbuf, phl = scr.acc, scr.acc32, scr.srow, scr.zbuf, scr.phl
    lo_w, hi_w, wrap_w = lo[3], hi[3], wrap[3]
    w = i1 - i0
    bb = b[i0:i1]
    nw = (w + 1) // 2
    zb = zbuf.view(np.uint32)[:nw]
    r16 = zb.view(np.uint16)
    e = sh_w - 16
    pmax = np.int64(0)  # largest |p| of the pending terms (fast32 only)
    # int16 lanes for the weights: |d| <= 2**(14 - e) + 1 once |p x| < 2**30
    use16 = fast32 and w < 32768 and \
        max(-lo_w, hi_w) + (np.int64(1) << np.int64(max(14 - e, 0))) + 1 < 32767
    if has_prev:
        sr = srow[:w]
        for i in range(w):
            sr[i] = 0
        for s in range(pnb):
            ps = pp[s, i0:i1]
            for i in range(w):
                sr[i] += ps[i]
        fx_bias_block(bb, sr, i0, w, m, n, key, srmask, sh_b, mode, lo_w, hi_w, wrap_w, zb, cnt)
        if mode != STOCHASTIC:
            sr_const_fill(r16, w, mode)
        if fast32:
            for s in range(pnb):
                ps = pp[s, i0:i1]
                for i in range(w):
                    pmax = max(pmax, abs(np.int64(ps[i])))
            xpmax = np.int64(0)  # largest pending input
            for q in range(pptr[n]):
                xpmax = max(xpmax, abs(np.int64(pval[q])))
            if pmax * xpmax >= (np.int64(1) << np.int64(30)):  # some rows need the split
                mask = (np.int64(1) << np.int64(e)) - 1
                for s in range(pnb):
                    ps = pp[s, i0:i1]
                    ph = phl[0, s, i0:i1]
                    pl = phl[1, s, i0:i1]
                    for i in range(w):
                        pv = np.int64(ps[i])
                        ph[i] = pv >> e
                        pl[i] = pv & mask
    for s in range(cnb):
        ac = acc[s, :w]
        a3 = acc32[s, :w]
        for i in range(w):
            ac[i] = np.int64(bb[i]) << np.int64(f_a)
            a3[i] = 0
    rowlist = np.empty(n, np.int64)
    nrows = active_rows(n, has_prev, pptr, cptr, rowlist)
    sr = srow[:w]
    P = np.uint64((m + 1) // 2)
    ukey = np.uint64(sr_key32(key)) + np.uint64(i0 // 2)
    rows = 0
    d16 = srow[:w].view(np.int16)  # the int16 increments (srow is free in single-sample rows)
    for t in range(nrows):
        j = rowlist[t]
        q0 = pptr[j] if has_prev else 0
        q1 = pptr[j + 1] if has_prev else 0
        c0 = cptr[j]
        c1 = cptr[j + 1]
        row = wt[j]
        if q1 > q0 and mode == STOCHASTIC:
            sr_words(zb, nw, ukey + np.uint64(j) * P, 1, srmask)
        if q1 == q0 + 1:
            s = pidx[q0]
            if fast32 and pmax * abs(np.int64(pval[q0])) < (np.int64(1) << np.int64(30)):
                # the whole product fits int32 (|p x| < 2**30 leaves room for + r16)
                if use16:
                    fx_apply_p16(row, pp[s, i0:i1], pval[q0], r16, w, e, lo_w, hi_w, cnt, d16)
                else:
                    fx_apply_p32(row, pp[s, i0:i1], pval[q0], r16, w, e, lo_w, hi_w, cnt)
            elif fast32:
                fx_apply_px32(row, phl[0, s, i0:i1], phl[1, s, i0:i1], pval[q0], r16, w, e,
                               lo_w, hi_w, cnt)
            else:
                fx_apply_px(row, pp[s, i0:i1], pval[q0], sr, r16, w, sh_w, mode, lo_w, hi_w,
                             wrap_w, fast, cnt)
        elif q1 > q0:
            ps = pp[pidx[q0], i0:i1]
            xv = np.int64(pval[q0])
            for i in range(w):
                sr[i] = np.int64(ps[i]) * xv
            for q in range(q0 + 1, q1):
                ps = pp[pidx[q], i0:i1]
                xv = np.int64(pval[q])
                for i in range(w):
                    sr[i] += np.int64(ps[i]) * xv
            fx_apply(row, sr, r16, w, sh_w, mode, lo_w, hi_w, wrap_w, fast, cnt)
        if c1 > c0:
            if kflush > 0:  # products and partial sums fit in int32 lanes
                if rows == kflush:
                    for s in range(cnb):
                        ac = acc[s, :w]
                        a3 = acc32[s, :w]
                        for i in range(w):
                            ac[i] += a3[i]
                            a3[i] = 0
                    rows = 0
                rows += 1
                for q in range(c0, c1):
                    a3 = acc32[cidx[q], :w]
                    x32 = np.int32(cval[q])
                    for i in range(w):
                        a3[i] = np.int32(a3[i] + np.int32(np.int32(row[i]) * x32))
            else:
                for q in range(c0, c1):
                    ac = acc[cidx[q], :w]
                    xv = np.int64(cval[q])
                    for i in range(w):
                        ac[i] += np.int64(row[i]) * xv
    sat1 = np.zeros(4, np.int64)
    for s in range(cnb):
        fx_activate_row(acc[s, :w], acc32[s, :w], a_out[s, i0:i1], h_out[s, i0:i1], w, lo, hi,
                        wrap, shift_acc, act, sat1)
    cnt[B_SAT_ACC] += sat1[0]
    cnt[B_SAT_ACT] += sat1[1]


@jit
def fx_block_om(i0, i1, n, m, W, b, key, lay, act, pp, pend, cur, scr, a_out, h_out, cnt):
    """Output-major block of rows [i0, i1) of ``W`` (m, n): pending update, then forward pass
    (the arguments of :func:`fx_block_im`; the inputs are read dense, ``pend.x`` and ``cur.x``).
    ``scr.zrow`` (uint64 scratch of ``n`` or more, read as uint32) holds the SR unit's words of
    the current pair of rows (outputs ``2g, 2g + 1`` share words ``j P + g``); a single
    pending sample rounds in int32 lanes when ``fast32``; dot products sum ``kflush`` products
    in int32 lanes at a time (0: int64 only)."""
    lo, hi, wrap, f_a, shift_acc = lay.lo, lay.hi, lay.wrap, lay.f_a, lay.shift_acc
    sh_w, sh_b, mode, srmask = lay.sh_w, lay.sh_b, lay.mode, lay.srmask
    kflush, fast, fast32 = lay.kflush, lay.fast, lay.fast32
    has_prev, pnb, xp, cnb, xc = pend.nb > 0, pend.nb, pend.x, cur.nb, cur.x
    srow, zbuf, zrow = scr.srow, scr.zbuf, scr.zrow
    lo_w, hi_w, wrap_w = lo[3], hi[3], wrap[3]
    sr = srow[:n]
    r16 = zbuf[:(n + 3) // 4].view(np.uint16)
    z32 = zrow.view(np.uint32)
    k32 = np.uint64(sr_key32(key))
    P = (m + 1) // 2
    if has_prev and mode != STOCHASTIC:
        sr_const_fill(r16, n, mode)
    group = -1
    sb = np.zeros(1, np.int64)
    sat1 = np.zeros(4, np.int64)
    for i in range(i0, i1):
        row = W[i]
        if has_prev:
            sb[0] = 0
            for s in range(pnb):
                sb[0] += pp[s, i]
            first = True
            single = fast32 and pnb == 1
            for s in range(0 if single else pnb):
                p = np.int64(pp[s, i])
                if p == 0:
                    continue
                xs = xp[s]
                if first:
                    for j in range(n):
                        sr[j] = p * np.int64(xs[j])
                    first = False
                else:
                    for j in range(n):
                        sr[j] += p * np.int64(xs[j])
            p0 = np.int64(pp[0, i])
            if not first or (single and p0 != 0):
                if mode == STOCHASTIC:
                    if i // 2 != group:
                        group = i // 2
                        sr_words(z32, n, k32 + np.uint64(group), P, srmask)
                    sr_half_extract(r16, z32, n, i % 2)
                if single:
                    e = sh_w - 16
                    fx_apply_xp32(row, p0 >> e, p0 & ((np.int64(1) << e) - 1), xp[0], r16, n, e,
                                   lo_w, hi_w, cnt)
                else:
                    fx_apply(row, sr, r16, n, sh_w, mode, lo_w, hi_w, wrap_w, fast, cnt)
            fx_bias(b[i:i + 1], sb, i, 1, m, n, key, srmask, sh_b, mode, lo_w, hi_w, wrap_w, cnt)
        for s in range(cnb):
            xs = xc[s]
            v = np.int64(0)
            if kflush > 0:  # int32 partial sums of kflush products cannot overflow
                for j0 in range(0, n, kflush):
                    j1 = min(j0 + kflush, n)
                    rj = row[j0:j1]
                    xj = xs[j0:j1]
                    v32 = np.int32(0)
                    for j in range(j1 - j0):  # from 0: the compiler vectorises
                        v32 = np.int32(v32 + np.int32(np.int32(rj[j]) * np.int32(xj[j])))
                    v += v32
            else:
                for j in range(n):
                    v += np.int64(row[j]) * np.int64(xs[j])
            v += np.int64(b[i]) << np.int64(f_a)
            av, hv = fx_activate(v, lo, hi, wrap, shift_acc, act, sat1)
            a_out[s, i] = av
            h_out[s, i] = hv
    cnt[B_SAT_ACC] += sat1[0]
    cnt[B_SAT_ACT] += sat1[1]
