"""Sparse views of a batch of inputs: its non-zero entries by column (CSC), their counts, and the
rows a pass touches. A zero input changes neither a dot product nor a weight (not even
stochastically), so every pass skips it; about 80 % of MNIST pixels are zero.
"""


import numpy as np

from . import jit

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
def column_span(x, nb, n):
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


@jit
def csc_span(x, nb, c0, c1):
    """Column-compressed non-zeros of x[:, c0:c1] (columns relative to c0)."""
    span = c1 - c0
    ptr = np.zeros(span + 1, np.int64)
    idx = np.zeros(max(nb * span, 1), np.int64)
    val = np.zeros(max(nb * span, 1), x.dtype)
    csc_of(x[:, c0:c1], nb, span, ptr, idx, val)
    return ptr, idx, val


@jit
def active_rows(n, has_prev, pptr, cptr, rows):
    """Inputs j with a pending or a new non-zero value (the rows a pass touches); returns count."""
    nr = 0
    for j in range(n):
        if (has_prev and pptr[j + 1] > pptr[j]) or cptr[j + 1] > cptr[j]:
            rows[nr] = j
            nr += 1
    return nr
