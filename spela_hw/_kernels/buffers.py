"""Scratch and weight buffers of the fused kernels, and the counters they return.

Buffers are flat arrays with per-layer offsets so that one compiled function serves any depth.
"""


import numpy as np

from . import jit

# Counter columns returned per layer (the wrapper adds the counters that depend on shapes only).
C_FWD_NNZ, C_UPD_NNZ, C_WRITES, C_SAT, C_ZERO = range(5)
N_COUNTERS = 5

# Per-block counters of one pass (``cnt`` of the block passes and rounding loops).
B_WRITES, B_SAT_ACC, B_SAT_ACT, B_SAT_W = range(4)


@jit
def aligned2(rows, cols, dtype_like):
    """Zeroed (rows, cols') scratch whose rows start on 64-byte boundaries (cols' >= cols, a
    multiple of 64 bytes): threads writing neighbouring blocks of a row never share a cache line."""
    itemsize = dtype_like.itemsize
    per = 64 // itemsize
    cp = (cols + per - 1) // per * per
    buf = np.zeros(rows * cp + per, dtype_like.dtype)
    off = ((64 - buf.ctypes.data % 64) % 64) // itemsize
    return buf[off:off + rows * cp].reshape(rows, cp)


@jit
def block_view(wseg, n, i0, i1):
    """The weights of outputs ``[i0, i1)`` of an input-major layer stored *block-major* (each
    block of outputs its own contiguous ``(n, i1 - i0)`` matrix, at offset ``n * i0``; one
    block: the plain input-major matrix). Threads that own whole blocks then never touch the
    same cache lines, nor lines the hardware prefetcher fetches next to them: half rows of one
    shared matrix made two threads slower than one."""
    return wseg[n * i0:n * i1].reshape(n, i1 - i0)
