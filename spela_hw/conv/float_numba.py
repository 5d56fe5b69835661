"""The numba backend of the float32 conv SPELA step: :func:`spela_hw.conv.model.block_step` with
the kernels of :mod:`spela_hw._kernels.conv_float` where NumPy is slow.

The products stay the reference's: im2col and BLAS for the convolution and its weight gradient,
and from ``LOSS_KERNEL_MAX + 1`` samples einsum (BLAS) for the projection loss and its gradients
(a loop kernel was ten times slower at batch 64) and NumPy's BatchNorm. LeakyReLU with the
max-pool and their backward pass and Adam always run on kernels (Adam on the 560 k projection
values of ``c32k5p2-c64k5p2-d10`` took a third of a per-sample step in NumPy's seven passes).
Smaller steps of projection read-outs (:func:`_small`) also run the projection loss and
BatchNorm on kernels, where einsum's planning and NumPy's many small passes cost more than the
arithmetic, with the gradient for the maps one stacked matmul; the kernels index rows in place
(a view per row of 100 values cost more in atomic reference counts than its products).
From ``LOSS_KERNEL_MAX + 1`` samples the same bits as the reference (the kernels run its float32
operations element by element), below within float32 rounding (sums in loop order;
``tests/test_conv_kernels.py``). Optimisers other than Adam and the ``pooled`` read-out's loss
run the reference's NumPy (pooled blocks: the same bits at every batch size).
"""

from __future__ import annotations

import numpy as np

from .._kernels import conv_float as K
from . import model as M
from .reference import BN_EPS, BN_MOMENTUM, conv_backward, conv_forward, norm_backward, norm_forward

__all__ = ["block_step"]

F32 = np.float32
#: Batches of at most this many samples compute the projection loss on the kernel.
LOSS_KERNEL_MAX = 4


def _adam_args(state, name: str, param: np.ndarray, optimizer, lr: float) -> tuple:
    """The moments of ``param`` (created on first use), its step count advanced, and Adam's
    float32 constants as the kernels take them (those of :func:`~spela_hw.conv.model.optimizer_step`)."""
    if name + ".m" not in state.optim:
        state.optim[name + ".m"], state.optim[name + ".v"] = np.zeros_like(param), np.zeros_like(param)
    t = state.optim[name + ".t"] = state.optim.get(name + ".t", 0) + 1
    return (state.optim[name + ".m"], state.optim[name + ".v"], F32(lr), F32(1 - optimizer.beta1),
            F32(1 - optimizer.beta2), F32(optimizer.beta1), F32(optimizer.beta2), F32(1 - optimizer.beta1**t),
            F32(1 - optimizer.beta2**t), F32(optimizer.eps))


def _step(state, name: str, param: np.ndarray, grad: np.ndarray, optimizer, lr: float) -> None:
    """:func:`spela_hw.conv.model.optimizer_step`, Adam on the kernel."""
    if optimizer.kind != "adam" or not param.flags.c_contiguous:
        M.optimizer_step(state, name, param, grad, optimizer, lr)
        return
    m, v, *consts = _adam_args(state, name, param, optimizer, lr)
    K.adam(param.reshape(-1), np.ascontiguousarray(grad, F32).reshape(-1), m.reshape(-1), v.reshape(-1), *consts)


def _small(st, nb: int) -> bool:
    """Whether block ``st``'s step on ``nb`` samples runs the small-batch kernels (within float32
    rounding of the reference): projection read-outs up to ``LOSS_KERNEL_MAX`` samples. Pooled
    blocks keep the reference's bits at every batch size."""
    return nb <= LOSS_KERNEL_MAX and st.projection is not None


