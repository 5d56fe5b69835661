"""SPELA training over a chunk of samples, fixed point or float32, on one core or two: one
compiled call runs many update steps (the pending update of step ``t`` fused with the forward
pass of step ``t + 1``, see :mod:`spela_hw._kernels`).

:func:`train_chunk` (one thread) and :func:`train_chunk_two_cores` run the same step loop
(:func:`_worker`), the one-thread case simply taking both halves of every layer in turn. The
number type is chosen by ``fmts``: the layers' :class:`~.records.FixedFormats` (fixed point:
:mod:`~.blocks_fixed`, :func:`~.loss_unit.fx_post_sample`, stochastic rounding) or ``None``
(float32: :mod:`~.blocks_float`, :func:`~.loss_unit.fl_post_sample`). The few number-type parts
of the loop (scratch, normalisation, block pass, loss unit, rounding key) are chosen by the type
of ``fmts`` when numba compiles the loop (``numba.extending.overload``): one machine-code version
per number type, nothing decided per step. (Passing the block passes as jitted function
arguments would do the same, but numba's cache never loads a function compiled for a function
argument: every process would compile the trainers again.)

Running a layer's blocks with ``prange`` once per layer and step (an earlier design) costs a
parallel-region launch and a cold start per layer and step (more than the halved work saves with
one sample per step) and leaves the narrow output-major layers, the loss unit and the input
preparation on one thread (half the time of a mini-batch step once the wide layer runs on two).
Here two threads enter **one** parallel region for the whole chunk. Thread ``t`` keeps its
outputs' weights (a contiguous block, :func:`~.buffers.block_view`), pending updates and sparse
copies of the inputs to itself, and the two meet once per layer and step at a spin barrier,
after publishing their halves of ``h``:

* the loss unit needs ``|h|^2`` and ``h . v_y`` over the whole layer: both threads compute them
  over the published ``h`` in the one-thread order, then the post-synaptic terms of their own
  outputs;
* the next layer needs the whole ``h`` as its input (both read it after the barrier).

Every output therefore sees exactly the operations, in the same order, of the one-thread run
(the same block functions run on each half): the result equals it bit for bit, float32
included. ``h`` is double-buffered by step parity, so a thread never overwrites a half that the
other may still read. Fixed-point results are bit-exact with the reference backend: every output
sees the same integer operations in the same order, and the integer sums of the loss unit do
not depend on their order.

The threads meet through :mod:`spela_hw._kernels.sync`; when they cannot (one thread, or a
threading layer that may run both on one worker), the two-thread kernel returns ``False``
having changed nothing, and the caller falls back to one thread.
"""

import numpy as np
from numba import prange, types
from numba.extending import overload

from ..codes import INPUT_MAJOR
from . import JIT, jit
from .blocks_fixed import fx_block_im, fx_block_om
from .blocks_float import fl_block_im, fl_block_om
from .buffers import (B_SAT_ACC, B_SAT_ACT, B_SAT_W, B_WRITES, C_FWD_NNZ, C_SAT, C_UPD_NNZ,
                      C_WRITES, C_ZERO, aligned2, block_view)
from .fixed import normalize_rows as fx_normalize_rows
from .floating import normalize_rows as fl_normalize_rows
from .loss_unit import fl_post_sample, fx_post_sample
from .records import FixedScratch, FloatScratch, Inputs, layer_of
from .sparse import csc_of, nnz_of, update_nnz
from .sync import load_inputs, meet, new_sync, own_outputs, publish, stored_block


# The number-type parts of the step loop. Each is a Python stub whose numba version is chosen
# by the type of ``fmts`` when the caller compiles (``None``: float32): one compiled trainer per
# number type, nothing decided per step, and cached like any kernel.
def _is_float(fmts):
    return isinstance(fmts, types.NoneType)


def _scratch(fmts, B, nmax):
    """One thread's scratch for the block passes (:class:`~.records.FixedScratch` or
    :class:`~.records.FloatScratch`)."""
    raise NotImplementedError("numba kernels only")


