"""The state of a conv network and its SPELA and backprop training steps (float32 reference).

SPELA: every conv block steps on its own loss (its gradient stops at the block's input) and
passes its pre-update output on, detached; the dense layers that follow are the package's dense
SPELA layers (:func:`spela_hw.rules.spela.train_batch` on the flattened map), so they are the
same code, fixed point included, as an MLP's. Backprop: the same layers, softmax cross-entropy
at the last dense layer (linear), the gradient chained through every layer.

Conv-block loss (``conv_target``, see :mod:`spela_hw.conv.description`): with a projection,
channel ``c``'s flattened map ``z_c`` (``S = H W`` values) gives ``q_c = z_c P_c`` and the loss is
``mean over batch and channels of (1 - cos(q_c, t_c[g_c(y)]))^2``, ``g_c`` the channel's class
grouping and ``t_c`` its group vectors (a simplex in ``R^d``); read-out
``argmax_j mean_c cos(q_c, t_c[g_c(j)])``. ``pooled``: the channel means ``m`` ``(C,)`` against
one class vector per class in ``R^C``, the same loss; read-out ``argmax_j v_j . m``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..classvectors import class_vectors
from ..errors import ConfigError
from ..specs import NetworkSpec
from .description import MAX_GROUPS, ConvNetSpec
from .reference import (
    conv_backward,
    conv_forward,
    leaky_relu,
    norm_backward,
    norm_forward,
    pool_backward,
    pool_forward,
)
from .updates import BlockUpdates

__all__ = [
    "ConvState",
    "backprop_step",
    "block_forward",
    "block_step",
    "conv_spela_step",
    "dense_network_spec",
    "draw_groups",
    "init_conv_state",
    "predict_blocks",
]

F32 = np.float32


@dataclass
class BlockState:
    """One conv block's parameters (float32) and, for SPELA, its read-out targets."""

    w: np.ndarray
    b: np.ndarray
    gamma: np.ndarray | None = None
    beta: np.ndarray | None = None
    running_mean: np.ndarray | None = None
    running_var: np.ndarray | None = None
    projection: np.ndarray | None = None  # (F, S, d): trainable or fixed
    groups: np.ndarray | None = None  # (F, N) int64: class -> group per channel
    targets: np.ndarray | None = None  # (F, G, d) unit group vectors (zero-padded rows)
    vectors: np.ndarray | None = None  # (N, F) pooled class vectors

    def params(self) -> dict:
        """Trainable arrays by name (what an optimiser steps)."""
        out = {"w": self.w, "b": self.b}
        if self.gamma is not None:
            out["gamma"], out["beta"] = self.gamma, self.beta
        return out


@dataclass
class ConvState:
    spec: ConvNetSpec
    rule: str  # "spela" or "backprop"
    blocks: list
    dense: object  # NetworkState (SPELA) or list of (w, b) float32 pairs (backprop)
    seed: int
    optim: dict = field(default_factory=dict)
    step: int = 0
    fixed: list | None = None  # fixed-point blocks (spela_hw.conv.fixed), None in float32
    rounding_seed: int = 0
    backend: str = "reference"  # "numba": SPELA's float32 conv steps on kernels (conv.float_numba)


def dense_network_spec(spec: ConvNetSpec) -> NetworkSpec:
    """The dense layers as the package's :class:`NetworkSpec` (the flattened map is its input)."""
    dims = (spec.flat_features, *(d.units for d in spec.dense_layers))
    return NetworkSpec(dims, n_classes=spec.n_classes, activation="leaky_relu", slope=float(spec.slope))


def draw_groups(n_channels: int, n_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: its number of groups ``n_c`` (2..min(9, N)) and a class -> group map that uses
    every group (redrawn until it does), as the paper's CNN code draws them."""
    hi = min(MAX_GROUPS, n_classes)
    counts = rng.integers(2, hi + 1, size=n_channels)
    groups = np.empty((n_channels, n_classes), np.int64)
    for c, n_c in enumerate(counts):
        while True:
            g = rng.integers(0, n_c, size=n_classes)
            if len(np.unique(g)) == n_c:
                break
        groups[c] = g
    return counts, groups


def _block_seed(seed: int, k: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xC0DE, k])


def centred_class_vectors(n_classes: int, dim: int, seed: int, layer: int) -> np.ndarray:
    """Class vectors ``(N, dim)`` in the zero-sum subspace of ``R^dim``: the package's class
    vectors of dimension ``dim - 1`` in an orthonormal basis of that subspace (same cosines)."""
    if dim < 2:
        raise ConfigError("filters", f"a pooled read-out needs at least 2 channels, got {dim}")
    centring = np.eye(dim) - 1.0 / dim
    q, _ = np.linalg.qr(centring[:, :-1])  # orthonormal columns spanning the zero-sum vectors
    return class_vectors(n_classes, dim - 1, seed, layer=layer) @ q.T


