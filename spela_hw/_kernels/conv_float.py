"""Float32 conv SPELA block kernels: the parts of :func:`spela_hw.conv.model.conv_spela_step` that
NumPy runs slowly (LeakyReLU and max-pool with their backward pass, Adam); the products stay
NumPy's BLAS (:mod:`spela_hw.conv.float_numba`). Adam's update is NumPy's float32 expression of
:func:`~spela_hw.conv.model.optimizer_step`, element by element.
"""

import numpy as np

from . import jit


@jit
def leaky_pool(u, slope, pool, a_out, y_out, idx_out):
    """``a = LeakyReLU(u)`` and its ``pool x pool`` max-pool ``y`` with the first maximum's index."""
    nb, nf, hc, wc = u.shape
    sl = np.float32(slope)
    for s in range(nb):
        for f in range(nf):
            for i in range(hc):
                for j in range(wc):
                    v = u[s, f, i, j]
                    a_out[s, f, i, j] = v if v > 0 else v * sl
    hp, wp = y_out.shape[2], y_out.shape[3]
    for s in range(nb):
        for f in range(nf):
            for i in range(hp):
                for j in range(wp):
                    best = a_out[s, f, i * pool, j * pool]
                    arg = 0
                    for di in range(pool):
                        for dj in range(pool):
                            v = a_out[s, f, i * pool + di, j * pool + dj]
                            if v > best:
                                best = v
                                arg = di * pool + dj
                    y_out[s, f, i, j] = best
                    idx_out[s, f, i, j] = arg


@jit
def pool_leaky_backward(dy, idx, pool, u, slope, du_out):
    """``du`` ``(B, F, Hc, Wc)`` (zero-filled by the caller): ``dy`` routed to each window's
    maximum, times the LeakyReLU derivative at ``u``."""
    nb, nf, hp, wp = dy.shape
    sl = np.float32(slope)
    for s in range(nb):
        for f in range(nf):
            for i in range(hp):
                for j in range(wp):
                    di, dj = divmod(idx[s, f, i, j], pool)
                    ii, jj = i * pool + di, j * pool + dj
                    du_out[s, f, ii, jj] = dy[s, f, i, j] * (np.float32(1) if u[s, f, ii, jj] > 0 else sl)


@jit(error_model="numpy")  # division by zero gives inf as in NumPy (no check: the loop vectorises)
def adam(param, grad, m, v, lr, one_b1, one_b2, b1, b2, c1, c2, eps):
    """One Adam step in place on flat float32 arrays, NumPy's expression of
    :func:`spela_hw.conv.model.optimizer_step` element by element (``one_b1`` is
    ``float32(1 - beta1)``, ``c1`` ``float32(1 - beta1**t)``, ...)."""
    for i in range(param.shape[0]):
        g = grad[i]
        mi = np.float32(np.float32(m[i] * b1) + np.float32(one_b1 * g))
        vi = np.float32(np.float32(v[i] * b2) + np.float32(np.float32(one_b2 * g) * g))
        m[i] = mi
        v[i] = vi
        den = np.float32(np.float32(np.sqrt(np.float32(vi / c2))) + eps)
        param[i] = np.float32(param[i] - np.float32(np.float32(lr * np.float32(mi / c1)) / den))
