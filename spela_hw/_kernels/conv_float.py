"""Float32 conv SPELA block kernels: the parts of :func:`spela_hw.conv.model.conv_spela_step` that
NumPy runs slowly (LeakyReLU and max-pool with their backward pass, Adam, and the projection
loss of a few samples, where einsum's per-call planning dominates); the convolution and the
projections' product with the loss gradient stay NumPy's BLAS (:mod:`spela_hw.conv.float_numba`).
Adam's update is NumPy's float32 expression of :func:`~spela_hw.conv.model.optimizer_step`,
element by element; the loss kernel sums in loop order (float64 for the norms and dot products),
the reference's einsum in its own: within float32 rounding.
"""

import math

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


@jit(error_model="numpy")
def projection_loss_grad(y, proj, targets, groups, labels, q, dq_out):
    """SPELA's projection loss of a block's output ``y`` ``(B, C, S)`` with projections ``proj``
    ``(C, S, d)``: returns the loss; ``dq_out`` ``(C, B, d)`` its gradient with respect to the
    projected maps; ``q`` ``(d,)`` scratch. Float32 as :func:`spela_hw.conv.model.block_loss_grad`,
    norms and dot products summed in float64. The arrays are indexed in place: a view per row
    of 100 values costs two atomic reference counts, more than its products."""
    nb, nc, ns = y.shape
    d = proj.shape[2]
    inv = np.float32(1.0 / (nb * nc))
    total = 0.0
    for c in range(nc):
        for s in range(nb):
            for t in range(d):
                q[t] = 0
            for u in range(ns):
                yv = y[s, c, u]
                if yv == 0:
                    continue
                for t in range(d):
                    q[t] += yv * proj[c, u, t]
            tv = targets[c, groups[c, labels[s]]]
            n2 = 0.0
            dot = 0.0
            for t in range(d):
                n2 += np.float64(q[t]) * q[t]
                dot += np.float64(q[t]) * tv[t]
            nrm = np.float32(max(math.sqrt(n2), 1e-12))
            cos = np.float32(dot / nrm)
            total += (1.0 - cos) ** 2
            dcos = np.float32(-2.0) * (np.float32(1) - cos) * inv
            a = dcos / nrm
            bq = cos / nrm
            for t in range(d):
                dq_out[c, s, t] = a * (tv[t] - bq * q[t])
    return total / (nb * nc)


@jit(error_model="numpy")
def projection_adam(y, dq, proj, m, v, lr, one_b1, one_b2, b1, b2, c1, c2, eps, g):
    """:func:`adam` on the projections ``proj`` (moments ``m``, ``v``, ``(C, S, d)``) with their
    gradient ``sum_s y[s, c, u] dq[c, s, t]`` (``y`` ``(B, C, S)``, ``dq`` ``(C, B, d)``) formed
    where the step reads it, never stored (summed in sample order, skipping zero inputs; ``g``
    ``(d,)`` scratch)."""
    nb, nc, ns = y.shape
    d = proj.shape[2]
    for c in range(nc):
        for u in range(ns):
            if nb == 1:  # one sample: its gradient 0 + y dq formed in the step's loop
                yv = y[0, c, u]
                for t in range(d):
                    gt = np.float32(np.float32(0) + yv * dq[c, 0, t]) if yv != 0 else np.float32(0)
                    proj[c, u, t], m[c, u, t], v[c, u, t] = _adam1(proj[c, u, t], gt, m[c, u, t], v[c, u, t],
                                                                   lr, one_b1, one_b2, b1, b2, c1, c2, eps)
                continue
            for t in range(d):
                g[t] = 0
            for s in range(nb):
                yv = y[s, c, u]
                if yv == 0:
                    continue
                for t in range(d):
                    g[t] += yv * dq[c, s, t]
            for t in range(d):
                proj[c, u, t], m[c, u, t], v[c, u, t] = _adam1(proj[c, u, t], g[t], m[c, u, t], v[c, u, t], lr,
                                                               one_b1, one_b2, b1, b2, c1, c2, eps)