def init_conv_state(spec: ConvNetSpec, rule: str, seed: int, dense_state=None) -> ConvState:
    """Fresh float32 parameters: PyTorch's default conv init (U(+-1/sqrt(fan_in)) for weights and
    biases, i.e. kaiming_uniform with a = sqrt(5)), BatchNorm ``gamma = 1, beta = 0``, projections
    N(0, 1), groups and targets from ``seed``. ``dense_state``: the dense layers' state (SPELA),
    built by the caller; backprop's dense layers are made here (He-uniform, as the MLP's)."""
    blocks = []
    for k, (blk, shp) in enumerate(zip(spec.conv_blocks, spec.shapes())):
        rng = _block_seed(seed, k)
        cin = shp["input"][0]
        f, hp, wp = shp["output"]
        bound = 1.0 / math.sqrt(cin * blk.kernel**2)
        st = BlockState(w=rng.uniform(-bound, bound, (f, cin, blk.kernel, blk.kernel)).astype(F32),
                        b=rng.uniform(-bound, bound, f).astype(F32))
        if spec.norm == "batch":
            st.gamma, st.beta = np.ones(f, F32), np.zeros(f, F32)
            st.running_mean, st.running_var = np.zeros(f, F32), np.ones(f, F32)
        if rule == "spela":
            _init_targets(st, spec, k, f, hp * wp, seed)
        blocks.append(st)
    if rule == "backprop" and dense_state is None:
        rng = _block_seed(seed, 1000)
        dense_state = []
        for m, n in dense_network_spec(spec).layer_shapes():
            bound = math.sqrt(6.0 / n)
            dense_state.append((rng.uniform(-bound, bound, (m, n)).astype(F32),
                                rng.uniform(-1 / math.sqrt(n), 1 / math.sqrt(n), m).astype(F32)))
    return ConvState(spec, rule, blocks, dense_state, int(seed))


def _init_targets(st: BlockState, spec: ConvNetSpec, k: int, f: int, s: int, seed: int) -> None:
    n = spec.n_classes
    if spec.conv_target == "pooled":
        st.vectors = centred_class_vectors(n, f, seed, 1000 + k).astype(F32)
        return
    rng = _block_seed(seed, 100 + k)
    d = spec.projection_dim
    st.projection = rng.standard_normal((f, s, d)).astype(F32)
    counts, st.groups = draw_groups(f, n, rng)
    st.targets = np.zeros((f, int(counts.max()), d), F32)
    for c, n_c in enumerate(counts):
        st.targets[c, :n_c] = class_vectors(int(n_c), d, seed, layer=10_000 * (k + 1) + c, method="simplex")


# -- forward ---------------------------------------------------------------------------------
def block_forward(st: BlockState, blk, x: np.ndarray, slope: float, training: bool):
    """One block: ``(y, cache)``; the cache holds what its backward pass needs."""
    z, cols = conv_forward(st.w, st.b, x, blk.stride, blk.padding)
    ncache = None
    if st.gamma is not None:
        u, ncache = norm_forward(z, st.gamma, st.beta, st.running_mean, st.running_var, training)
    else:
        u = z
    a = leaky_relu(u, slope)
    y, idx = pool_forward(a, blk.pool)
    return y, (x.shape, cols, ncache, u, idx)


def block_backward(st: BlockState, blk, dy: np.ndarray, cache, slope: float, need_dx: bool):
    """Gradients ``(grads by parameter name, dx or None)`` of one block."""
    x_shape, cols, ncache, u, idx = cache
    da = pool_backward(dy, idx, blk.pool, u.shape)
    du = (da * np.where(u > 0, F32(1), F32(slope))).astype(F32)
    grads = {}
    if st.gamma is not None:
        dz, grads["gamma"], grads["beta"] = norm_backward(du, ncache, st.gamma)
    else:
        dz = du
    grads["w"], grads["b"], dx = conv_backward(dz, cols, st.w, x_shape if need_dx else None,
                                               blk.stride, blk.padding)
    return grads, dx


# -- SPELA's conv-block loss ------------------------------------------------------------------
def _projected(st: BlockState, y: np.ndarray) -> np.ndarray:
    """``q`` ``(C, B, d)``: each channel's flattened map times its projection."""
    ys = y.reshape(y.shape[0], y.shape[1], -1).transpose(1, 0, 2)  # (C, B, S)
    return _bmm(ys, st.projection), ys


def _centred_means(y: np.ndarray) -> np.ndarray:
    """Channel means ``(B, C)`` minus their mean over channels: LeakyReLU outputs are almost all
    positive, and a positive vector cannot point at class vectors with negative entries."""
    m = y.mean(axis=(2, 3))
    return m - m.mean(axis=1, keepdims=True)


