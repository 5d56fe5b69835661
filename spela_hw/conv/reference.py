"""Float32 NumPy reference of the conv block: the executable specification of its arithmetic.

A block maps ``x`` ``(B, C_in, H, W)`` to ``y = pool(leaky_relu(norm(conv(x))))``. The
convolution is im2col + one matrix product (``cols`` ``(B, H_c W_c, C_in K K)``, columns ordered
channel-major then kernel row then kernel column, the layout of a weight ``(F, C_in, K, K)``
flattened). Every ``*_backward`` returns the gradients of its inputs and parameters given the
gradient of its output; SPELA calls them inside one block only (its gradient stops at the block's
input), backprop chains them through the whole network.

BatchNorm in training uses the batch's statistics (biased variance) and updates running
statistics (momentum 0.1, unbiased variance, PyTorch's convention); at inference it is one
per-channel scale and shift folded from the running statistics (:func:`folded_norm`), which is
what an accelerator would implement.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BN_EPS",
    "BN_MOMENTUM",
    "col2im",
    "conv_backward",
    "conv_forward",
    "folded_norm",
    "im2col",
    "leaky_relu",
    "norm_backward",
    "norm_forward",
    "pool_backward",
    "pool_forward",
]

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
F32 = np.float32


def im2col(x: np.ndarray, kernel: int, stride: int, padding: int) -> tuple[np.ndarray, int, int]:
    """Patches of ``x`` ``(B, C, H, W)`` as rows: ``(B, H_c W_c, C K K)`` and ``(H_c, W_c)``."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]  # (B, C, Hc, Wc, K, K)
    b, c, hc, wc = win.shape[:4]
    cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(b, hc * wc, c * kernel * kernel)
    return cols, hc, wc


