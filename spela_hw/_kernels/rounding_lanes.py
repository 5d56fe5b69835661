"""Weights plus rounded update sums, ``row[i] = sat(row[i] + round(S_i >> sh))``: the general loop
(:func:`fx_apply`, the reference's formulas) and the lane-width variants the speed needs (the
table in :mod:`spela_hw._kernels` says which case each serves), plus the bias updates.
"""


import numpy as np
from numba import types
from numba.extending import intrinsic

from ..codes import STOCHASTIC
from . import jit
from .buffers import B_SAT_W, B_WRITES
from .fixed import saturate, shift_round, sr_key32, sr_offset
from .sr_unit import sr_words

# (S + r) >> sh for |S + r| < 2**62 as a logical shift of S + r + 2**62 (AVX2 has no 64-bit
# arithmetic shift, so the compiler would not vectorise ``>>`` on signed lanes).
BIAS = np.uint64(1 << 62)


@intrinsic
def ashr32(typingctx, a, s):
    """Arithmetic right shift of int32 by int32 in 32 bits (numba widens ``>>`` to int64, which
    AVX2 cannot shift arithmetically: the loop would not vectorise)."""
    if a != types.int32 or s != types.int32:
        return None

    def codegen(context, builder, sig, args):
        return builder.ashr(args[0], args[1])

    return types.int32(types.int32, types.int32), codegen


@jit
def fx_apply(row, sr, r16, w, sh, mode, lo, hi, wrap, fast, cnt):
    """row[i] = sat(row[i] + round(sr[i] >> sh)), i < w, with the 16-bit rounding offsets ``r16``
    (the SR unit's lanes, or the constant of a deterministic mode): ``r = r16 << (sh - 16)``,
    or ``r16 >> (16 - sh)`` when ``sh < 16``.

    ``row``, ``sr`` (the exact sums) and ``r16`` are slices starting at the block (loops start at
    0 so that the compiler knows indices are non-negative and vectorises). ``fast``: the caller
    guarantees ``|sr + r| < 2**62`` (no int64 wrap-around), which the vector loop needs.
    """
    writes = 0
    nsat = 0
    lsh = np.int64(max(sh - 16, 0))
    rsh = np.int64(max(16 - sh, 0))
    if fast and not wrap and sh > 0:
        ush = np.uint64(sh)
        off = np.int64(BIAS >> ush)
        for i in range(w):
            r = (np.int64(r16[i]) << lsh) >> rsh
            d = np.int64((np.uint64(sr[i] + r) + BIAS) >> ush) - off
            v = np.int64(row[i]) + d
            nsat += np.int64(v < lo) + np.int64(v > hi)
            v = lo if v < lo else v
            v = hi if v > hi else v
            writes += np.int64(d != 0)
            row[i] = v
    else:  # wrap-around overflow, or a left shift: the reference's scalar formulas
        sat1 = np.zeros(4, np.int64)
        for i in range(w):
            sv = sr[i]
            if sv == 0:
                continue
            d = shift_round(sv, sh, mode, (np.int64(r16[i]) << lsh) >> rsh)
            if d != 0:
                writes += 1
                row[i] = saturate(np.int64(row[i]) + d, lo, hi, wrap, sat1, 3)
        nsat += sat1[3]
    cnt[B_WRITES] += writes
    cnt[B_SAT_W] += nsat


@jit
def fx_apply_px(row, ps, xv, sr, r16, w, sh, mode, lo, hi, wrap, fast, cnt):
    """:func:`fx_apply` for a single contribution ``sr[i] = ps[i] * xv`` (a batch of one), with
    the product formed inside the loop instead of through memory."""
    if wrap or sh <= 0 or not fast:
        for i in range(w):
            sr[i] = np.int64(ps[i]) * np.int64(xv)
        fx_apply(row, sr, r16, w, sh, mode, lo, hi, wrap, fast, cnt)
        return
    writes = 0
    nsat = 0
    ush = np.uint64(sh)
    off = np.int64(BIAS >> ush)
    lsh = np.int64(max(sh - 16, 0))
    rsh = np.int64(max(16 - sh, 0))
    for i in range(w):
        r = (np.int64(r16[i]) << lsh) >> rsh
        d = np.int64((np.uint64(np.int64(ps[i]) * np.int64(xv) + r) + BIAS) >> ush) - off
        v = np.int64(row[i]) + d
        nsat += np.int64(v < lo) + np.int64(v > hi)
        v = lo if v < lo else v
        v = hi if v > hi else v
        writes += np.int64(d != 0)
        row[i] = v
    cnt[B_WRITES] += writes
    cnt[B_SAT_W] += nsat


