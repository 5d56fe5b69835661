"""Float32 SPELA chunk trainer, on one core or two: on two, each core owns half of every layer's
outputs. :func:`train_chunk_float` (one thread) and :func:`train_chunk_float_two_cores` run the
same step loop (:func:`_worker`), the one-thread case simply taking both halves in turn.

Running a layer's blocks with ``prange`` once per layer and step (the earlier design) costs a
parallel-region launch and a cold start per layer and step (more than the halved work saves with
one sample per step) and leaves the narrow output-major layers, the loss unit and the input
preparation on one thread (half the time of a mini-batch step once the wide layer runs on two).
Here two threads enter **one** parallel region for the whole chunk. Thread ``t`` keeps its
outputs' weights (a contiguous block, :func:`~spela_hw._kernels.buffers.block_view`), pending
updates and sparse copies of the inputs to itself, and the two
meet once per layer and step at a spin barrier, after publishing their halves of ``h``:

* the loss unit needs ``|h|^2`` and ``h . v_y`` over the whole layer: both threads compute them
  over the published ``h`` in the one-thread order, then the post-synaptic terms of their own
  outputs;
* the next layer needs the whole ``h`` as its input (both read it after the barrier).

Every output therefore sees exactly the operations, in the same order, of the one-thread run
(the same block functions run on each half): the result equals it bit for bit. ``h`` is
double-buffered by step parity, so a thread never overwrites a half that the other may still
read.

The threads meet through :mod:`spela_hw._kernels.sync`; when they cannot (one thread, or a
threading layer that may run both on one worker), the two-thread kernel returns ``False``
having changed nothing, and the caller falls back to one thread.
"""

import numpy as np
from numba import prange

from ..codes import INPUT_MAJOR
from . import jit
from .blocks_float import fl_block_im, fl_block_om
from .buffers import B_WRITES, C_FWD_NNZ, C_UPD_NNZ, C_WRITES, C_ZERO, aligned2, block_view
from .floating import normalize_rows
from .loss_unit import fl_post_sample
from .records import FloatScratch, Inputs
from .sparse import csc_of, nnz_of, update_nnz
from .sync import load_inputs, meet, new_sync, own_outputs, publish, stored_block


@jit
def _worker(tid, nthreads, X, Y, B, net, rule, act, hb, sync, counters):
    """Thread ``tid``'s share of a chunk: with ``nthreads == 2`` the outputs below ``split[k]``
    (thread 0) or the rest (thread 1), meeting the partner at a barrier once per layer and step
    (``hb``, ``sync``: see :func:`train_chunk_float_two_cores`); with ``nthreads == 1`` both
    parts in turn, no barrier (:func:`train_chunk_float`). Input-major layers are stored
    block-major at ``split[k]`` (:func:`~spela_hw._kernels.buffers.block_view`)."""
    dims, layout, split, n_cls = net.dims, net.layout, net.split, net.n_cls
    w_flat, woff, b_flat, boff, v_flat, voff = net.w_flat, net.woff, net.b_flat, net.boff, \
        net.v_flat, net.voff
    L = len(dims) - 1
    N = X.shape[0]
    nsteps = (N + B - 1) // B
    nmax = 0
    for k in range(L + 1):
        nmax = max(nmax, dims[k])
    ptr = np.zeros((L, 2, nmax + 1), np.int64)
    idx = np.empty((L, 2, B * nmax), np.int64)  # (written before read: not zeroed)
    val = np.empty((L, 2, B * nmax), np.float32)
    xbuf = np.empty((L, 2, B, nmax), np.float32)
    pbuf = np.empty((L, B, nmax), np.float32)
    pnb = np.zeros(L, np.int64)
    acc = aligned2(B, nmax, np.zeros(1, np.float32))
    srow = aligned2(1, nmax, np.zeros(1, np.float32))[0]
    a_buf = aligned2(B, nmax, np.zeros(1, np.float32))
    h_buf = aligned2(B, nmax, np.zeros(1, np.float32))
    scr = FloatScratch(acc, srow)
    bcnt = np.zeros((1, 8), np.int64)
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
                    xs = xin[:nb, :n]
                    normalize_rows(xs, xs)
            pq = 1 - par
            pend = Inputs(pnb[k], xbuf[k, pq], ptr[k, pq], idx[k, pq], val[k, pq])
            cur = Inputs(nb, xin, ptr[k, par], idx[k, par], val[k, par])
            bcnt[0, B_WRITES] = 0
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
                        fl_block_im(c0, c1, n, m, block_view(wk, n, c0, c1), b, act, pbuf[k],
                                    pend, cur, scr, a_buf, h_buf, bcnt[0])
            else:
                if nb > 0 and tid == 0:
                    counters[k, C_FWD_NNZ] += nnz_of(xin, nb, n)
                if i1 > i0:
                    fl_block_om(i0, i1, n, m, wk.reshape(m, n), b, act, pbuf[k], pend, cur, scr,
                                a_buf, h_buf, bcnt[0])
            counters[k, C_WRITES] += bcnt[0, B_WRITES]
            pnb[k] = nb
            if nb == 0:
                continue
            hk, phase = publish(h_buf, hb, k, par, nb, i0, i1, nthreads, sync, tid, phase)
            vk = v_flat[voff[k]:voff[k] + n_cls * m].reshape(n_cls, m)
            for s in range(nb):
                zeros = fl_post_sample(a_buf[s], hk[s], m, i0, i1, vk[Y[s0 + s]], rule.lr / nb,
                                       rule.loss, act, pbuf[k, s])
                if tid == 0:
                    counters[k, C_ZERO] += zeros
                counters[k, C_UPD_NNZ] += update_nnz(pbuf[k, s], i0, i1, xin[s], n)


@jit
def train_chunk_float(X, Y, B, net, rule, act, counters):
    """Float32 SPELA over ``X`` in steps of ``B`` samples on one thread: the twin of
    :func:`spela_hw._kernels.fixed_chunk.train_chunk_fixed` (no rounding keys, no saturation).
    Input-major layers are stored block-major at ``net.split[k]`` (``m``: one block); the result
    does not depend on it."""
    none = np.zeros((1, 1, 1), np.float32)
    _worker(0, 1, X, Y, B, net, rule, act, none, np.zeros(1, np.int64), counters)


@jit(parallel=True)
def train_chunk_float_two_cores(X, Y, B, net, rule, act, counters2, spins):
    """:func:`train_chunk_float` on two threads; ``False`` (and nothing changed) when the two
    threads could not meet. ``net.split[k]``: first output of thread 1 in layer ``k`` (a multiple
    of 16, so the halves never share a cache line; input-major layers stored block-major for
    it); ``counters2[t]`` receives thread ``t``'s counters (their sum is the serial kernel's)."""
    dims = net.dims
    L = len(dims) - 1
    nmax = 0
    for k in range(L + 1):
        nmax = max(nmax, dims[k])
    sync = new_sync()
    hb2 = aligned2(2 * L * B, nmax, np.zeros(1, np.float32))
    hb = hb2.reshape(2 * L, B, hb2.shape[1])  # h of layer k at parity p: hb[2k + p]
    met = np.zeros(2, np.int64)
    for tid in prange(2):
        if meet(sync, tid, spins):
            met[tid] = 1
            _worker(tid, 2, X, Y, B, net, rule, act, hb, sync, counters2[tid])
    return met[0] + met[1] == 2