def col2im(dcols: np.ndarray, x_shape, kernel: int, stride: int, padding: int, hc: int, wc: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: patch gradients summed back into an input-shaped array."""
    b, c, h, w = x_shape
    dx = np.zeros((b, c, h + 2 * padding, w + 2 * padding), dcols.dtype)
    d = dcols.reshape(b, hc, wc, c, kernel, kernel)
    for i in range(kernel):
        for j in range(kernel):
            dx[:, :, i:i + stride * hc:stride, j:j + stride * wc:stride] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx[:, :, padding:padding + h, padding:padding + w] if padding else dx


def conv_forward(w: np.ndarray, b: np.ndarray, x: np.ndarray, stride: int, padding: int):
    """Convolution of ``x`` by ``w`` ``(F, C, K, K)`` plus ``b``: ``(z (B, F, H_c, W_c), cols)``."""
    f, _, k, _ = w.shape
    cols, hc, wc = im2col(x, k, stride, padding)
    # one 2-D product: NumPy's stacked matmul does not reach BLAS's speed
    z = (cols.reshape(-1, cols.shape[-1]) @ w.reshape(f, -1).T + b).reshape(len(x), hc * wc, f)
    return np.ascontiguousarray(z.transpose(0, 2, 1)).reshape(len(x), f, hc, wc), cols


def conv_backward(dz: np.ndarray, cols: np.ndarray, w: np.ndarray, x_shape=None, stride=1, padding=0):
    """``(dw, db, dx)`` of a convolution; ``dx`` only when ``x_shape`` is given (backprop)."""
    bsz, f, hc, wc = dz.shape
    d2 = dz.reshape(bsz, f, hc * wc).transpose(0, 2, 1).reshape(-1, f)  # (B HcWc, F)
    dw = (d2.T @ cols.reshape(-1, cols.shape[-1])).reshape(w.shape)
    db = d2.sum(axis=0)
    dx = None
    if x_shape is not None:
        dcols = d2 @ w.reshape(f, -1)
        dx = col2im(dcols, x_shape, w.shape[2], stride, padding, hc, wc)
    return dw, db, dx


def norm_forward(z, gamma, beta, running_mean, running_var, training: bool):
    """BatchNorm of ``z`` ``(B, F, H, W)`` per channel: ``(u, cache)``.

    Training: batch statistics, and ``running_mean`` / ``running_var`` updated in place.
    Inference: the folded scale and shift (:func:`folded_norm`).
    """
    if not training:
        scale, shift = folded_norm(gamma, beta, running_mean, running_var)
        return z * scale[None, :, None, None] + shift[None, :, None, None], None
    n = z.shape[0] * z.shape[2] * z.shape[3]
    mean = z.mean(axis=(0, 2, 3), dtype=F32)
    var = ((z - mean[None, :, None, None]) ** 2).mean(axis=(0, 2, 3), dtype=F32)
    inv = (1.0 / np.sqrt(var + F32(BN_EPS))).astype(F32)
    zhat = (z - mean[None, :, None, None]) * inv[None, :, None, None]
    running_mean *= F32(1 - BN_MOMENTUM)
    running_mean += F32(BN_MOMENTUM) * mean
    running_var *= F32(1 - BN_MOMENTUM)
    running_var += F32(BN_MOMENTUM) * var * F32(n / max(n - 1, 1))
    return zhat * gamma[None, :, None, None] + beta[None, :, None, None], (zhat, inv)


def norm_backward(du, cache, gamma):
    """``(dz, dgamma, dbeta)`` of BatchNorm in training mode (batch statistics)."""
    zhat, inv = cache
    n = du.shape[0] * du.shape[2] * du.shape[3]
    dgamma = (du * zhat).sum(axis=(0, 2, 3))
    dbeta = du.sum(axis=(0, 2, 3))
    dzhat = du * gamma[None, :, None, None]
    dz = (inv[None, :, None, None] / F32(n)) * (
        F32(n) * dzhat - dzhat.sum(axis=(0, 2, 3))[None, :, None, None]
        - zhat * (dzhat * zhat).sum(axis=(0, 2, 3))[None, :, None, None])
    return dz.astype(F32), dgamma, dbeta


def folded_norm(gamma, beta, running_mean, running_var):
    """BatchNorm at inference as one per-channel ``(scale, shift)``: ``u = z * scale + shift``."""
    scale = (gamma / np.sqrt(running_var + F32(BN_EPS))).astype(F32)
    return scale, (beta - running_mean * scale).astype(F32)


def leaky_relu(u: np.ndarray, slope: float) -> np.ndarray:
    return np.where(u > 0, u, u * F32(slope)).astype(F32)


def pool_forward(a: np.ndarray, pool: int):
    """Max-pool ``pool x pool`` with stride ``pool`` (odd edges dropped): ``(y, argmax)``;
    ties go to the first element of the window in row-major order."""
    if pool == 1:
        return a, None
    b, c, h, w = a.shape
    hp, wp = h // pool, w // pool
    win = a[:, :, :hp * pool, :wp * pool].reshape(b, c, hp, pool, wp, pool).transpose(0, 1, 2, 4, 3, 5)
    win = win.reshape(b, c, hp, wp, pool * pool)
    idx = win.argmax(axis=-1)
    return np.take_along_axis(win, idx[..., None], -1)[..., 0], idx


def pool_backward(dy: np.ndarray, idx, pool: int, shape) -> np.ndarray:
    """Gradient of :func:`pool_forward`: ``dy`` routed to each window's maximum."""
    if pool == 1:
        return dy
    b, c, _h, _w = shape
    hp, wp = dy.shape[2], dy.shape[3]
    win = np.zeros((b, c, hp, wp, pool * pool), dy.dtype)
    np.put_along_axis(win, idx[..., None], dy[..., None], -1)
    win = win.reshape(b, c, hp, wp, pool, pool).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, hp * pool, wp * pool)
    da = np.zeros(shape, dy.dtype)
    da[:, :, :hp * pool, :wp * pool] = win
    return da