@jit
def fx_apply_px32(row, ph, pl, xv, r16, w, e, lo, hi, cnt):
    """:func:`fx_apply_px` in 32-bit lanes, for ``sh = e + 16 >= 16`` and saturating weights.

    With ``p = ph 2**e + pl`` (``0 <= pl < 2**e``, split once per step), ``floor(p x / 2**e) =
    ph x + floor(pl x / 2**e)`` exactly, so the SR unit's ``((S >> e) + r16) >> 16`` needs no
    64-bit product; the caller checks that every term fits int32 (``fast32``).
    """
    x32 = np.int32(xv)
    e32 = np.int32(e)
    s16 = np.int32(16)
    lo32 = np.int32(lo)
    hi32 = np.int32(hi)
    same = np.int32(0)  # increments that are 0
    keep = np.int32(0)  # results inside [lo, hi]
    for i in range(w):
        t = np.int32(np.int32(ph[i] * x32) + ashr32(np.int32(pl[i] * x32), e32))
        d = ashr32(np.int32(t + np.int32(r16[i])), s16)
        v = np.int32(np.int32(row[i]) + d)
        c = lo32 if v < lo32 else v
        c = hi32 if c > hi32 else c
        keep = np.int32(keep + np.int32(c == v))  # == counts in 2 vector ops, != in 3
        same = np.int32(same + np.int32(d == 0))
        row[i] = c
    cnt[B_WRITES] += w - same
    cnt[B_SAT_W] += w - keep


@jit
def fx_apply_p32(row, ps, xv, r16, w, e, lo, hi, cnt):
    """:func:`fx_apply_px32` when the whole product fits int32 (``|p x| < 2**30`` for every
    ``p`` of the row, which the caller checks from the step's largest ``|p|``; adding ``r16``
    cannot overflow either): one multiply, ``floor(p x / 2**e)`` an arithmetic shift of the
    exact product."""
    x32 = np.int32(xv)
    e32 = np.int32(e)
    s16 = np.int32(16)
    lo32 = np.int32(lo)
    hi32 = np.int32(hi)
    same = np.int32(0)  # increments that are 0
    keep = np.int32(0)  # results inside [lo, hi]
    for i in range(w):
        t = ashr32(np.int32(np.int32(ps[i]) * x32), e32)
        d = ashr32(np.int32(t + np.int32(r16[i])), s16)
        v = np.int32(np.int32(row[i]) + d)
        c = lo32 if v < lo32 else v
        c = hi32 if c > hi32 else c
        keep = np.int32(keep + np.int32(c == v))
        same = np.int32(same + np.int32(d == 0))
        row[i] = c
    cnt[B_WRITES] += w - same
    cnt[B_SAT_W] += w - keep


@jit
def fx_apply_p16(row, ps, xv, r16, w, e, lo, hi, cnt, d16):
    """:func:`fx_apply_p32` with the increments narrowed to int16 (``d16``, scratch of ``w``)
    and the weights updated in int16 lanes (twice as many per vector). The caller checks that
    ``lo``, ``hi``, every ``row + d`` (``|d| <= 2**(14 - e) + 1``) and the counts (``w``) fit
    int16."""
    x32 = np.int32(xv)
    e32 = np.int32(e)
    s16 = np.int32(16)
    for i in range(w):
        t = ashr32(np.int32(np.int32(ps[i]) * x32), e32)
        d16[i] = np.int16(ashr32(np.int32(t + np.int32(r16[i])), s16))
    lo16 = np.int16(lo)
    hi16 = np.int16(hi)
    same = np.int16(0)  # increments that are 0
    keep = np.int16(0)  # results inside [lo, hi]
    for i in range(w):
        d = d16[i]
        v = np.int16(np.int16(row[i]) + d)
        c = lo16 if v < lo16 else v
        c = hi16 if c > hi16 else c
        keep = np.int16(keep + np.int16(c == v))
        same = np.int16(same + np.int16(d == 0))
        row[i] = c
    cnt[B_WRITES] += w - np.int64(same)
    cnt[B_SAT_W] += w - np.int64(keep)