@overload(_scratch, jit_options=JIT)
def _scratch_typed(fmts, B, nmax):
    if _is_float(fmts):
        def impl(fmts, B, nmax):
            return FloatScratch(aligned2(B, nmax, np.zeros(1, np.float32)),
                                aligned2(1, nmax, np.zeros(1, np.float32))[0])
        return impl

    def impl(fmts, B, nmax):
        return FixedScratch(aligned2(B, nmax, np.zeros(1, np.int64)),
                            aligned2(B, nmax, np.zeros(1, np.int32)),
                            aligned2(1, nmax, np.zeros(1, np.int64))[0],
                            aligned2(1, (nmax + 3) // 4, np.zeros(1, np.uint64))[0],
                            np.zeros(nmax, np.uint64), np.zeros((2, B, nmax), np.int32))
    return impl


def _normalize(fmts, k, xs, sat):
    """Layer ``k``'s inputs ``xs`` scaled to unit norm per sample, in place (fixed point:
    saturations counted into ``sat``, which the reference does not report)."""
    raise NotImplementedError("numba kernels only")


@overload(_normalize, jit_options=JIT)
def _normalize_typed(fmts, k, xs, sat):
    if _is_float(fmts):
        return lambda fmts, k, xs, sat: fl_normalize_rows(xs, xs)
    return lambda fmts, k, xs, sat: fx_normalize_rows(xs, fmts.pow2_a, fmts.lo[k, 1],
                                                      fmts.hi[k, 1], fmts.wrap[k, 1], xs, sat)


def _block(fmts, k, key, im, i0, i1, n, m, wt, b, act, pp, pend, cur, scr, a_out, h_out, cnt):
    """The block pass of outputs ``[i0, i1)`` of layer ``k``: input-major (``im``: ``wt`` is the
    block's own matrix) or output-major (``wt`` is the layer's); see
    :func:`~.blocks_fixed.fx_block_im` for the other arguments."""
    raise NotImplementedError("numba kernels only")


@overload(_block, jit_options=JIT)
def _block_typed(fmts, k, key, im, i0, i1, n, m, wt, b, act, pp, pend, cur, scr, a_out, h_out,
                 cnt):
    if _is_float(fmts):
        def impl(fmts, k, key, im, i0, i1, n, m, wt, b, act, pp, pend, cur, scr, a_out, h_out,
                 cnt):
            if im:
                fl_block_im(i0, i1, n, m, wt, b, act, pp, pend, cur, scr, a_out, h_out, cnt)
            else:
                fl_block_om(i0, i1, n, m, wt, b, act, pp, pend, cur, scr, a_out, h_out, cnt)
        return impl

    def impl(fmts, k, key, im, i0, i1, n, m, wt, b, act, pp, pend, cur, scr, a_out, h_out, cnt):
        lay = layer_of(fmts, k)
        if im:
            fx_block_im(i0, i1, n, m, wt, b, key, lay, act, pp, pend, cur, scr, a_out, h_out, cnt)
        else:
            fx_block_om(i0, i1, n, m, wt, b, key, lay, act, pp, pend, cur, scr, a_out, h_out, cnt)
    return impl


def _post_sample(fmts, k, a, h, m, i0, i1, vs, vn, scale, loss, act, p_out):
    """The loss unit of layer ``k`` (:mod:`~.loss_unit`): (1 for a zero-norm ``h``, update
    saturations)."""
    raise NotImplementedError("numba kernels only")


@overload(_post_sample, jit_options=JIT)
def _post_sample_typed(fmts, k, a, h, m, i0, i1, vs, vn, scale, loss, act, p_out):
    if _is_float(fmts):
        def impl(fmts, k, a, h, m, i0, i1, vs, vn, scale, loss, act, p_out):
            return fl_post_sample(a, h, m, i0, i1, vs, scale, loss, act, p_out), 0
        return impl

    def impl(fmts, k, a, h, m, i0, i1, vs, vn, scale, loss, act, p_out):
        return fx_post_sample(a, h, m, i0, i1, vs, vn, scale, loss, act, fmts.pow2_au,
                              np.float64(fmts.lo[k, 2]), np.float64(fmts.hi[k, 2]), p_out)
    return impl


def _step_key(fmts, keys, t, k):
    """The stochastic-rounding key of the update computed at step ``t`` (0 in float32)."""
    raise NotImplementedError("numba kernels only")


@overload(_step_key, jit_options=JIT)
def _step_key_typed(fmts, keys, t, k):
    if _is_float(fmts):
        return lambda fmts, keys, t, k: np.uint64(0)
    return lambda fmts, keys, t, k: keys[t, k]


@jit
def _worker(tid, nthreads, X, Y, B, net, rule, act, fmts, keys, bufs, hb, sync, counters):
    """Thread ``tid``'s share of a chunk: with ``nthreads == 2`` the outputs below
    ``net.split[k]`` (thread 0) or the rest (thread 1), meeting the partner at a barrier once per
    layer and step (``hb``, ``sync``: see :func:`train_chunk_two_cores`); with ``nthreads == 1``
    both parts in turn, no barrier (:func:`train_chunk`). ``bufs`` gives the shapes and types of
    the thread's layer buffers."""
    dims, layout, split, n_cls = net.dims, net.layout, net.split, net.n_cls
    w_flat, woff, b_flat, boff = net.w_flat, net.woff, net.b_flat, net.boff
    v_flat, voff, vnorm = net.v_flat, net.voff, net.vnorm
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
    scr = _scratch(fmts, B, nmax)
    a_buf = aligned2(B, nmax, bufs.h)
    h_buf = aligned2(B, nmax, bufs.h)
    bcnt = np.zeros((1, 8), np.int64)
    nsat_norm = np.zeros(4, np.int64)
    phase = 0
    for t in range(nsteps + 1):  # the last pass (t == nsteps) applies the pending updates
        s0 = t * B
        nb = min(B, N - s0) if t < nsteps else 0
        par = t & 1
        for k in range(L):
            n = dims[k]
            m = dims[k + 1]
            i0, i1 = own_outputs(tid, nthreads, split[k], m)
            wk = w_flat[woff[k]:woff[k] + n * m]
            b = b_flat[boff[k]:boff[k] + m]
            xin = xbuf[k, par]
            if nb > 0:
                load_inputs(xin, nb, n, X, s0, k, h_buf, hb, par, nthreads)
                if rule.normalize:
                    _normalize(fmts, k, xin[:nb, :n], nsat_norm)
            key = _step_key(fmts, keys, t - 1, k) if pnb[k] > 0 else np.uint64(0)
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
                        _block(fmts, k, key, True, c0, c1, n, m, block_view(wk, n, c0, c1),
                               b, act, pbuf[k], pend, cur, scr, a_buf, h_buf, bcnt[0])
            else:
                if nb > 0 and tid == 0:
                    counters[k, C_FWD_NNZ] += nnz_of(xin, nb, n)
                if i1 > i0:
                    _block(fmts, k, key, False, i0, i1, n, m, wk.reshape(m, n), b, act,
                           pbuf[k], pend, cur, scr, a_buf, h_buf, bcnt[0])
            counters[k, C_WRITES] += bcnt[0, B_WRITES]
            counters[k, C_SAT] += bcnt[0, B_SAT_ACC] + bcnt[0, B_SAT_ACT] + bcnt[0, B_SAT_W]
            pnb[k] = nb
            if nb == 0:
                continue
            hk, phase = publish(h_buf, hb, k, par, nb, i0, i1, nthreads, sync, tid, phase)
            vk = v_flat[voff[k]:voff[k] + n_cls * m].reshape(n_cls, m)
            vn = vnorm[k * n_cls:(k + 1) * n_cls]
            for s in range(nb):
                c_ = Y[s0 + s]
                zero, nsat = _post_sample(fmts, k, a_buf[s], hk[s], m, i0, i1, vk[c_], vn[c_],
                                          rule.lr / nb, rule.loss, act, pbuf[k, s])
                if tid == 0:
                    counters[k, C_ZERO] += zero
                counters[k, C_SAT] += nsat
                counters[k, C_UPD_NNZ] += update_nnz(pbuf[k, s], i0, i1, xin[s], n)


@jit
def train_chunk(X, Y, B, net, rule, act, fmts, keys, bufs, counters):
    """Train SPELA on ``X`` (inputs in the backend's representation) in steps of ``B`` samples,
    one thread.

    ``net``: the network, flat (:class:`~.records.Network`; input-major layers stored
    block-major at ``net.split[k]``, ``m``: one block; the result does not depend on it);
    ``rule``: SPELA's options (:class:`~.records.SpelaRule`); ``act``: the activation
    (:class:`~.records.Activation`); ``fmts``: every layer's formats and update rounding
    (:class:`~.records.FixedFormats`; layers may have their own weight and accumulator binary
    points), ``None`` for float32; ``keys[t, k]``: the stochastic-rounding key of step ``t``,
    layer ``k`` (fixed point); ``bufs``: the shapes and narrowest types of the layer buffers
    (:class:`~.records.ChunkBuffers`). ``counters[k]`` receives the C_* columns.
    """
    none = np.zeros((1, 1, 1), bufs.h.dtype)
    _worker(0, 1, X, Y, B, net, rule, act, fmts, keys, bufs, none, np.zeros(1, np.int64),
            counters)


@jit(parallel=True)
def train_chunk_two_cores(X, Y, B, net, rule, act, fmts, keys, bufs, counters2, spins):
    """:func:`train_chunk` on two threads; ``False`` (and nothing changed) when the two threads
    could not meet. ``net.split[k]``: first output of thread 1 in layer ``k`` (even, so the two
    never share a stochastic-rounding word; a multiple of 16 in wide layers, so the halves never
    share a cache line); ``counters2[t]`` receives thread ``t``'s counters (their sum is the
    one-thread kernel's)."""
    dims = net.dims
    L = len(dims) - 1
    nmax = 0
    for k in range(L + 1):
        nmax = max(nmax, dims[k])
    sync = new_sync()
    hb2 = aligned2(2 * L * B, nmax, bufs.h)
    hb = hb2.reshape(2 * L, B, hb2.shape[1])  # h of layer k at parity p: hb[2k + p]
    met = np.zeros(2, np.int64)
    for tid in prange(2):
        if meet(sync, tid, spins):
            met[tid] = 1
            _worker(tid, 2, X, Y, B, net, rule, act, fmts, keys, bufs, hb, sync, counters2[tid])
    return met[0] + met[1] == 2
