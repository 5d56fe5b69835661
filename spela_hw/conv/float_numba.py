"""The numba backend of the float32 conv SPELA step: :func:`spela_hw.conv.model.conv_spela_step`
with the kernels of :mod:`spela_hw._kernels.conv_float` where NumPy is slow, one block at a time.

The products stay the reference's: im2col and BLAS for the convolution and its weight gradient,
einsum (BLAS) for the projection loss and its gradients (loop kernels were slower at batch 64
and no faster at batch 1), BatchNorm its NumPy. LeakyReLU with the max-pool and their backward
pass, and Adam run on kernels: Adam on the 560 k projection values of ``c32k5p2-c64k5p2-d10``
took a third of a per-sample step in NumPy's seven passes over them. Same recipe and Adam's
float32 expression element by element, so results equal the reference's up to the order of the
kernels' few float32 operations (``tests/test_conv_kernels.py``). Other optimisers and the
``pooled`` read-out run the reference's NumPy.
"""

from __future__ import annotations

import numpy as np

from .._kernels import conv_float as K
from . import model as M
from .reference import conv_backward, conv_forward, norm_backward, norm_forward

__all__ = ["block_step", "supported"]

F32 = np.float32


def supported(state) -> bool:
    """Whether the kernels cover this network's blocks (the projection read-outs)."""
    return all(st.projection is not None for st in state.blocks)


def _step(state, name: str, param: np.ndarray, grad: np.ndarray, optimizer, lr: float) -> None:
    """:func:`spela_hw.conv.model.optimizer_step`, Adam on the kernel."""
    if optimizer.kind != "adam" or not param.flags.c_contiguous:
        M.optimizer_step(state, name, param, grad, optimizer, lr)
        return
    m = state.optim.setdefault(name + ".m", np.zeros_like(param))
    v = state.optim.setdefault(name + ".v", np.zeros_like(param))
    t = state.optim[name + ".t"] = state.optim.get(name + ".t", 0) + 1
    K.adam(param.reshape(-1), np.ascontiguousarray(grad, F32).reshape(-1), m.reshape(-1), v.reshape(-1), F32(lr),
           F32(1 - optimizer.beta1), F32(1 - optimizer.beta2), F32(optimizer.beta1), F32(optimizer.beta2),
           F32(1 - optimizer.beta1**t), F32(1 - optimizer.beta2**t), F32(optimizer.eps))


def block_step(state, k: int, x: np.ndarray, labels: np.ndarray, optimizer, lr: float, train_projection: bool):
    """One SPELA step of conv block ``k`` on ``x`` ``(B, C, H, W)``: ``(y, loss)``, ``y`` its
    output before the step."""
    st, blk, slope = state.blocks[k], state.spec.conv_blocks[k], state.spec.slope
    x = np.asarray(x, F32)
    pool = blk.pool
    z, cols = conv_forward(st.w, st.b, x, blk.stride, blk.padding)
    nb, nf, hc, wc = z.shape
    u, ncache = norm_forward(z, st.gamma, st.beta, st.running_mean, st.running_var, True) if st.gamma is not None \
        else (z, None)
    u = np.ascontiguousarray(u, F32)
    a = np.empty_like(u)
    y = np.empty((nb, nf, hc // pool, wc // pool), F32)
    idx = np.empty(y.shape, np.int64)
    K.leaky_pool(u, slope, pool, a, y, idx)
    loss, dy, dproj = M.block_loss_grad(st, y, labels, train_projection)
    du = np.zeros_like(u)
    K.pool_leaky_backward(np.ascontiguousarray(dy, F32), idx, pool, u, slope, du)
    grads = {}
    if st.gamma is not None:
        du, grads["gamma"], grads["beta"] = norm_backward(du, ncache, st.gamma)
        du = np.ascontiguousarray(du, F32)
    grads["w"], grads["b"], _ = conv_backward(du, cols, st.w)
    for name, p in st.params().items():
        _step(state, f"{k}.{name}", p, grads[name], optimizer, lr)
    if train_projection:
        _step(state, f"{k}.projection", st.projection, dproj, optimizer, lr)
    return y, float(loss)
