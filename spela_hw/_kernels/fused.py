"""Fused SPELA training over a chunk of samples: one compiled call runs many update steps.

This module holds the per-block passes, loss units and helpers of both number types; the chunk
trainers that run them over many steps, on one core or two, are
:mod:`spela_hw._kernels.fixed_chunk` and :mod:`spela_hw._kernels.float_chunk`.

Why it is fast
--------------
* **One pass over the weights per step.** The update of step ``t`` is kept *pending* and applied
  row by row during the forward pass of step ``t + 1`` (a row is updated, then immediately read
  for the new dot products while it sits in L1). Every weight is streamed once per step instead
  of read twice and written once. Each weight still receives exactly the same operations in the
  same order as in the per-step path, so results are unchanged.
* **Layout for the access pattern.** Wide layers are held *input-major*, ``wt[j, i] = W[i, j]``:
  row ``j`` holds all fan-out weights of input ``j``, so the update ``wt[j, :] += p * x_j`` and
  the forward ``acc[:] += wt[j, :] * x_j`` are contiguous SIMD loops over output neurons (no float
  reduction whose order the compiler would have to keep). Narrow layers (few outputs, e.g. the
  10-unit output layer) stay *output-major* ``W[i, :]``: their loops run over the long input
  dimension instead of a handful of outputs.
* **Zero skipping.** In input-major layers, rows whose pending and new inputs are all zero are not
  touched at all (about 80 % of MNIST pixels are zero). A zero input never changes a weight, not
  even stochastically, so nothing is lost.
* **Narrow integers.** Fixed-point weights stay in their storage type (``int8`` for 8-bit);
  products that fit 32 bits are formed and summed in 32-bit lanes (flushed to 64 bits before they
  could overflow), post-synaptic terms and inputs are held in ``int32`` when their formats allow.
* **Blocks of output neurons** are independent in the fused pass: two threads each own a block
  of every layer (its weights stored contiguously, :func:`block_view`, and scratch of its own),
  see :mod:`spela_hw._kernels.float_chunk` and :mod:`~spela_hw._kernels.fixed_chunk`. Every
  reduction over output neurons (``|h|^2``, ``h . v``) covers all outputs in a fixed order and
  each output sums its inputs in the same order whatever the blocks, so results do not depend
  on the number of threads.

Arithmetic
----------
Fixed point: exactly the pipeline documented in :mod:`spela_hw.backends.reference` (same integer
formulas, same float64 loss-unit expressions, the same stochastic-rounding unit of
:mod:`spela_hw.rng`: one 32-bit ``lowbias32(k32 + j ceil(m / 2) + i // 2)`` per two neighbouring
outputs, 16-bit half ``i % 2`` each, which an input-major row draws as half as many contiguous
words and reads as ``uint16`` in output order; ``PrecisionSpec.sr_bits`` is applied to each word
as it is hashed, :func:`_sr_words`, so the rounding loops are the same for every width):
bit-exact. A batch of one rounds in 32-bit lanes
when the formats allow (:func:`_fx_apply_p32` when ``|p x| < 2**30``, else
:func:`_fx_apply_px32`, where the product is split so that no 64-bit multiply or shift is
needed) and adds the increments to narrow weights in 16-bit lanes (:func:`_fx_apply_p16`).
Float32: the forward pass sums in float32 (input order in wide layers, eight interleaved partial
sums in narrow layers) and then adds the bias, as ``x @ W.T + b`` does with its own order; a
batch of one updates ``W += fl32(p_i x_j)``, bit for bit the reference's update; mini-batch
sums ``sum_n p_ni x_nj`` are accumulated in float32 in sample order (BLAS may order them
differently: within tolerance). The loss unit sums ``|h|^2`` and ``h . v`` in float64 in four
interleaved partial sums (the reference sums in order: within tolerance).

Buffers are flat arrays with per-layer offsets so that one compiled function serves any depth.
"""

import math

import numpy as np
from numba import prange, types
from numba.extending import intrinsic

from ..codes import (INPUT_MAJOR, LEAKY_RELU, NEAREST, NEG_COS, OUTPUT_MAJOR,  # noqa: F401
                     STOCHASTIC, TANH)
from . import jit
from .activation import act_fixed, act_float, gate_float
from .fixed import lowbias32, saturate, shift_round, sr_key32, sr_offset

# (S + r) >> sh for |S + r| < 2**62 as a logical shift of S + r + 2**62 (AVX2 has no 64-bit
# arithmetic shift, so the compiler would not vectorise ``>>`` on signed lanes).
_BIAS = np.uint64(1 << 62)

# Counter columns returned per layer (the wrapper adds the counters that depend on shapes only).
C_FWD_NNZ, C_UPD_NNZ, C_WRITES, C_SAT, C_ZERO = range(5)
N_COUNTERS = 5

# Per-block counters of one pass.
_B_WRITES, _B_SAT_ACC, _B_SAT_ACT, _B_SAT_W = range(4)



# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
@jit
def _aligned2(rows, cols, dtype_like):
    """Zeroed (rows, cols') scratch whose rows start on 64-byte boundaries (cols' >= cols, a
    multiple of 64 bytes): threads writing neighbouring blocks of a row never share a cache line."""
    itemsize = dtype_like.itemsize
    per = 64 // itemsize
    cp = (cols + per - 1) // per * per
    buf = np.zeros(rows * cp + per, dtype_like.dtype)
    off = ((64 - buf.ctypes.data % 64) % 64) // itemsize
    return buf[off:off + rows * cp].reshape(rows, cp)


@jit
def csc_of(x, nb, n, ptr, idx, val):
    """Non-zero entries of ``x[:nb, :n]`` by column: ``ptr`` (n+1), ``idx`` (sample), ``val``.

    Returns the number of non-zero entries (what a zero-skipping engine multiplies).
    """
    for j in range(n + 1):
        ptr[j] = 0
    for s in range(nb):
        xs = x[s]
        for j in range(n):
            if xs[j] != 0:
                ptr[j + 1] += 1
    for j in range(n):
        ptr[j + 1] += ptr[j]
    for s in range(nb):
        xs = x[s]
        for j in range(n):
            v = xs[j]
            if v != 0:
                q = ptr[j]
                idx[q] = s
                val[q] = v
                ptr[j] = q + 1
    for j in range(n, 0, -1):
        ptr[j] = ptr[j - 1]
    ptr[0] = 0
    return ptr[n]


@jit
def nnz_of(x, nb, n):
    """Non-zero entries of ``x[:nb, :n]`` (counted in a local: a sum into an array element
    would be stored and reloaded at every entry)."""
    c = 0
    for s in range(nb):
        xs = x[s]
        for j in range(n):
            c += xs[j] != 0
    return c


@jit
def update_nnz(ps, i0, i1, xs, n):
    """Weights one sample's update can change among outputs ``[i0, i1)``:
    ``nnz(p[i0:i1]) * nnz(x)``."""
    npz = 0
    for i in range(i0, i1):
        npz += ps[i] != 0
    nx = 0
    for j in range(n):
        nx += xs[j] != 0
    return npz * nx


@jit
def _sr_words(z32, nw, base, stride, srmask):
    """z32[g] = lowbias32(base + g * stride) (mod 2**32), g < nw, as the SR unit rounds with it:
    the random bits it keeps (``srmask``, :func:`spela_hw.rng.sr_mask32`: the top ``sr_bits`` of
    each half) and the bit below them set (:func:`spela_hw._kernels.fixed.sr_word`); an AND and
    an OR here, so that the rounding loops are the same for every ``sr_bits``.
    An input's words are contiguous (``stride`` 1), one output's words along its inputs are
    ``P`` apart. ``z32.view(np.uint16)[i]`` is then half ``i % 2`` of word ``i // 2``: the offset
    of output ``i`` of an input-major row. A separate loop: the compiler vectorises it alone (8
    lanes)."""
    c = np.uint32(base)
    st = np.uint32(stride)
    mk = np.uint32(srmask)
    inv = np.uint32(~mk)
    hb = np.uint32(inv & np.uint32(~np.uint32(inv >> np.uint32(1))))
    for g in range(nw):  # a 32-bit counter: ``base + g * stride`` would be formed in 64 bits
        z32[g] = np.uint32((lowbias32(c) & mk) | hb)
        c = np.uint32(c + st)


@jit
def _sr_half_extract(r16, z32, w, half):
    """r16[j] = half ``half`` of the word z32[j], j < w (the two outputs of a word share it:
    hashed once, read twice)."""
    sl = np.uint32(16 * half)
    for j in range(w):
        r16[j] = np.uint16((z32[j] >> sl) & np.uint32(0xFFFF))


@jit
def _sr_const_fill(r16, w, mode):
    """The 16-bit rounding offsets of the deterministic modes: half (nearest) or 0 (truncate)."""
    c = np.uint16(0x8000) if mode == NEAREST else np.uint16(0)
    for i in range(w):
        r16[i] = c


@intrinsic
def _ashr32(typingctx, a, s):
    """Arithmetic right shift of int32 by int32 in 32 bits (numba widens ``>>`` to int64, which
    AVX2 cannot shift arithmetically: the loop would not vectorise)."""
    if a != types.int32 or s != types.int32:
        return None

    def codegen(context, builder, sig, args):
        return builder.ashr(args[0], args[1])

    return types.int32(types.int32, types.int32), codegen


@jit
def _fx_apply(row, sr, r16, w, sh, mode, lo, hi, wrap, fast, cnt):
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
        off = np.int64(_BIAS >> ush)
        for i in range(w):
            r = (np.int64(r16[i]) << lsh) >> rsh
            d = np.int64((np.uint64(sr[i] + r) + _BIAS) >> ush) - off
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
    cnt[_B_WRITES] += writes
    cnt[_B_SAT_W] += nsat


