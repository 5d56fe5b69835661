"""Fixed-point SPELA chunk trainer, on one core or two: the twin of
:mod:`spela_hw._kernels.float_chunk` (see there for how the two threads share every layer and
meet once per layer and step), with the integer block passes, loss unit and stochastic
rounding of :mod:`spela_hw._kernels.blocks_fixed`. Results are bit-exact with the reference backend
whatever the number of threads: every output sees the same integer operations in the same
order, and the integer sums of the loss unit do not depend on their order.
"""

import numpy as np
from numba import prange

from ..codes import INPUT_MAJOR
from . import jit
from .blocks_fixed import fx_block_im, fx_block_om
from .buffers import (B_SAT_ACC, B_SAT_ACT, B_SAT_W, B_WRITES, C_FWD_NNZ, C_SAT, C_UPD_NNZ,
                      C_WRITES, C_ZERO, aligned2, block_view)
from .fixed import normalize_rows
from .loss_unit import fx_post_sample
from .records import FixedScratch, Inputs, layer_of
from .sparse import csc_of, nnz_of, update_nnz
from .sync import load_inputs, meet, new_sync, own_outputs, publish, stored_block


@jit
def _worker(tid, nthreads, X, Y, B, net, rule, act, fmts, keys, bufs, hb, sync, counters):
    """Thread ``tid``'s share of a chunk (outputs split at ``net.split[k]`` as in
    :func:`spela_hw._kernels.float_chunk._worker`; ``nthreads == 1``: both parts in turn, no
    barrier). ``bufs`` gives the shapes and integer types of the thread's buffers (see
    :func:`train_chunk_fixed`)."""
    dims, layout, split, n_cls = net.dims, net.layout, net.split, net.n_cls
    w_flat, woff, b_flat, boff = net.w_flat, net.woff, net.b_flat, net.boff
    v_flat, voff, vnorm_flat = net.v_flat, net.voff, net.vnorm
    L = len(dims) - 1
    N = X.shape[0]
    nsteps = (N + B - 1) // B
    nmax = 0
    for k in range(L + 1):
        nmax = max(nmax, dims[k])
    ptr = np.zeros((L, 2, nmax + 1), np.int64)
    idx = np.empty((L, 2, B * nmax), np.int64)  # (written before read: not zeroed)
    xbuf = np.empty_like(bufs.xbuf)
    pbuf = np.empty_like(bufs.pbuf)
    val = np.empty_like(bufs.val)
    pnb = np.zeros(L, np.int64)  # pending batch size (0: none)
    acc = aligned2(B, nmax, np.zeros(1, np.int64))
    acc32 = aligned2(B, nmax, np.zeros(1, np.int32))
    srow = aligned2(1, nmax, np.zeros(1, np.int64))[0]
    zbuf = aligned2(1, (nmax + 3) // 4, np.zeros(1, np.uint64))[0]
    zrow = np.zeros(nmax, np.uint64)
    phl = np.zeros((2, B, nmax), np.int32)
    scr = FixedScratch(acc, acc32, srow, zbuf, zrow, phl)
    a_buf = aligned2(B, nmax, np.zeros(1, np.int64))
    h_buf = aligned2(B, nmax, np.zeros(1, np.int64))
    bcnt = np.zeros((1, 8), np.int64)
    nsat_norm = np.zeros(4, np.int64)
    phase = 0
    for t in range(nsteps + 1):  # the last pass (t == nsteps) applies the pending updates
        s0 = t * B
        nb = min(B, N - s0) if t < nsteps else 0
        par = t & 1
        for k in range(L):
            lay = layer_of(fmts, k)
            lo, hi, wrap = lay.lo, lay.hi, lay.wrap
            n = dims[k]
            m = dims[k + 1]
            i0, i1 = own_outputs(tid, nthreads, split[k], m)
            wk = w_flat[woff[k]:woff[k] + n * m]
            b = b_flat[boff[k]:boff[k] + m]
            xin = xbuf[k, par]
            if nb > 0:
                load_inputs(xin, nb, n, X, s0, k, h_buf, hb, par, nthreads)
                if rule.normalize:  # (saturations not counted, as in the reference)
                    xs = xin[:nb, :n]
                    normalize_rows(xs, fmts.pow2_a, lo[1], hi[1], wrap[1], xs, nsat_norm)
            has_prev = pnb[k] > 0
            key = keys[t - 1, k] if has_prev else np.uint64(0)
            pq = 1 - par
            pend = Inputs(pnb[k], xbuf[k, pq], ptr[k, pq], idx[k, pq], val[k, pq])
            cur = Inputs(nb, xin, ptr[k, par], idx[k, par], val[k, par])
            bcnt[0, :] = 0
            if layout[k] == INPUT_MAJOR:
                if nb > 0:
                    nnz = csc_of(xin, nb, n, ptr[k, par], idx[k, par], val[k, par])
                    if tid == 0:
                        counters[k, C_FWD_NNZ] += nnz
                else:
                    ptr[k, par, :n + 1] = 0
                for half in range(2):  # the layer is stored block-major at split[k]
                    c0, c1 = stored_block(i0, i1, split[k], half)
                    if c1 > c0:
                        fx_block_im(c0, c1, n, m, block_view(wk, n, c0, c1), b, key, lay, act,
                                    pbuf[k], pend, cur, scr, a_buf, h_buf, bcnt[0])
            else:
                if nb > 0 and tid == 0:
                    counters[k, C_FWD_NNZ] += nnz_of(xin, nb, n)
                if i1 > i0:
                    fx_block_om(i0, i1, n, m, wk.reshape(m, n), b, key, lay, act, pbuf[k], pend,
                                cur, scr, a_buf, h_buf, bcnt[0])
            counters[k, C_WRITES] += bcnt[0, B_WRITES]
            counters[k, C_SAT] += bcnt[0, B_SAT_ACC] + bcnt[0, B_SAT_ACT] + bcnt[0, B_SAT_W]
            pnb[k] = nb
            if nb == 0:
                continue
            hk, phase = publish(h_buf, hb, k, par, nb, i0, i1, nthreads, sync, tid, phase)
            vk = v_flat[voff[k]:voff[k] + n_cls * m].reshape(n_cls, m)
            vn = vnorm_flat[k * n_cls:(k + 1) * n_cls]
            for s in range(nb):
                c_ = Y[s0 + s]
                zero, nsat = fx_post_sample(a_buf[s], hk[s], m, i0, i1, vk[c_], vn[c_],
                                            rule.lr / nb, rule.loss, act, fmts.pow2_au,
                                            np.float64(lo[2]), np.float64(hi[2]), pbuf[k, s])
                if tid == 0:
                    counters[k, C_ZERO] += zero
                counters[k, C_SAT] += nsat
                counters[k, C_UPD_NNZ] += update_nnz(pbuf[k, s], i0, i1, xin[s], n)


@jit
def train_chunk_fixed(X, Y, B, net, rule, act, fmts, keys, bufs, counters):
    """Train SPELA on ``X`` (inputs in the activation format) in steps of ``B`` samples, one
    thread.

    ``net``: the network, flat (:class:`~.records.Network`); ``rule``: SPELA's options
    (:class:`~.records.SpelaRule`); ``act``: the activation (:class:`~.records.Activation`);
    ``fmts``: every layer's formats and update rounding (:class:`~.records.FixedFormats`; layers
    may have their own weight and accumulator binary points); ``keys[t, k]``: the
    stochastic-rounding key of step ``t``, layer ``k``; ``bufs``: the shapes and narrowest
    integer types of the layer buffers (:class:`~.records.ChunkBuffers`). ``counters[k]``
    receives the C_* columns.
    """
    none = np.zeros((1, 1, 1), np.int64)
    _worker(0, 1, X, Y, B, net, rule, act, fmts, keys, bufs, none, np.zeros(1, np.int64),
            counters)


@jit(parallel=True)
def train_chunk_fixed_two_cores(X, Y, B, net, rule, act, fmts, keys, bufs, counters2, spins):
    """:func:`train_chunk_fixed` on two threads; ``False`` (and nothing changed) when the two
    threads could not meet. ``net.split[k]``: first output of thread 1 in layer ``k`` (even, so
    the two never share a stochastic-rounding word); ``counters2[t]`` receives thread ``t``'s
    counters (their sum is the one-thread kernel's)."""
    dims = net.dims
    L = len(dims) - 1
    nmax = 0
    for k in range(L + 1):
        nmax = max(nmax, dims[k])
    sync = new_sync()
    hb2 = aligned2(2 * L * B, nmax, np.zeros(1, np.int64))
    hb = hb2.reshape(2 * L, B, hb2.shape[1])  # h of layer k at parity p: hb[2k + p]
    met = np.zeros(2, np.int64)
    for tid in prange(2):
        if meet(sync, tid, spins):
            met[tid] = 1
            _worker(tid, 2, X, Y, B, net, rule, act, fmts, keys, bufs, hb, sync, counters2[tid])
    return met[0] + met[1] == 2
