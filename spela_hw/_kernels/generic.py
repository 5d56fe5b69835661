"""Loops shared by the fixed-point and the float kernels, generic in the accumulator type.

``acc_t`` is ``np.int64`` for the fixed-point kernels (exact sums of integer products) and
``np.float64`` for the float32 kernels (each factor widened, then multiplied and added in
float64), so a fixed and a float entry point keep their own arithmetic around one loop. numba
compiles a helper per type and inlines it into its caller (``inline="always"``: as a called
function, the sparse dot cost the per-sample forward kernel 7 %). Helpers take a 2-D array and a
row index rather than a row view (no view to build per row).
"""

import numpy as np

from . import jit


@jit(inline="always")
def nonzero_indices(x, s, idx):
    """Write the indices of the non-zero entries of row ``s`` of ``x`` into ``idx`` (in order);
    return how many."""
    nnz = 0
    for j in range(x.shape[1]):
        if x[s, j] != 0:
            idx[nnz] = j
            nnz += 1
    return nnz


@jit(inline="always")
def sparse_dot(w, i, x, s, idx, nnz, acc, acc_t):
    """``acc + sum_t w[i, j] * x[s, j]`` for ``j = idx[t]``, ``t < nnz``, in order."""
    for t in range(nnz):
        j = idx[t]
        acc += acc_t(w[i, j]) * acc_t(x[s, j])
    return acc


@jit(inline="always")
def dot(x, s, y, j, acc_t):
    """``sum_i x[s, i] * y[j, i]`` in ``acc_t``, in order."""
    acc = acc_t(0)
    for i in range(x.shape[1]):
        acc += acc_t(x[s, i]) * acc_t(y[j, i])
    return acc


@jit(inline="always")
def row_max(x, s):
    """The largest entry of row ``s`` of ``x`` (the first of equals; a NaN after the first entry
    is skipped)."""
    zmax = x[s, 0]
    for j in range(1, x.shape[1]):
        if x[s, j] > zmax:  # noqa: PLR1730 (the comparison states the NaN rule; max() may not)
            zmax = x[s, j]
    return zmax


@jit(inline="always")
def readout(h, v, acc_t, out):
    """out[s, c] = sum_i v[c, i] h[s, i] in ``acc_t``, sums in ``i`` order; the classes advance
    side by side (one sum alone would wait on each addition)."""
    nb, m = h.shape
    nc = v.shape[0]
    vt = np.empty((m, nc), acc_t)
    for c in range(nc):
        for i in range(m):
            vt[i, c] = v[c, i]
    acc = np.empty(nc, acc_t)
    for s in range(nb):
        for c in range(nc):
            acc[c] = 0
        for i in range(m):
            hv = acc_t(h[s, i])
            vi = vt[i]
            for c in range(nc):
                acc[c] += vi[c] * hv
        for c in range(nc):
            out[s, c] = acc[c]