def _norm(st, z):
    """BatchNorm in training mode: :func:`~spela_hw.conv.reference.norm_forward`, or a kernel
    for :func:`_small` steps (NumPy's many small passes cost more than the arithmetic of a
    sample's maps; its sums in another order: within float32 rounding)."""
    if not _small(st, len(z)):
        return norm_forward(z, st.gamma, st.beta, st.running_mean, st.running_var, True)
    n = z.shape[0] * z.shape[2] * z.shape[3]
    u, zhat, inv = np.empty_like(z), np.empty_like(z), np.empty(z.shape[1], F32)
    K.norm_train(np.ascontiguousarray(z, F32), st.gamma, st.beta, st.running_mean, st.running_var, F32(1 - BN_MOMENTUM),
                 F32(BN_MOMENTUM), F32(n / max(n - 1, 1)), F32(BN_EPS), u, zhat, inv)
    return u, (zhat, inv)


def _norm_backward(st, du, cache):
    """:func:`~spela_hw.conv.reference.norm_backward`, on a kernel for :func:`_small` steps."""
    if not _small(st, len(du)):
        dz, dgamma, dbeta = norm_backward(du, cache, st.gamma)
        return np.ascontiguousarray(dz, F32), dgamma, dbeta
    zhat, inv = cache
    dz, dgamma, dbeta = np.empty_like(zhat), np.empty_like(inv), np.empty_like(inv)
    K.norm_train_backward(np.ascontiguousarray(du, F32), zhat, inv, st.gamma, dz, dgamma, dbeta)
    return dz, dgamma, dbeta


def block_step(state, k: int, x: np.ndarray, labels: np.ndarray, optimizer, lr: float):
    """Conv block ``k``'s SPELA step on ``x`` ``(B, C, H, W)``: its forward pass now, and
    ``(y, update)``: ``y`` its output before the step, ``update()`` the step (returns the loss;
    touches block ``k``'s state only, :mod:`spela_hw.conv.updates`)."""
    st, blk, slope = state.blocks[k], state.spec.conv_blocks[k], state.spec.slope
    train_projection = state.spec.conv_target == "projection"
    x = np.asarray(x, F32)
    pool = blk.pool
    z, cols = conv_forward(st.w, st.b, x, blk.stride, blk.padding)
    nb, nf, hc, wc = z.shape
    u, ncache = _norm(st, z) if st.gamma is not None else (z, None)
    u = np.ascontiguousarray(u, F32)
    a = np.empty_like(u)
    y = np.empty((nb, nf, hc // pool, wc // pool), F32)
    idx = np.empty(y.shape, np.int64)
    K.leaky_pool(u, slope, pool, a, y, idx)

    def update() -> float:
        fused = False
        if _small(st, nb):
            ys = y.reshape(nb, nf, -1)
            dq = np.empty((nf, nb, st.projection.shape[2]), F32)
            loss = K.projection_loss_grad(ys, st.projection, st.targets, st.groups,
                                          np.ascontiguousarray(labels, np.int64), np.empty(dq.shape[2], F32), dq)
            dy = np.matmul(dq, st.projection.transpose(0, 2, 1)).transpose(1, 0, 2)  # before the step
            fused = train_projection and optimizer.kind == "adam"
            if fused:  # the projections' gradient goes straight into their Adam step
                K.projection_adam(ys, dq, st.projection,
                                  *_adam_args(state, f"{k}.projection", st.projection, optimizer, lr),
                                  np.empty(dq.shape[2], F32))
            elif train_projection:
                dproj = np.einsum("cbs,cbd->csd", ys.transpose(1, 0, 2), dq, optimize=True)
        else:
            loss, dy, dproj = M.block_loss_grad(st, y, labels, train_projection)
        du = np.zeros_like(u)
        K.pool_leaky_backward(np.ascontiguousarray(dy, F32).reshape(y.shape), idx, pool, u, slope, du)
        grads = {}
        if st.gamma is not None:
            du, grads["gamma"], grads["beta"] = _norm_backward(st, du, ncache)
        grads["w"], grads["b"], _ = conv_backward(du, cols, st.w)
        for name, p in st.params().items():
            _step(state, f"{k}.{name}", p, grads[name], optimizer, lr)
        if train_projection and not fused:
            _step(state, f"{k}.projection", st.projection, dproj, optimizer, lr)
        return float(loss)

    return y, update
