"""Loops shared by the fixed-point and the float kernels, generic in the accumulator type.

``acc_t`` is ``np.int64`` for the fixed-point kernels (exact sums of integer products) and
``np.float64`` for the float32 kernels (each factor widened, then multiplied and added in
float64). numba compiles each helper once per type and inlines it, so a fixed and a float entry
point keep their own arithmetic around one loop.
"""

import numpy as np

from . import jit


@jit
def nonzero_indices(row, idx):
    """Write the indices of ``row``'s non-zero entries into ``idx`` (in order); return how many."""
    nnz = 0
    for j in range(row.shape[0]):
        if row[j] != 0:
            idx[nnz] = j
            nnz += 1
    return nnz


@jit
def sparse_dot(w_row, x_row, idx, nnz, acc, acc_t):
    """``acc + sum_t w_row[idx[t]] * x_row[idx[t]]`` over the first ``nnz`` indices, in order."""
    for t in range(nnz):
        j = idx[t]
        acc += acc_t(w_row[j]) * acc_t(x_row[j])
    return acc


@jit
def dot(x_row, y_row, acc_t):
    """``sum_i x_row[i] * y_row[i]`` in ``acc_t``, in order."""
    acc = acc_t(0)
    for i in range(x_row.shape[0]):
        acc += acc_t(x_row[i]) * acc_t(y_row[i])
    return acc


@jit
def row_max(row):
    """The largest entry of ``row`` (the first of equals; a NaN after the first entry is skipped)."""
    zmax = row[0]
    for j in range(1, row.shape[0]):
        if row[j] > zmax:  # noqa: PLR1730 (the comparison states the NaN rule; max() may not)
            zmax = row[j]
    return zmax


@jit
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
