"""Batched fixed-point forward pass (inference, and any ``ops.forward`` on many samples):
input-major weights, sub-batches whose accumulators stay in L2, zero skipping; the block pass of
:mod:`~spela_hw._kernels.blocks_fixed` without a pending update. (Float32 batches run on BLAS,
which was faster on every layer measured: ``spela_hw.backends.numba_ops``.)
"""


import numpy as np
from numba import prange

from . import jit
from .blocks_fixed import fx_block_im
from .buffers import B_SAT_ACC, B_SAT_ACT
from .records import FixedScratch, Inputs
from .sparse import csc_of

@jit
def _forward_fixed_sub(wt, b, x, s0, s1, m, lay, act, a_out, h_out, sat):
    """Input-major forward pass of samples [s0, s1) (one sub-batch: accumulators stay in L2)."""
    n = x.shape[1]
    nb = s1 - s0
    ptr = np.zeros(n + 1, np.int64)
    idx = np.zeros(nb * n, np.int64)
    val = np.zeros(nb * n, x.dtype)
    csc_of(x[s0:s1], nb, n, ptr, idx, val)
    cur = Inputs(nb, x[s0:s1], ptr, idx, val)
    scr = FixedScratch(np.zeros((nb, m), np.int64), np.zeros((nb, m), np.int32),
                       np.zeros(m, np.int64), np.zeros((m + 3) // 4, np.uint64),
                       np.zeros(1, np.uint64), np.zeros((2, 1, m), np.int32))
    cnt = np.zeros(4, np.int64)
    # no pending update (an empty batch; its terms and key are never read)
    fx_block_im(0, m, n, m, wt, b, np.uint64(0), lay, act, np.zeros((1, m), np.int32),
                Inputs(0, x[s0:s0], ptr, idx[:1], val[:1]), cur, scr, a_out[s0:s1], h_out[s0:s1],
                cnt)
    sat[0] += cnt[B_SAT_ACC]
    sat[1] += cnt[B_SAT_ACT]


@jit
def forward_fixed(w, b, x, lay, act, sub, a_out, h_out, sat):
    """Forward pass of a batch with input-major weights ``w`` (n, m), in sub-batches of ``sub``;
    ``lay``: the layer's formats (:class:`~.records.FixedLayer`, its update fields unused),
    ``act``: its :class:`~.records.Activation`."""
    nb = x.shape[0]
    m = w.shape[1]
    for s0 in range(0, nb, sub):
        _forward_fixed_sub(w, b, x, s0, min(s0 + sub, nb), m, lay, act, a_out, h_out, sat)


@jit(parallel=True)
def forward_fixed_parallel(w, b, x, lay, act, sub, a_out, h_out, sat):
    """Input-major :func:`forward_fixed` with sub-batches on several threads (samples are
    independent, so the result is the serial one)."""
    nb = x.shape[0]
    m = w.shape[1]
    nsub = (nb + sub - 1) // sub
    sats = np.zeros((nsub, 4), np.int64)
    for c in prange(nsub):
        _forward_fixed_sub(w, b, x, c * sub, min(c * sub + sub, nb), m, lay, act, a_out, h_out,
                           sats[c])
    for c in range(nsub):
        for k in range(4):
            sat[k] += sats[c, k]
