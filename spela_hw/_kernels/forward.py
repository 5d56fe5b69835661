"""Batched forward pass (inference, and any ``ops.forward`` on many samples): input-major weights,
sub-batches whose accumulators stay in L2, zero skipping; the block passes of
:mod:`~spela_hw._kernels.blocks_fixed` / :mod:`~spela_hw._kernels.blocks_float` without a pending
update.
"""


import numpy as np
from numba import prange

from ..codes import NEAREST
from . import jit
from .blocks_fixed import fx_block_im
from .blocks_float import fl_block_im
from .buffers import B_SAT_ACC, B_SAT_ACT
from .sparse import csc_of

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
    fx_block_im(0, m, n, m, wt, b, False, pp, 0, ptr, zp, val[:1], np.uint64(0), np.uint32(0), 1,
                 1, NEAREST, lo, hi, wrap, nb, ptr, idx, val, f_a, shift_acc, act_code, slope_q, lut, act_min, kflush,
                 True, False, acc, acc32, srow, zbuf, phl, a_out[s0:s1], h_out[s0:s1], cnt)
    sat[0] += cnt[B_SAT_ACC]
    sat[1] += cnt[B_SAT_ACT]


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
    fl_block_im(0, m, n, m, wt, b, False, pp, 0, ptr, zp, val[:1], nb, ptr, idx, val, act_code,
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