@jit
def _fx_apply_px(row, ps, xv, sr, r16, w, sh, mode, lo, hi, wrap, fast, cnt):
    """:func:`_fx_apply` for a single contribution ``sr[i] = ps[i] * xv`` (a batch of one), with
    the product formed inside the loop instead of through memory."""
    if wrap or sh <= 0 or not fast:
        for i in range(w):
            sr[i] = np.int64(ps[i]) * np.int64(xv)
        _fx_apply(row, sr, r16, w, sh, mode, lo, hi, wrap, fast, cnt)
        return
    writes = 0
    nsat = 0
    ush = np.uint64(sh)
    off = np.int64(_BIAS >> ush)
    lsh = np.int64(max(sh - 16, 0))
    rsh = np.int64(max(16 - sh, 0))
    for i in range(w):
        r = (np.int64(r16[i]) << lsh) >> rsh
        d = np.int64((np.uint64(np.int64(ps[i]) * np.int64(xv) + r) + _BIAS) >> ush) - off
        v = np.int64(row[i]) + d
        nsat += np.int64(v < lo) + np.int64(v > hi)
        v = lo if v < lo else v
        v = hi if v > hi else v
        writes += np.int64(d != 0)
        row[i] = v
    cnt[_B_WRITES] += writes
    cnt[_B_SAT_W] += nsat


