"""Update of row-major weights (``ops.update``: the per-step path of every rule), streamed over the
span of non-zero inputs with the vectorised rounding of :mod:`spela_hw._kernels.rounding_lanes`.
"""


import numpy as np

from ..codes import STOCHASTIC
from . import jit
from .buffers import B_SAT_W, B_WRITES
from .fixed import sr_key32
from .rounding_lanes import fx_apply, fx_bias
from .sparse import column_span, csc_span
from .sr_unit import sr_const_fill, sr_half_extract, sr_words

# Rows of outputs per block of the mini-batch update: the block's sums S^T (span x 64) stay in L2.
UPDATE_BLOCK = 64


@jit
def block_sums(st, p, ptr, idx, val, span, i0, i1):
    """``st[j, l] = sum_s x_sj p_s(i0 + l)`` for outputs ``[i0, i1)``: the mini-batch update sums
    of a block of outputs, transposed (contiguous in ``l``), from the non-zero inputs by column
    (``ptr``, ``idx``, ``val``), in sample order. ``p`` and ``val`` hold the sums' type (int64:
    exact; float32: summed in float32)."""
    wb = i1 - i0
    for jj in range(span):
        strow = st[jj]
        q0 = ptr[jj]
        q1 = ptr[jj + 1]
        if q0 == q1:
            for l in range(wb):
                strow[l] = 0
            continue
        ps = p[idx[q0], i0:i1]
        xv = val[q0]
        for l in range(wb):
            strow[l] = ps[l] * xv
        for q in range(q0 + 1, q1):
            ps = p[idx[q], i0:i1]
            xv = val[q]
            for l in range(wb):
                strow[l] += ps[l] * xv