@jit
def fx_apply_xp32(row, ph, pl, xs, r16, w, e, lo, hi, cnt):
    """:func:`fx_apply_px32` along an output-major row: one pending term ``p = ph 2**e + pl``
    (scalars), the inputs ``xs`` vary along the row."""
    e32 = np.int32(e)
    s16 = np.int32(16)
    ph32 = np.int32(ph)
    pl32 = np.int32(pl)
    lo32 = np.int32(lo)
    hi32 = np.int32(hi)
    same = np.int32(0)  # increments that are 0
    keep = np.int32(0)  # results inside [lo, hi]
    for j in range(w):
        x32 = np.int32(xs[j])
        t = np.int32(np.int32(ph32 * x32) + ashr32(np.int32(pl32 * x32), e32))
        d = ashr32(np.int32(t + np.int32(r16[j])), s16)
        v = np.int32(np.int32(row[j]) + d)
        c = lo32 if v < lo32 else v
        c = hi32 if c > hi32 else c
        keep = np.int32(keep + np.int32(c == v))
        same = np.int32(same + np.int32(d == 0))
        row[j] = c
    cnt[B_WRITES] += w - same
    cnt[B_SAT_W] += w - keep


@jit
def fx_bias(bb, sb, i0, w, m, n, key, srmask, sh_b, mode, lo, hi, wrap, cnt):
    """Bias update of outputs i0..i0+w from the exact sums ``sb`` (the SR unit's words of a
    constant input ``n``: ``n ceil(m / 2) + i // 2``, half ``i % 2``)."""
    sat1 = np.zeros(4, np.int64)
    base = (m + 1) // 2 * n
    for i in range(w):
        s = sb[i]
        if s == 0:
            continue
        r = np.int64(0)
        if mode == STOCHASTIC:
            r = sr_offset(key, np.uint64(base + (i0 + i) // 2), (i0 + i) % 2, sh_b, srmask)
        d = shift_round(s, sh_b, mode, r)
        if d != 0:
            cnt[B_WRITES] += 1
            bb[i] = saturate(np.int64(bb[i]) + d, lo, hi, wrap, sat1, 3)
    cnt[B_SAT_W] += sat1[3]


@jit
def fx_bias_block(bb, sb, i0, w, m, n, key, srmask, sh_b, mode, lo, hi, wrap, zb, cnt):
    """:func:`fx_bias` for a block of ``w`` outputs starting at an even output: the SR unit's
    words of the block drawn in one vector loop into ``zb`` (uint32 scratch of ``ceil(w / 2)``
    words)."""
    if mode != STOCHASTIC:
        fx_bias(bb, sb, i0, w, m, n, key, srmask, sh_b, mode, lo, hi, wrap, cnt)
        return
    nw = (w + 1) // 2
    sr_words(zb, nw, np.uint64(sr_key32(key)) + np.uint64((m + 1) // 2 * n + i0 // 2), 1, srmask)
    r16 = zb[:nw].view(np.uint16)
    # the weights' rounding loop (a zero sum gives a zero increment there too); vectorised when
    # no sum can reach 2**61 (then |S + r| < 2**62)
    smax = np.int64(0)
    for i in range(w):
        smax = max(smax, abs(sb[i]))
    fast = smax < (np.int64(1) << np.int64(61)) and sh_b <= 61
    fx_apply(bb, sb, r16, w, sh_b, STOCHASTIC, lo, hi, wrap, fast, cnt)
