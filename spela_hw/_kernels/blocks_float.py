"""Float32 block passes, the twins of :mod:`spela_hw._kernels.blocks_fixed`: the forward pass sums
in float32 (input order in wide input-major layers, eight interleaved partial sums in narrow
output-major ones, :func:`dot8x2`) and then adds the bias, as ``x @ W.T + b`` does with its own
order; a batch of one updates ``W += fl32(p_i x_j)``, bit for bit the reference's update.
"""


import numpy as np

from . import jit
from .activation import act_float
from .buffers import B_WRITES
from .sparse import active_rows

@jit
def fl_block_im(i0, i1, n, m, wt, b, act, pp, pend, cur, scr, a_out, h_out, cnt):
    """Float32 twin of :func:`~.blocks_fixed.fx_block_im` (scratch
    :class:`~.records.FloatScratch`): ``wt`` holds the block's own weights, ``(n, i1 - i0)``
    (see :func:`~.buffers.block_view`)."""
    act_code, slope = act.code, act.slope
    has_prev, pnb, pptr, pidx, pval = pend.nb > 0, pend.nb, pend.ptr, pend.idx, pend.val
    cnb, cptr, cidx, cval = cur.nb, cur.ptr, cur.idx, cur.val
    acc, srow = scr.acc, scr.srow
    w = i1 - i0
    bb = b[i0:i1]
    writes = 0
    if has_prev:
        sr = srow[:w]
        for i in range(w):
            sr[i] = 0
        for s in range(pnb):
            ps = pp[s, i0:i1]
            for i in range(w):
                sr[i] += ps[i]
        for i in range(w):
            writes += np.int64(sr[i] != 0)
            bb[i] += sr[i]
    for s in range(cnb):
        ac = acc[s, :w]
        for i in range(w):
            ac[i] = 0
    rowlist = np.empty(n, np.int64)
    nrows = active_rows(n, has_prev, pptr, cptr, rowlist)
    pnz = np.zeros(max(pnb, 1), np.int64)
    pmin = np.zeros(max(pnb, 1), np.float64)
    sr = srow[:w]
    # Per pending sample: non-zero post-synaptic terms of the block and their smallest
    # magnitude. A product of normal floats with |p_i x_j| >= 2**-148 cannot underflow to 0,
    # so a row's count of changed weights is then that number (no compare in the hot loop).
    if has_prev:
        for s in range(pnb):
            ps = pp[s, i0:i1]
            cnt_ = 0
            mn = np.inf
            for i in range(w):
                v = abs(np.float64(ps[i]))
                if v != 0:
                    cnt_ += 1
                    mn = min(mn, v)
            pnz[s] = cnt_
            pmin[s] = mn
    for t in range(nrows):
        j = rowlist[t]
        q0 = pptr[j] if has_prev else 0
        q1 = pptr[j + 1] if has_prev else 0
        c0 = cptr[j]
        c1 = cptr[j + 1]
        row = wt[j]
        if q1 == q0 + 1:
            s = pidx[q0]
            ps = pp[s, i0:i1]
            xv = pval[q0]
            if abs(np.float64(xv)) * pmin[s] >= 2.0**-148:
                writes += pnz[s]
                for i in range(w):
                    row[i] += ps[i] * xv
            else:
                for i in range(w):
                    d = ps[i] * xv
                    writes += np.int64(d != 0)
                    row[i] += d
        elif q1 > q0:
            ps = pp[pidx[q0], i0:i1]
            xv = pval[q0]
            for i in range(w):
                sr[i] = ps[i] * xv
            q = q0 + 1
            while q + 2 <= q1:  # two terms per sweep of sr, added in the same order
                pa = pp[pidx[q], i0:i1]
                xa = pval[q]
                pb = pp[pidx[q + 1], i0:i1]
                xb = pval[q + 1]
                for i in range(w):
                    sr[i] = (sr[i] + pa[i] * xa) + pb[i] * xb
                q += 2
            if q < q1:
                ps = pp[pidx[q], i0:i1]
                xv = pval[q]
                for i in range(w):
                    sr[i] += ps[i] * xv
            for i in range(w):
                d = sr[i]
                writes += np.int64(d != 0)
                row[i] += d
        q = c0
        while q + 2 <= c1:  # two samples per sweep of the row
            aa = acc[cidx[q], :w]
            xa = cval[q]
            ab = acc[cidx[q + 1], :w]
            xb = cval[q + 1]
            for i in range(w):
                r = row[i]
                aa[i] += r * xa
                ab[i] += r * xb
            q += 2
        if q < c1:
            ac = acc[cidx[q], :w]
            xv = cval[q]
            for i in range(w):
                ac[i] += row[i] * xv
    cnt[B_WRITES] += writes
    for s in range(cnb):
        ac = acc[s, :w]
        ao = a_out[s, i0:i1]
        ho = h_out[s, i0:i1]
        for i in range(w):
            av = ac[i] + bb[i]
            ao[i] = av
            ho[i] = act_float(av, act_code, slope)