def _bmm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel products ``(C, B, S) x (C, S, d)`` (einsum: far faster than stacked matmul)."""
    return np.einsum("cbs,csd->cbd", a, b, optimize=True)


def block_loss_grad(st: BlockState, y: np.ndarray, labels: np.ndarray, train_projection: bool):
    """SPELA's loss of one block's output ``y`` and its gradient: ``(loss, dy, dprojection)``."""
    bsz, c = y.shape[:2]
    if st.vectors is not None:  # pooled: centred channel means against class vectors in R^C
        m = _centred_means(y)
        nrm = np.maximum(np.sqrt((m * m).sum(axis=1)), F32(1e-12))
        v = st.vectors[labels]
        cos = (m * v).sum(axis=1) / nrm
        dcos = -2.0 * (1.0 - cos) / bsz
        dm = dcos[:, None] * (v - cos[:, None] * m / nrm[:, None]) / nrm[:, None]
        dm -= dm.mean(axis=1, keepdims=True)  # through the centring
        dy = np.broadcast_to((dm / (y.shape[2] * y.shape[3]))[:, :, None, None], y.shape)
        return float(np.mean((1 - cos) ** 2)), dy.astype(F32), None
    q, ys = _projected(st, y)  # (C, B, d), (C, B, S)
    nrm = np.maximum(np.sqrt((q * q).sum(axis=2)), F32(1e-12))  # (C, B)
    t = st.targets[np.arange(c)[:, None], st.groups[:, labels]]  # (C, B, d)
    cos = (q * t).sum(axis=2) / nrm
    dcos = -2.0 * (1.0 - cos) / (bsz * c)
    dq = (dcos / nrm)[:, :, None] * (t - (cos / nrm)[:, :, None] * q)
    dq = dq.astype(F32)
    dys = np.einsum("cbd,csd->cbs", dq, st.projection, optimize=True)  # (C, B, S)
    dproj = np.einsum("cbs,cbd->csd", ys, dq, optimize=True) if train_projection else None
    return float(np.mean((1 - cos) ** 2)), dys.transpose(1, 0, 2).reshape(y.shape), dproj


def block_scores(st: BlockState, y: np.ndarray) -> np.ndarray:
    """Read-out scores ``(B, N)`` of a block's output (mean cosine over channels, or ``v . m``)."""
    if st.vectors is not None:
        return _centred_means(y) @ st.vectors.T
    q, _ = _projected(st, y)
    qh = q / np.maximum(np.sqrt((q * q).sum(axis=2, keepdims=True)), F32(1e-12))
    cg = np.einsum("cbd,cgd->cbg", qh, st.targets, optimize=True)  # (C, B, G)
    # class j's score in channel c is the cosine of its group g_c(j)
    per_class = np.take_along_axis(cg, np.broadcast_to(st.groups[:, None, :], (cg.shape[0], cg.shape[1],
                                                                                st.groups.shape[1])), axis=2)
    return per_class.mean(axis=0)  # (B, N)


# -- optimisers of the conv blocks (float32; the dense SPELA layers keep their own SGD) -----------
def optimizer_step(state: ConvState, name: str, param: np.ndarray, grad: np.ndarray, optimizer, lr: float) -> None:
    """One step of ``param`` (in place) by plain SGD or Adam; Adam's moments live in ``state.optim``."""
    if optimizer.kind == "sgd":
        if optimizer.momentum:
            u = state.optim.setdefault(name, np.zeros_like(param))
            u *= F32(optimizer.momentum)
            u += grad
            grad = u
        param -= F32(lr) * grad.astype(F32)
        return
    m = state.optim.setdefault(name + ".m", np.zeros_like(param))
    v = state.optim.setdefault(name + ".v", np.zeros_like(param))
    t = state.optim[name + ".t"] = state.optim.get(name + ".t", 0) + 1
    m *= F32(optimizer.beta1)
    m += F32(1 - optimizer.beta1) * grad
    v *= F32(optimizer.beta2)
    v += F32(1 - optimizer.beta2) * grad * grad
    mhat = m / F32(1 - optimizer.beta1**t)
    vhat = v / F32(1 - optimizer.beta2**t)
    param -= (F32(lr) * mhat / (np.sqrt(vhat) + F32(optimizer.eps))).astype(F32)


def to_images(spec: ConvNetSpec, x: np.ndarray) -> np.ndarray:
    """Rows of flattened images ``(B, C H W)`` as ``(B, C, H, W)`` float32."""
    return np.ascontiguousarray(x, F32).reshape(len(x), *spec.input_shape)