@jit
def _fx_apply_px32(row, ph, pl, xv, r16, w, e, lo, hi, cnt):
    """:func:`_fx_apply_px` in 32-bit lanes, for ``sh = e + 16 >= 16`` and saturating weights.

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
        t = np.int32(np.int32(ph[i] * x32) + _ashr32(np.int32(pl[i] * x32), e32))
        d = _ashr32(np.int32(t + np.int32(r16[i])), s16)
        v = np.int32(np.int32(row[i]) + d)
        c = lo32 if v < lo32 else v
        c = hi32 if c > hi32 else c
        keep = np.int32(keep + np.int32(c == v))  # == counts in 2 vector ops, != in 3
        same = np.int32(same + np.int32(d == 0))
        row[i] = c
    cnt[_B_WRITES] += w - same
    cnt[_B_SAT_W] += w - keep


@jit
def _fx_apply_p32(row, ps, xv, r16, w, e, lo, hi, cnt):
    """:func:`_fx_apply_px32` when the whole product fits int32 (``|p x| < 2**30`` for every
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
        t = _ashr32(np.int32(np.int32(ps[i]) * x32), e32)
        d = _ashr32(np.int32(t + np.int32(r16[i])), s16)
        v = np.int32(np.int32(row[i]) + d)
        c = lo32 if v < lo32 else v
        c = hi32 if c > hi32 else c
        keep = np.int32(keep + np.int32(c == v))
        same = np.int32(same + np.int32(d == 0))
        row[i] = c
    cnt[_B_WRITES] += w - same
    cnt[_B_SAT_W] += w - keep


@jit
def _fx_apply_p16(row, ps, xv, r16, w, e, lo, hi, cnt, d16):
    """:func:`_fx_apply_p32` with the increments narrowed to int16 (``d16``, scratch of ``w``)
    and the weights updated in int16 lanes (twice as many per vector). The caller checks that
    ``lo``, ``hi``, every ``row + d`` (``|d| <= 2**(14 - e) + 1``) and the counts (``w``) fit
    int16."""
    x32 = np.int32(xv)
    e32 = np.int32(e)
    s16 = np.int32(16)
    for i in range(w):
        t = _ashr32(np.int32(np.int32(ps[i]) * x32), e32)
        d16[i] = np.int16(_ashr32(np.int32(t + np.int32(r16[i])), s16))
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
    cnt[_B_WRITES] += w - np.int64(same)
    cnt[_B_SAT_W] += w - np.int64(keep)


@jit
def _fx_apply_xp32(row, ph, pl, xs, r16, w, e, lo, hi, cnt):
    """:func:`_fx_apply_px32` along an output-major row: one pending term ``p = ph 2**e + pl``
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
        t = np.int32(np.int32(ph32 * x32) + _ashr32(np.int32(pl32 * x32), e32))
        d = _ashr32(np.int32(t + np.int32(r16[j])), s16)
        v = np.int32(np.int32(row[j]) + d)
        c = lo32 if v < lo32 else v
        c = hi32 if c > hi32 else c
        keep = np.int32(keep + np.int32(c == v))
        same = np.int32(same + np.int32(d == 0))
        row[j] = c
    cnt[_B_WRITES] += w - same
    cnt[_B_SAT_W] += w - keep


@jit
def _fx_bias(bb, sb, i0, w, m, n, key, srmask, sh_b, mode, lo, hi, wrap, cnt):
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
            cnt[_B_WRITES] += 1
            bb[i] = saturate(np.int64(bb[i]) + d, lo, hi, wrap, sat1, 3)
    cnt[_B_SAT_W] += sat1[3]


@jit
def _fx_bias_block(bb, sb, i0, w, m, n, key, srmask, sh_b, mode, lo, hi, wrap, zb, cnt):
    """:func:`_fx_bias` for a block of ``w`` outputs starting at an even output: the SR unit's
    words of the block drawn in one vector loop into ``zb`` (uint32 scratch of ``ceil(w / 2)``
    words)."""
    if mode != STOCHASTIC:
        _fx_bias(bb, sb, i0, w, m, n, key, srmask, sh_b, mode, lo, hi, wrap, cnt)
        return
    nw = (w + 1) // 2
    _sr_words(zb, nw, np.uint64(sr_key32(key)) + np.uint64((m + 1) // 2 * n + i0 // 2), 1, srmask)
    r16 = zb[:nw].view(np.uint16)
    # the weights' rounding loop (a zero sum gives a zero increment there too); vectorised when
    # no sum can reach 2**61 (then |S + r| < 2**62)
    smax = np.int64(0)
    for i in range(w):
        smax = max(smax, abs(sb[i]))
    fast = smax < (np.int64(1) << np.int64(61)) and sh_b <= 61
    _fx_apply(bb, sb, r16, w, sh_b, STOCHASTIC, lo, hi, wrap, fast, cnt)


@jit
def _fx_activate(v, lo, hi, wrap, shift_acc, act_code, slope_q, lut, act_min, sat1):
    """Accumulator -> (a, h): saturate, round to the activation format, activation function
    (the general path: any overflow mode)."""
    v = saturate(v, lo[0], hi[0], wrap[0], sat1, 0)
    av = saturate(shift_round(v, shift_acc, NEAREST, 0), lo[1], hi[1], wrap[1], sat1, 1)
    return av, act_fixed(av, act_code, slope_q, lut, act_min)


@jit
def _fx_activate_row(ac, a3, ao, ho, w, lo, hi, wrap, shift_acc, act_code, slope_q, lut, act_min,
                     sat1):
    """(ao, ho)[i] = activation of the accumulator ac[i] + a3[i], i < w (branch-light when the
    formats saturate; the general path otherwise)."""
    if wrap[0] != 0 or wrap[1] != 0 or shift_acc <= 0:
        for i in range(w):
            av, hv = _fx_activate(ac[i] + a3[i], lo, hi, wrap, shift_acc, act_code, slope_q, lut,
                                  act_min, sat1)
            ao[i] = av
            ho[i] = hv
        return
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
        off = np.int64(_BIAS >> ush)
        s32 = np.int32(slope_q)
        r32 = np.int32(32768)
        s16 = np.int32(16)
        for i in range(w):
            v = ac[i] + np.int64(a3[i])
            n0 += np.int64(v < lo0) + np.int64(v > hi0)
            v = lo0 if v < lo0 else v
            v = hi0 if v > hi0 else v
            av = np.int64((np.uint64(v + half) + _BIAS) >> ush) - off
            n1 += np.int64(av < lo1) + np.int64(av > hi1)
            av = lo1 if av < lo1 else av
            av = hi1 if av > hi1 else av
            ao[i] = av
            neg = np.int64(_ashr32(np.int32(np.int32(av) * s32 + r32), s16))
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


# ----------------------------------------------------------------------------------------------
# fixed point: one block of output neurons of one layer
# ----------------------------------------------------------------------------------------------
@jit
def _active_rows(n, has_prev, pptr, cptr, rows):
    """Inputs j with a pending or a new non-zero value (the rows a pass touches); returns count."""
    nr = 0
    for j in range(n):
        if (has_prev and pptr[j + 1] > pptr[j]) or cptr[j + 1] > cptr[j]:
            rows[nr] = j
            nr += 1
    return nr


@jit
def _fx_block_im(i0, i1, n, m, wt, b, has_prev, pp, pnb, pptr, pidx, pval, key, srmask,
                 sh_w, sh_b, mode, lo, hi, wrap, cnb, cptr, cidx, cval,
                 f_a, shift_acc, act_code, slope_q, lut, act_min, kflush, fast, fast32,
                 acc, acc32, srow, zbuf, phl, a_out, h_out, cnt):
    """Input-major block [i0, i1) (``i0`` even): pending update, then forward pass of the new
    inputs. ``wt`` holds the block's own weights ``(n, i1 - i0)`` (:func:`block_view`); ``acc``,
    ``acc32`` (``(cnb, >= w)``), ``srow`` and ``zbuf`` (uint64, read as the SR unit's uint32
    words, one per two outputs) are the block's own scratch, indexed from 0; ``phl`` holds the
    pending terms split for :func:`_fx_apply_px32` (used when ``fast32``)."""
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
        _fx_bias_block(bb, sr, i0, w, m, n, key, srmask, sh_b, mode, lo_w, hi_w, wrap_w, zb, cnt)
        if mode != STOCHASTIC:
            _sr_const_fill(r16, w, mode)
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
    nrows = _active_rows(n, has_prev, pptr, cptr, rowlist)
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
            _sr_words(zb, nw, ukey + np.uint64(j) * P, 1, srmask)
        if q1 == q0 + 1:
            s = pidx[q0]
            if fast32 and pmax * abs(np.int64(pval[q0])) < (np.int64(1) << np.int64(30)):
                # the whole product fits int32 (|p x| < 2**30 leaves room for + r16)
                if use16:
                    _fx_apply_p16(row, pp[s, i0:i1], pval[q0], r16, w, e, lo_w, hi_w, cnt, d16)
                else:
                    _fx_apply_p32(row, pp[s, i0:i1], pval[q0], r16, w, e, lo_w, hi_w, cnt)
            elif fast32:
                _fx_apply_px32(row, phl[0, s, i0:i1], phl[1, s, i0:i1], pval[q0], r16, w, e,
                               lo_w, hi_w, cnt)
            else:
                _fx_apply_px(row, pp[s, i0:i1], pval[q0], sr, r16, w, sh_w, mode, lo_w, hi_w,
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
            _fx_apply(row, sr, r16, w, sh_w, mode, lo_w, hi_w, wrap_w, fast, cnt)
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
        _fx_activate_row(acc[s, :w], acc32[s, :w], a_out[s, i0:i1], h_out[s, i0:i1], w, lo,
                         hi, wrap, shift_acc, act_code, slope_q, lut, act_min, sat1)
    cnt[_B_SAT_ACC] += sat1[0]
    cnt[_B_SAT_ACT] += sat1[1]


@jit
def _fx_block_om(i0, i1, n, m, W, b, has_prev, pp, pnb, xp, key, srmask, sh_w, sh_b, mode, lo, hi, wrap,
                 cnb, xc, f_a, shift_acc, act_code, slope_q, lut, act_min, kflush, fast, fast32,
                 srow, zbuf, zrow, a_out, h_out, cnt):
    """Output-major block of rows [i0, i1) of ``W`` (m, n): pending update, then forward pass.
    ``zrow`` (uint64 scratch of ``n`` or more, read as uint32) holds the SR unit's words of the
    current pair of rows (outputs ``2g, 2g + 1`` share words ``j P + g``); a single
    pending sample rounds in int32 lanes when ``fast32``; dot products sum ``kflush`` products
    in int32 lanes at a time (0: int64 only)."""
    lo_w, hi_w, wrap_w = lo[3], hi[3], wrap[3]
    sr = srow[:n]
    r16 = zbuf[:(n + 3) // 4].view(np.uint16)
    z32 = zrow.view(np.uint32)
    k32 = np.uint64(sr_key32(key))
    P = (m + 1) // 2
    if has_prev and mode != STOCHASTIC:
        _sr_const_fill(r16, n, mode)
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
                        _sr_words(z32, n, k32 + np.uint64(group), P, srmask)
                    _sr_half_extract(r16, z32, n, i % 2)
                if single:
                    e = sh_w - 16
                    _fx_apply_xp32(row, p0 >> e, p0 & ((np.int64(1) << e) - 1), xp[0], r16, n, e,
                                   lo_w, hi_w, cnt)
                else:
                    _fx_apply(row, sr, r16, n, sh_w, mode, lo_w, hi_w, wrap_w, fast, cnt)
            _fx_bias(b[i:i + 1], sb, i, 1, m, n, key, srmask, sh_b, mode, lo_w, hi_w, wrap_w, cnt)
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
            av, hv = _fx_activate(v, lo, hi, wrap, shift_acc, act_code, slope_q, lut, act_min, sat1)
            a_out[s, i] = av
            h_out[s, i] = hv
    cnt[_B_SAT_ACC] += sat1[0]
    cnt[_B_SAT_ACT] += sat1[1]


@jit
def fx_post_sample(a, h, m, i0, i1, vs, vn, scale, loss_code, act_code, slope, gate_h2, pow2_au,
                   lo_u, hi_u, p_out):
    """One sample's SPELA post-synaptic terms of outputs ``[i0, i1)`` (the reference's float64
    expressions; ``|h|^2`` and ``h . v`` over all ``m``, exact in int64). Returns (1 for a
    zero-norm ``h`` (its terms are 0), update saturations).

    When the activations and class vectors fit int32 the loops convert through int32 (AVX2 has
    vector int32 <-> float64 conversions and 32 x 32 -> 64-bit products, not int64 ones), and
    ``p`` through int32 when the update format fits it: the same values."""
    lim = np.int64(1) << np.int64(31)
    p_narrow = lo_u >= -2.0**31 and hi_u < 2.0**31
    lo_hv = np.int64(0)
    hi_hv = np.int64(0)
    for i in range(m):
        lo_hv = min(lo_hv, min(h[i], vs[i]))
        hi_hv = max(hi_hv, max(h[i], vs[i]))
    narrow = -lim <= lo_hv and hi_hv < lim
    n2 = np.int64(0)
    dot = np.int64(0)
    if narrow:
        for i in range(m):
            h64 = np.int64(np.int32(h[i]))
            n2 += h64 * h64
            dot += h64 * np.int64(np.int32(vs[i]))
    else:
        for i in range(m):
            n2 += h[i] * h[i]
            dot += h[i] * vs[i]
    if n2 == 0:
        for i in range(i0, i1):
            p_out[i] = 0
        return 1, 0
    r = math.sqrt(np.float64(n2))
    c = np.float64(dot) / (r * vn)
    g = 1.0 if loss_code == NEG_COS else 1.0 / (2.0 - c)
    sc = scale * g * pow2_au / r
    A = sc / vn
    C = sc * c / r
    nsat = 0
    if narrow and act_code == LEAKY_RELU and p_narrow:  # LeakyReLU: one branch-free vector loop
        for i in range(i0, i1):
            gate = 1.0 if a[i] > 0 else slope
            # np.floor stays a float (math.floor's int64 has no vector conversion)
            t = np.floor((A * np.float64(np.int32(vs[i])) - C * np.float64(np.int32(h[i])))
                         * gate + 0.5)
            nsat += np.int64(t < lo_u) + np.int64(t > hi_u)
            t = lo_u if t < lo_u else t
            t = hi_u if t > hi_u else t
            p_out[i] = np.int32(t)
        return 0, nsat
    for i in range(i0, i1):
        gate = gate_float(a[i], h[i], act_code, slope, gate_h2)
        t = math.floor((A * np.float64(vs[i]) - C * np.float64(h[i])) * gate + 0.5)
        if t < lo_u or t > hi_u:
            nsat += 1
            t = lo_u if t < lo_u else hi_u
        p_out[i] = np.int64(t)
    return 0, nsat


@jit
def _fx_normalize(x, nb, n, pow2_a, lo, hi, wrap):
    """x = round(x * 2**f_a / |x|) per row, in place; zero rows stay zero (saturations are not
    counted, as in the reference)."""
    sat = np.zeros(4, np.int64)
    for s in range(nb):
        n2 = np.int64(0)
        for j in range(n):
            n2 += np.int64(x[s, j]) * np.int64(x[s, j])
        r = math.sqrt(np.float64(n2))
        sc = pow2_a / r if n2 > 0 else 0.0
        for j in range(n):
            q = math.floor(np.float64(x[s, j]) * sc + 0.5)
            x[s, j] = saturate(np.int64(q), lo, hi, wrap, sat, 1)


@jit
def _fl_block_im(i0, i1, n, m, wt, b, has_prev, pp, pnb, pptr, pidx, pval,
                 cnb, cptr, cidx, cval, act_code, slope, acc, srow, a_out, h_out, cnt):
    """Float32 twin of :func:`_fx_block_im`: ``wt`` holds the block's own weights,
    ``(n, i1 - i0)`` (see :func:`block_view`)."""
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
    nrows = _active_rows(n, has_prev, pptr, cptr, rowlist)
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
    cnt[_B_WRITES] += writes
    for s in range(cnb):
        ac = acc[s, :w]
        ao = a_out[s, i0:i1]
        ho = h_out[s, i0:i1]
        for i in range(w):
            av = ac[i] + bb[i]
            ao[i] = av
            ho[i] = act_float(av, act_code, slope)


@jit
def _dot8x2(a, x, y, n):
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
def _fl_block_om(i0, i1, n, m, W, b, has_prev, pp, pnb, xp, cnb, xc, act_code, slope, srow,
                 a_out, h_out, cnt):
    """Float32 twin of :func:`_fx_block_om`."""
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
            va, vb = _dot8x2(row, xc[s], xc[s + 1], n)
            a_out[s, i] = va + b[i]
            a_out[s + 1, i] = vb + b[i]
        if cnb % 2 == 1:
            a_out[cnb - 1, i] = _dot8x2(row, xc[cnb - 1], xc[cnb - 1], n)[0] + b[i]
        for s in range(cnb):
            h_out[s, i] = act_float(a_out[s, i], act_code, slope)
    cnt[_B_WRITES] += writes


@jit
def block_view(wseg, n, i0, i1):
    """The weights of outputs ``[i0, i1)`` of an input-major layer stored *block-major* (each
    block of outputs its own contiguous ``(n, i1 - i0)`` matrix, at offset ``n * i0``; one
    block: the plain input-major matrix). Threads that own whole blocks then never touch the
    same cache lines, nor lines the hardware prefetcher fetches next to them: half rows of one
    shared matrix made two threads slower than one."""
    return wseg[n * i0:n * i1].reshape(n, i1 - i0)


@jit
def fl_post_sample(a, h, m, i0, i1, vs, scale, loss_code, act_code, slope, p_out):
    """One sample's post-synaptic terms of outputs ``[i0, i1)`` (``|h|^2`` and ``h . v_y`` over
    all ``m``, float64 in four interleaved partial sums: one sum alone waits on each addition);
    returns 1 for a zero-norm ``h`` (its terms are 0)."""
    n0 = n1 = n2_ = n3 = 0.0
    d0 = d1 = d2 = d3 = 0.0
    m4 = m - m % 4
    for i in range(0, m4, 4):
        h0, h1, h2, h3 = np.float64(h[i]), np.float64(h[i + 1]), np.float64(h[i + 2]), \
            np.float64(h[i + 3])
        n0 += h0 * h0
        n1 += h1 * h1
        n2_ += h2 * h2
        n3 += h3 * h3
        d0 += h0 * vs[i]
        d1 += h1 * vs[i + 1]
        d2 += h2 * vs[i + 2]
        d3 += h3 * vs[i + 3]
    for i in range(m4, m):
        n0 += np.float64(h[i]) * h[i]
        d0 += np.float64(h[i]) * vs[i]
    n2 = (n0 + n1) + (n2_ + n3)
    dot = (d0 + d1) + (d2 + d3)
    if n2 == 0.0:
        for i in range(i0, i1):
            p_out[i] = 0.0
        return 1
    r = math.sqrt(n2)
    c = dot / r
    g = 1.0 if loss_code == NEG_COS else 1.0 / (2.0 - c)
    kk = scale * g / r
    cr = c / r
    for i in range(i0, i1):
        # h in float64: tanh's 1 - h^2 squares in float64, as the reference
        gate = gate_float(a[i], np.float64(h[i]), act_code, slope, 1.0)
        p_out[i] = kk * gate * (vs[i] - cr * h[i])
    return 0


@jit
def _fl_normalize(x, nb, n):
    """x / |x| per row in place (float64 norm, as the numba per-step kernel)."""
    for s in range(nb):
        n2 = 0.0
        for j in range(n):
            n2 += np.float64(x[s, j]) * x[s, j]
        inv = 1.0 / max(math.sqrt(n2), 1e-12)
        for j in range(n):
            x[s, j] = x[s, j] * inv


# ----------------------------------------------------------------------------------------------
# batched forward pass (inference, and any ops.forward on many samples)
# ----------------------------------------------------------------------------------------------
@jit
def _forward_fixed_sub(wt, b, x, s0, s1, m, f_a, shift_acc, lo, hi, wrap, act_code, slope_q, lut,
                       act_min, kflush, a_out, h_out, sat):
    """Input-major forward pass of samples [s0, s1) (one sub-batch: accumulators stay in L2)."""
    n = x.shape[1]
    nb = s1 - s0
    ptr = np.zeros(n + 1, np.int64)
    idx = np.zeros(nb * n, np.int64)
    val = np.zeros(nb * n, x.dtype)
    csc_of(x[s0:s1], nb, n, ptr, idx, val)
    zp = np.zeros(1, np.int64)
    acc = np.zeros((nb, m), np.int64)
    acc32 = np.zeros((nb, m), np.int32)
    srow = np.zeros(m, np.int64)
    zbuf = np.zeros((m + 3) // 4, np.uint64)
    phl = np.zeros((2, 1, m), np.int32)
    pp = np.zeros((1, m), np.int32)
    cnt = np.zeros(4, np.int64)
    _fx_block_im(0, m, n, m, wt, b, False, pp, 0, ptr, zp, val[:1], np.uint64(0), np.uint32(0), 1,
                 1, 0, lo, hi, wrap, nb, ptr, idx, val, f_a, shift_acc, act_code, slope_q, lut, act_min, kflush,
                 True, False, acc, acc32, srow, zbuf, phl, a_out[s0:s1], h_out[s0:s1], cnt)
    sat[0] += cnt[_B_SAT_ACC]
    sat[1] += cnt[_B_SAT_ACT]


@jit
def forward_fixed(w, b, x, f_a, shift_acc, lo, hi, wrap, act_code, slope_q, lut, act_min, kflush,
                  sub, a_out, h_out, sat):
    """Forward pass of a batch with input-major weights ``w`` (n, m), in sub-batches of ``sub``."""
    nb = x.shape[0]
    m = w.shape[1]
    for s0 in range(0, nb, sub):
        _forward_fixed_sub(w, b, x, s0, min(s0 + sub, nb), m, f_a, shift_acc, lo, hi, wrap,
                           act_code, slope_q, lut, act_min, kflush, a_out, h_out, sat)


@jit(parallel=True)
def forward_fixed_parallel(w, b, x, f_a, shift_acc, lo, hi, wrap, act_code, slope_q, lut,
                           act_min, kflush, sub, a_out, h_out, sat):
    """Input-major :func:`forward_fixed` with sub-batches on several threads (samples are
    independent, so the result is the serial one)."""
    nb = x.shape[0]
    m = w.shape[1]
    nsub = (nb + sub - 1) // sub
    sats = np.zeros((nsub, 4), np.int64)
    for c in prange(nsub):
        _forward_fixed_sub(w, b, x, c * sub, min(c * sub + sub, nb), m, f_a, shift_acc, lo, hi,
                           wrap, act_code, slope_q, lut, act_min, kflush, a_out, h_out, sats[c])
    for c in range(nsub):
        for k in range(4):
            sat[k] += sats[c, k]


@jit
def _forward_float_sub(wt, b, x, s0, s1, m, act_code, slope, a_out, h_out):
    n = x.shape[1]
    nb = s1 - s0
    ptr = np.zeros(n + 1, np.int64)
    idx = np.zeros(nb * n, np.int64)
    val = np.zeros(nb * n, np.float32)
    csc_of(x[s0:s1], nb, n, ptr, idx, val)
    zp = np.zeros(1, np.int64)
    acc = np.zeros((nb, m), np.float32)
    srow = np.zeros(m, np.float32)
    pp = np.zeros((1, m), np.float32)
    cnt = np.zeros(4, np.int64)
    _fl_block_im(0, m, n, m, wt, b, False, pp, 0, ptr, zp, val[:1], nb, ptr, idx, val, act_code,
                 slope, acc, srow, a_out[s0:s1], h_out[s0:s1], cnt)


@jit
def forward_float(w, b, x, act_code, slope, sub, a_out, h_out):
    """Float32 twin of :func:`forward_fixed`."""
    nb = x.shape[0]
    m = w.shape[1]
    for s0 in range(0, nb, sub):
        _forward_float_sub(w, b, x, s0, min(s0 + sub, nb), m, act_code, slope, a_out, h_out)


@jit(parallel=True)
def forward_float_parallel(w, b, x, act_code, slope, sub, a_out, h_out):
    nb = x.shape[0]
    m = w.shape[1]
    nsub = (nb + sub - 1) // sub
    for c in prange(nsub):
        _forward_float_sub(w, b, x, c * sub, min(c * sub + sub, nb), m, act_code, slope, a_out,
                           h_out)


# ----------------------------------------------------------------------------------------------
# update of row-major weights (ops.update: the per-step path of every rule)
# ----------------------------------------------------------------------------------------------
@jit
def _column_span(x, nb, n):
    """[c0, c1): the smallest column range holding every non-zero input of the batch."""
    c0 = n
    c1 = 0
    for s in range(nb):
        for j in range(n):
            if x[s, j] != 0:
                c0 = min(c0, j)
                break
        for j in range(n - 1, -1, -1):
            if x[s, j] != 0:
                c1 = max(c1, j + 1)
                break
    return c0, max(c1, c0)


# Rows of outputs per block of the mini-batch update: the block's sums S^T (span x 64) stay in L2.
_UPDATE_BLOCK = 64


@jit
def _csc_span(x, nb, c0, c1):
    """Column-compressed non-zeros of x[:, c0:c1] (columns relative to c0)."""
    span = c1 - c0
    ptr = np.zeros(span + 1, np.int64)
    idx = np.zeros(max(nb * span, 1), np.int64)
    val = np.zeros(max(nb * span, 1), x.dtype)
    csc_of(x[:, c0:c1], nb, span, ptr, idx, val)
    return ptr, idx, val


@jit
def update_rows_fixed(w, b, p, x, key, srmask, sh_w, sh_b, mode, lo, hi, wrap, fast, sat):
    """``W += round(p^T x)``, ``b += round(sum p)`` on row-major ``W`` (m, n); returns writes.

    Rows are streamed over the span of non-zero inputs with the vectorised rounding of
    :func:`_fx_apply` (the SR unit's words ``j ceil(m / 2) + i // 2``, ``ceil(m / 2)`` apart
    along a row, half ``i % 2``: rows ``2g`` and ``2g + 1`` share them); bit-exact with the
    reference (a zero input or a zero post-synaptic term gives a zero increment). A mini-batch
    first forms the exact sums ``S^T[j, i] = sum_s x_sj p_si`` for a block of 64 outputs from
    the sparse columns of ``x`` (contiguous in ``i``), then applies them row by row.
    """
    m, n = w.shape
    nb = p.shape[0]
    c0, c1 = _column_span(x, nb, n)
    span = c1 - c0
    sr = np.zeros(max(span, 1), np.int64)
    r16 = np.zeros(max(span, 1), np.uint16)
    zrow = np.zeros(max(span, 1), np.uint32)
    k32 = np.uint64(sr_key32(key)) + np.uint64(c0) * np.uint64((m + 1) // 2)
    P = (m + 1) // 2
    group = -1
    if mode != STOCHASTIC:
        _sr_const_fill(r16, span, mode)
    sb = np.zeros(1, np.int64)
    cnt = np.zeros(4, np.int64)
    if nb > 1 and span > 0:
        ptr, idx, val = _csc_span(x, nb, c0, c1)
        BLK = _UPDATE_BLOCK
        st = np.zeros((span, BLK), np.int64)
        for i0 in range(0, m, BLK):
            i1 = min(i0 + BLK, m)
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
                xv = np.int64(val[q0])
                for l in range(wb):
                    strow[l] = np.int64(ps[l]) * xv
                for q in range(q0 + 1, q1):
                    ps = p[idx[q], i0:i1]
                    xv = np.int64(val[q])
                    for l in range(wb):
                        strow[l] += np.int64(ps[l]) * xv
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
                            _sr_words(zrow, span, k32 + np.uint64(group), P, srmask)
                        _sr_half_extract(r16, zrow, span, i % 2)
                    _fx_apply(w[i, c0:c1], sr, r16, span, sh_w, mode, lo, hi, wrap, fast, cnt)
                _fx_bias(b[i:i + 1], sb, i, 1, m, n, key, srmask, sh_b, mode, lo, hi, wrap, cnt)
        sat[3] += cnt[_B_SAT_W]
        return cnt[_B_WRITES]
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
                    _sr_words(zrow, span, k32 + np.uint64(group), P, srmask)
                _sr_half_extract(r16, zrow, span, i % 2)
            _fx_apply(w[i, c0:c1], sr, r16, span, sh_w, mode, lo, hi, wrap, fast, cnt)
        _fx_bias(b[i:i + 1], sb, i, 1, m, n, key, srmask, sh_b, mode, lo, hi, wrap, cnt)
    sat[3] += cnt[_B_SAT_W]
    return cnt[_B_WRITES]


@jit
def update_rows_float(w, b, p, x):
    """Float32 twin of :func:`update_rows_fixed`: sums over the batch in float32 in sample order
    (a batch of one adds ``fl32(p_i x_j)``, the reference's increment bit for bit)."""
    m, n = w.shape
    nb = p.shape[0]
    c0, c1 = _column_span(x, nb, n)
    span = c1 - c0
    sr = np.zeros(max(span, 1), np.float32)
    # smallest non-zero input magnitude of a single sample (see _fl_block_im on underflow)
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
        ptr, idx, val = _csc_span(x, nb, c0, c1)
        BLK = _UPDATE_BLOCK
        st = np.zeros((span, BLK), np.float32)
        for i0 in range(0, m, BLK):
            i1 = min(i0 + BLK, m)
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