@jit
def dot8x2(a, x, y, n):
    """Float32 dot products ``a . x`` and ``a . y``, each with eight interleaved partial sums (a
    fixed, documented order), held in scalars so that they stay in vector registers; the two
    chains of additions overlap. (For one product pass ``y = x``: the compiler drops the other.)"""
    p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = np.float32(0)
    q0 = q1 = q2 = q3 = q4 = q5 = q6 = q7 = np.float32(0)
    n8 = n - n % 8
    for j in range(0, n8, 8):
        p0 += a[j] * x[j]
        p1 += a[j + 1] * x[j + 1]
        p2 += a[j + 2] * x[j + 2]
        p3 += a[j + 3] * x[j + 3]
        p4 += a[j + 4] * x[j + 4]
        p5 += a[j + 5] * x[j + 5]
        p6 += a[j + 6] * x[j + 6]
        p7 += a[j + 7] * x[j + 7]
        q0 += a[j] * y[j]
        q1 += a[j + 1] * y[j + 1]
        q2 += a[j + 2] * y[j + 2]
        q3 += a[j + 3] * y[j + 3]
        q4 += a[j + 4] * y[j + 4]
        q5 += a[j + 5] * y[j + 5]
        q6 += a[j + 6] * y[j + 6]
        q7 += a[j + 7] * y[j + 7]
    for j in range(n8, n):
        p0 += a[j] * x[j]
        q0 += a[j] * y[j]
    return (((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)),
            ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7)))


@jit
def fl_block_om(i0, i1, n, m, W, b, act, pp, pend, cur, scr, a_out, h_out, cnt):
    """Float32 twin of :func:`~.blocks_fixed.fx_block_om`."""
    act_code, slope = act.code, act.slope
    has_prev, pnb, xp, cnb, xc = pend.nb > 0, pend.nb, pend.x, cur.nb, cur.x
    srow = scr.srow
    sr = srow[:n]
    writes = 0
    for i in range(i0, i1):
        row = W[i]
        if has_prev:
            sb = np.float32(0)
            for s in range(pnb):
                sb += pp[s, i]
            if pnb == 1:
                p = pp[0, i]
                if p != 0:
                    xs = xp[0]
                    for j in range(n):
                        d = p * xs[j]
                        writes += np.int64(d != 0)
                        row[j] += d
            else:
                for j in range(n):
                    sr[j] = 0
                for s in range(pnb):
                    p = pp[s, i]
                    xs = xp[s]
                    for j in range(n):
                        sr[j] += p * xs[j]
                for j in range(n):
                    d = sr[j]
                    writes += np.int64(d != 0)
                    row[j] += d
            writes += np.int64(sb != 0)
            b[i] += sb
        for s in range(0, cnb - 1, 2):
            va, vb = dot8x2(row, xc[s], xc[s + 1], n)
            a_out[s, i] = va + b[i]
            a_out[s + 1, i] = vb + b[i]
        if cnb % 2 == 1:
            a_out[cnb - 1, i] = dot8x2(row, xc[cnb - 1], xc[cnb - 1], n)[0] + b[i]
        for s in range(cnb):
            h_out[s, i] = act_float(a_out[s, i], act_code, slope)
    cnt[B_WRITES] += writes