@jit(error_model="numpy")
def norm_train(z, gamma, beta, running_mean, running_var, one_m, m, unbias, eps, u_out, zhat_out, inv_out):
    """BatchNorm in training mode of ``z`` ``(B, F, H, W)``: the float32 expressions of
    :func:`spela_hw.conv.reference.norm_forward` per channel, the means summed in float64 (NumPy
    sums pairwise in float32: within float32 rounding); running statistics updated in place
    (``one_m`` = float32(1 - momentum), ``m`` = float32(momentum), ``unbias`` = float32(n / (n - 1)))."""
    nb, nf, h, w = z.shape
    n = nb * h * w
    for f in range(nf):
        s = 0.0
        for b in range(nb):
            for i in range(h):
                for j in range(w):
                    s += z[b, f, i, j]
        mean = np.float32(s / n)
        s = 0.0
        for b in range(nb):
            for i in range(h):
                for j in range(w):
                    d = np.float32(z[b, f, i, j] - mean)
                    s += np.float32(d * d)
        var = np.float32(s / n)
        inv = np.float32(np.float32(1) / np.sqrt(np.float32(var + eps)))
        inv_out[f] = inv
        for b in range(nb):
            for i in range(h):
                for j in range(w):
                    zh = np.float32(np.float32(z[b, f, i, j] - mean) * inv)
                    zhat_out[b, f, i, j] = zh
                    u_out[b, f, i, j] = np.float32(zh * gamma[f]) + beta[f]
        running_mean[f] = np.float32(running_mean[f] * one_m) + np.float32(m * mean)
        running_var[f] = np.float32(running_var[f] * one_m) + np.float32(np.float32(m * var) * unbias)


@jit(error_model="numpy")
def norm_train_backward(du, zhat, inv, gamma, dz_out, dgamma_out, dbeta_out):
    """The backward pass of :func:`norm_train` (:func:`spela_hw.conv.reference.norm_backward`'s
    float32 expressions, sums in float64)."""
    nb, nf, h, w = du.shape
    n = np.float32(nb * h * w)
    for f in range(nf):
        sg = 0.0
        sb = 0.0
        s1 = 0.0
        s2 = 0.0
        g = gamma[f]
        for b in range(nb):
            for i in range(h):
                for j in range(w):
                    d = du[b, f, i, j]
                    zh = zhat[b, f, i, j]
                    dzh = np.float32(d * g)
                    sg += np.float32(d * zh)
                    sb += d
                    s1 += dzh
                    s2 += np.float32(dzh * zh)
        dgamma_out[f] = sg
        dbeta_out[f] = sb
        t1 = np.float32(s1)
        t2 = np.float32(s2)
        c = np.float32(inv[f] / n)
        for b in range(nb):
            for i in range(h):
                for j in range(w):
                    zh = zhat[b, f, i, j]
                    dzh = np.float32(du[b, f, i, j] * g)
                    dz_out[b, f, i, j] = c * np.float32(np.float32(np.float32(n * dzh) - t1) - np.float32(zh * t2))


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


@jit(error_model="numpy", inline="always")
def _adam1(p, g, m, v, lr, one_b1, one_b2, b1, b2, c1, c2, eps):
    """One element of :func:`adam`: ``(p, m, v)`` after the step."""
    mi = np.float32(np.float32(m * b1) + np.float32(one_b1 * g))
    vi = np.float32(np.float32(v * b2) + np.float32(np.float32(one_b2 * g) * g))
    den = np.float32(np.float32(np.sqrt(np.float32(vi / c2))) + eps)
    return np.float32(p - np.float32(np.float32(lr * np.float32(mi / c1)) / den)), mi, vi


@jit(error_model="numpy")  # division by zero gives inf as in NumPy (no check: the loop vectorises)
def adam(param, grad, m, v, lr, one_b1, one_b2, b1, b2, c1, c2, eps):
    """One Adam step in place on flat float32 arrays, NumPy's expression of
    :func:`spela_hw.conv.model.optimizer_step` element by element (``one_b1`` is
    ``float32(1 - beta1)``, ``c1`` ``float32(1 - beta1**t)``, ...)."""
    for i in range(param.shape[0]):
        param[i], m[i], v[i] = _adam1(param[i], grad[i], m[i], v[i], lr, one_b1, one_b2, b1, b2, c1, c2, eps)