@jit
def update_rows_fixed(w, b, p, x, key, srmask, sh_w, sh_b, mode, lo, hi, wrap, fast, sat):
    """``W += round(p^T x)``, ``b += round(sum p)`` on row-major ``W`` (m, n); returns writes.

    Rows are streamed over the span of non-zero inputs with the vectorised rounding of
    :func:`fx_apply` (the SR unit's words ``j ceil(m / 2) + i // 2``, ``ceil(m / 2)`` apart
    along a row, half ``i % 2``: rows ``2g`` and ``2g + 1`` share them); bit-exact with the
    reference (a zero input or a zero post-synaptic term gives a zero increment). A mini-batch
    first forms the exact sums ``S^T[j, i] = sum_s x_sj p_si`` for a block of 64 outputs from
    the sparse columns of ``x`` (contiguous in ``i``), then applies them row by row.
    """
    m, n = w.shape
    nb = p.shape[0]
    c0, c1 = column_span(x, nb, n)
    span = c1 - c0
    sr = np.zeros(max(span, 1), np.int64)
    r16 = np.zeros(max(span, 1), np.uint16)
    zrow = np.zeros(max(span, 1), np.uint32)
    k32 = np.uint64(sr_key32(key)) + np.uint64(c0) * np.uint64((m + 1) // 2)
    P = (m + 1) // 2
    group = -1
    if mode != STOCHASTIC:
        sr_const_fill(r16, span, mode)
    sb = np.zeros(1, np.int64)
    cnt = np.zeros(4, np.int64)
    if nb > 1 and span > 0:
        ptr, idx, val = csc_span(x, nb, c0, c1)
        BLK = UPDATE_BLOCK
        st = np.zeros((span, BLK), np.int64)
        for i0 in range(0, m, BLK):
            i1 = min(i0 + BLK, m)
            wb = i1 - i0
            block_sums(st, p, ptr, idx, val, span, i0, i1)
            for l in range(wb):
                i = i0 + l
                sb[0] = 0
                nz = False
                for s in range(nb):
                    pv = np.int64(p[s, i])
                    sb[0] += pv
                    nz = nz or pv != 0
                if nz:
                    for jj in range(span):
                        sr[jj] = st[jj, l]
                    if mode == STOCHASTIC:
                        if i // 2 != group:
                            group = i // 2
                            sr_words(zrow, span, k32 + np.uint64(group), P, srmask)
                        sr_half_extract(r16, zrow, span, i % 2)
                    fx_apply(w[i, c0:c1], sr, r16, span, sh_w, mode, lo, hi, wrap, fast, cnt)
                fx_bias(b[i:i + 1], sb, i, 1, m, n, key, srmask, sh_b, mode, lo, hi, wrap, cnt)
        sat[3] += cnt[B_SAT_W]
        return cnt[B_WRITES]
    for i in range(m):
        sb[0] = 0
        first = True
        for s in range(nb):
            pv = np.int64(p[s, i])
            sb[0] += pv
            if pv == 0 or span == 0:
                continue
            xs = x[s, c0:c1]
            if first:
                for j in range(span):
                    sr[j] = pv * np.int64(xs[j])
                first = False
            else:
                for j in range(span):
                    sr[j] += pv * np.int64(xs[j])
        if not first:
            if mode == STOCHASTIC:
                if i // 2 != group:
                    group = i // 2
                    sr_words(zrow, span, k32 + np.uint64(group), P, srmask)
                sr_half_extract(r16, zrow, span, i % 2)
            fx_apply(w[i, c0:c1], sr, r16, span, sh_w, mode, lo, hi, wrap, fast, cnt)
        fx_bias(b[i:i + 1], sb, i, 1, m, n, key, srmask, sh_b, mode, lo, hi, wrap, cnt)
    sat[3] += cnt[B_SAT_W]
    return cnt[B_WRITES]


@jit
def update_rows_float(w, b, p, x):
    """Float32 twin of :func:`update_rows_fixed`: sums over the batch in float32 in sample order
    (a batch of one adds ``fl32(p_i x_j)``, the reference's increment bit for bit)."""
    m, n = w.shape
    nb = p.shape[0]
    c0, c1 = column_span(x, nb, n)
    span = c1 - c0
    sr = np.zeros(max(span, 1), np.float32)
    # smallest non-zero input magnitude of a single sample (see fl_block_im on underflow)
    xmin = np.inf
    nnz = 0
    if nb == 1:
        for j in range(c0, c1):
            v = abs(np.float64(x[0, j]))
            if v != 0:
                nnz += 1
                xmin = min(xmin, v)
    writes = 0
    if nb > 1 and span > 0:  # block-transposed sums, as update_rows_fixed
        ptr, idx, val = csc_span(x, nb, c0, c1)
        BLK = UPDATE_BLOCK
        st = np.zeros((span, BLK), np.float32)
        for i0 in range(0, m, BLK):
            i1 = min(i0 + BLK, m)
            wb = i1 - i0
            block_sums(st, p, ptr, idx, val, span, i0, i1)
            for l in range(wb):
                i = i0 + l
                sb = np.float32(0)
                for s in range(nb):
                    sb += p[s, i]
                if sb != 0:
                    writes += 1
                b[i] += sb
                row = w[i, c0:c1]
                for jj in range(span):
                    d = st[jj, l]
                    writes += np.int64(d != 0)
                    row[jj] += d
        return writes
    for i in range(m):
        sb = np.float32(0)
        for s in range(nb):
            sb += p[s, i]
        if sb != 0:
            writes += 1
        b[i] += sb
        if span == 0:
            continue
        row = w[i, c0:c1]
        if nb == 1:
            pv = p[0, i]
            if pv == 0:
                continue
            xs = x[0, c0:c1]
            if abs(np.float64(pv)) * xmin >= 2.0**-148:
                writes += nnz
                for j in range(span):
                    row[j] += pv * xs[j]
            else:
                for j in range(span):
                    d = pv * xs[j]
                    writes += np.int64(d != 0)
                    row[j] += d
            continue
        first = True
        for s in range(nb):
            pv = p[s, i]
            if pv == 0:
                continue
            xs = x[s, c0:c1]
            if first:
                for j in range(span):
                    sr[j] = pv * xs[j]
                first = False
            else:
                for j in range(span):
                    sr[j] += pv * xs[j]
        if first:
            continue
        for j in range(span):
            d = sr[j]
            writes += np.int64(d != 0)
            row[j] += d
    return writes