def block_step(state: ConvState, k: int, x: np.ndarray, labels: np.ndarray, optimizer, lr: float):
    """Conv block ``k``'s SPELA step in NumPy: its forward pass now, and ``(y, update)``: ``y``
    its output before the step, ``update()`` the step (returns the loss; touches block ``k``'s
    state only, :mod:`spela_hw.conv.updates`)."""
    st, blk = state.blocks[k], state.spec.conv_blocks[k]
    y, cache = block_forward(st, blk, x, state.spec.slope, training=True)

    def update() -> float:
        loss, dy, dproj = block_loss_grad(st, y, labels, state.spec.conv_target == "projection")
        grads, _ = block_backward(st, blk, dy, cache, state.spec.slope, need_dx=False)
        for name, p in st.params().items():
            optimizer_step(state, f"{k}.{name}", p, grads[name], optimizer, lr)
        if dproj is not None:
            optimizer_step(state, f"{k}.projection", st.projection, dproj, optimizer, lr)
        return float(loss)

    return y, update


def conv_spela_step(state: ConvState, x: np.ndarray, labels: np.ndarray, optimizer, lr: float,
                    updates: BlockUpdates) -> np.ndarray:
    """One SPELA step of every conv block on the batch: each block's update goes to ``updates``
    (their losses come from its ``wait`` or ``join``); returns the last block's pre-update output
    (flattened, float32) for the dense layers."""
    step = block_step
    if state.backend == "numba":
        from . import float_numba

        step = float_numba.block_step
    for k in range(len(state.blocks)):
        updates.wait(k)  # this block's step on the previous batch
        x, update = step(state, k, x, labels, optimizer, lr)
        updates.submit(k, update)  # the next block's input is this block's output before its step
    state.step += 1
    return x.reshape(len(x), -1)


def forward_blocks(state: ConvState, x: np.ndarray, upto: int | None = None) -> list:
    """Inference outputs of conv blocks ``0..upto`` (BatchNorm folded)."""
    outs = []
    for st, blk in list(zip(state.blocks, state.spec.conv_blocks))[:None if upto is None else upto + 1]:
        x, _ = block_forward(st, blk, x, state.spec.slope, training=False)
        outs.append(x)
    return outs


def predict_blocks(state: ConvState, x: np.ndarray) -> list:
    """Predicted class indices at every conv block's read-out (SPELA)."""
    return [np.argmax(block_scores(st, y), axis=1) for st, y in zip(state.blocks, forward_blocks(state, x))]


# -- backprop ----------------------------------------------------------------------------------
def backprop_step(state: ConvState, x: np.ndarray, labels: np.ndarray, optimizer, lr: float) -> float:
    """One backprop step of the whole network (softmax cross-entropy, mean over the batch)."""
    spec = state.spec
    caches = []
    for st, blk in zip(state.blocks, spec.conv_blocks):
        x, cache = block_forward(st, blk, x, spec.slope, training=True)
        caches.append(cache)
    conv_shape = x.shape
    h = x.reshape(len(x), -1)
    dense_in, pre = [], []
    for j, (w, b) in enumerate(state.dense):
        dense_in.append(h)
        a = h @ w.T + b
        pre.append(a)
        h = a if j == len(state.dense) - 1 else leaky_relu(a, spec.slope)
    z = h.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    bsz = len(labels)
    loss = float(-np.mean(np.log(prob[np.arange(bsz), labels] + 1e-300)))
    g = prob
    g[np.arange(bsz), labels] -= 1.0
    g = (g / bsz).astype(F32)
    grads = []
    for j in range(len(state.dense) - 1, -1, -1):
        w, b = state.dense[j]
        grads.append((j, g.T @ dense_in[j], g.sum(axis=0)))
        g = g @ w
        if j > 0:
            g = (g * np.where(pre[j - 1] > 0, F32(1), F32(spec.slope))).astype(F32)
    dy = g.reshape(conv_shape)
    for j, dw, db in grads:
        w, b = state.dense[j]
        optimizer_step(state, f"dense{j}.w", w, dw, optimizer, lr)
        optimizer_step(state, f"dense{j}.b", b, db, optimizer, lr)
    for k in range(len(state.blocks) - 1, -1, -1):
        st, blk = state.blocks[k], spec.conv_blocks[k]
        bgrads, dy = block_backward(st, blk, dy, caches[k], spec.slope, need_dx=k > 0)
        for name, p in st.params().items():
            optimizer_step(state, f"{k}.{name}", p, bgrads[name], optimizer, lr)
    state.step += 1
    return loss


def backprop_logits(state: ConvState, x: np.ndarray) -> np.ndarray:
    """Inference logits of a backprop network."""
    h = forward_blocks(state, x)[-1] if state.blocks else x
    h = h.reshape(len(h), -1)
    for j, (w, b) in enumerate(state.dense):
        a = h @ w.T + b
        h = a if j == len(state.dense) - 1 else leaky_relu(a, state.spec.slope)
    return h
