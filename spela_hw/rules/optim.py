"""Optimisers shared by the rules: one weight step of one layer from its post-synaptic terms.

Every rule hands :func:`step_layer` the post-synaptic terms ``p`` ``(B, m)`` of a layer (scaled
by :func:`post_scale`) and the layer's input ``x`` ``(B, n)``; the increment is always built
from the outer-product sum ``p^T x``.

* **Plain SGD** (``Sgd`` without momentum): ``p = lr/B * delta`` and the backend's
  ``ops.update`` applies ``W += round(p^T x)`` (stochastic rounding to weight LSBs in fixed point,
  see :mod:`spela_hw.backends.reference`). This is the path of hardware learning on the fly.
* **SGD with momentum** and **Adam**: ``p = delta / B`` (a mean gradient: the optimiser owns
  the learning rate) and ``ops.grad_sum`` returns ``G = p^T x`` (exact integers in fixed point,
  with ``f_u + f_a`` fractional bits for weights and ``f_u`` for biases), turned into real
  float32 values. The optimiser state is float32, kept per layer in
  ``NetworkState.extra["optim"]``. Momentum (PyTorch's convention): ``u = mu u + G``,
  step ``lr u``. Adam (Kingma & Ba, bias-corrected): ``m = b1 m + (1 - b1) G``,
  ``v = b2 v + (1 - b2) G^2``, step ``lr m_hat / (sqrt(v_hat) + eps)``, with ``t`` counted per
  layer. ``delta`` is the descent direction (minus the gradient), so steps are added.
  In float32 the step is added to the weights. In fixed point it is converted to weight LSBs
  with 24 more fractional bits, ``T = round_nearest(step * 2**(f_w + 24))``, and rounded to one
  weight LSB with the update format's rounding (stochastic: ``(T + r) >> 24`` with ``r`` from
  :func:`spela_hw.rng.random_bits` with index ``i * fan_in + j`` for weights and
  ``fan_out * fan_in + i`` for biases; 24 random bits, not the 16-bit lanes of ``ops.update``'s
  SR unit), then saturated to the weight format. This
  part is NumPy shared by every backend, so it is identical by construction.

The optimiser state is not part of ``Counts`` (it is memory, priced by ``sim``'s ledger).
"""

from __future__ import annotations

import numpy as np

from ..backends.common import SAT_WEIGHT
from ..fixedpoint import ROUNDING_MODES, saturate, shift_round
from ..rng import random_bits

__all__ = [
    "is_stateful",
    "layer_optimizer_state",
    "optimizer_state_arrays",
    "post_scale",
    "restore_optimizer_state",
    "step_from_sums",
    "step_layer",
]

STEP_FRAC = 24  # extra fractional bits of a stateful optimiser's step before rounding to an LSB


def is_stateful(opt) -> bool:
    """True for optimisers that keep state (Adam, SGD with momentum)."""
    return opt.kind == "adam" or getattr(opt, "momentum", 0.0) > 0


def post_scale(opt, lr: float, batch: int) -> float:
    """Scale of the post-synaptic term: ``lr / B`` for plain SGD, ``1 / B`` with optimiser state."""
    return 1.0 / batch if is_stateful(opt) else lr / batch


def layer_optimizer_state(state, opt, k: int) -> dict:
    """The float32 optimiser state of layer ``k`` (created zero on first use): ``m_w``, ``m_b``,
    ``v_w``, ``v_b`` (Adam) or ``u_w``, ``u_b`` (momentum) and the step count ``t``."""
    st = state.extra.setdefault("optim", {"kind": opt.kind, "layers": {}})
    if st["kind"] != opt.kind:  # a different optimiser starts from fresh state
        st.clear()
        st.update(kind=opt.kind, layers={})
    layer = st["layers"].get(k)
    if layer is None:
        m, n = state.weights[k].shape
        names = ("m_w", "m_b", "v_w", "v_b") if opt.kind == "adam" else ("u_w", "u_b")
        layer = {name: np.zeros((m, n) if name.endswith("w") else m, np.float32) for name in names}
        layer["t"] = 0
        st["layers"][k] = layer
    return layer


def _real_gradients(ops, gw, gb) -> tuple[np.ndarray, np.ndarray]:
    if not ops.fixed:
        return np.asarray(gw, np.float32), np.asarray(gb, np.float32)
    return (np.ldexp(np.asarray(gw, np.float64), -(ops.f_u + ops.f_a)).astype(np.float32),
            np.ldexp(np.asarray(gb, np.float64), -ops.f_u).astype(np.float32))


def _steps(layer: dict, opt, lr: float, gw, gb) -> tuple[np.ndarray, np.ndarray]:
    """float32 increments of the weights and biases from the real gradient sums (descent direction)."""
    layer["t"] += 1
    lr32 = np.float32(lr)
    if opt.kind == "adam":
        b1, b2, eps = np.float32(opt.beta1), np.float32(opt.beta2), np.float32(opt.eps)
        c1 = np.float32(1.0 - opt.beta1 ** layer["t"])
        c2 = np.float32(1.0 - opt.beta2 ** layer["t"])
        out = []
        for g, mk, vk in ((gw, "m_w", "v_w"), (gb, "m_b", "v_b")):
            m, v = layer[mk], layer[vk]
            m *= b1
            m += (np.float32(1) - b1) * g
            v *= b2
            v += (np.float32(1) - b2) * g * g
            out.append(lr32 * (m / c1) / (np.sqrt(v / c2) + eps))
        return out[0], out[1]
    mu = np.float32(opt.momentum)
    out = []
    for g, uk in ((gw, "u_w"), (gb, "u_b")):
        u = layer[uk]
        if layer["t"] == 1:
            u[...] = g
        else:
            u *= mu
            u += g
        out.append(lr32 * u)
    return out[0], out[1]


def _apply_fixed(ops, w, b, sw, sb, key: int) -> tuple[int, np.ndarray]:
    """Round real steps to weight LSBs with the update format's rounding and add them."""
    sat = np.zeros(4, np.int64)
    m, n = w.shape
    mode = ROUNDING_MODES[ops.rounding]
    fmt = ops.precision.weight
    writes = 0
    for arr, step, index in ((w, sw, np.arange(m * n, dtype=np.uint64).reshape(m, n)),
                             (b, sb, m * n + np.arange(m, dtype=np.uint64))):
        t = np.floor(np.ldexp(np.asarray(step, np.float64), ops.f_w + STEP_FRAC) + 0.5)
        t = np.clip(t, -(2.0**62), 2.0**62).astype(np.int64)
        r = random_bits(key, index, STEP_FRAC) if mode == "stochastic" else None
        d = shift_round(t, STEP_FRAC, mode, r)
        writes += int(np.count_nonzero(d))
        q, events = saturate(arr.astype(np.int64) + d, fmt, raise_on_overflow=False)
        sat[SAT_WEIGHT] += events
        arr[...] = q
    return writes, sat


def step_layer(state, ops, opt, k: int, p, x, lr: float, key: int, device=None) -> tuple[int, np.ndarray]:
    """Apply one optimiser step to layer ``k``; return ``(update_writes, sat)``.

    ``p`` must have been scaled by :func:`post_scale`; ``key`` keys the stochastic rounding.
    ``device`` (float32 only) receives the real increment and returns the stored weights.
    """
    w, b = state.weights[k], state.biases[k]
    stateful = is_stateful(opt)
    if stateful and device is None:
        return step_from_sums(state, ops, opt, k, *ops.layer(k).grad_sum(p, x), lr, key)
    ops = ops.layer(k)
    if not stateful and device is None:
        return ops.update(w, b, p, x, key)
    if stateful:
        gw, gb = _real_gradients(ops, *ops.grad_sum(p, x))
        sw, sb = _steps(layer_optimizer_state(state, opt, k), opt, lr, gw, gb)
    else:
        sw, sb = ops.grad_sum(p, x)
    if device is not None:
        new_w, new_b = device.update(k, w, b, sw, sb)
        w[...] = new_w
        b[...] = new_b
        return int(np.count_nonzero(sw) + np.count_nonzero(sb)), np.zeros(4, np.int64)
    if ops.fixed:
        return _apply_fixed(ops, w, b, sw, sb, key)
    w += sw
    b += sb
    return int(np.count_nonzero(sw) + np.count_nonzero(sb)), np.zeros(4, np.int64)


def step_from_sums(state, ops, opt, k: int, gw, gb, lr: float, key: int) -> tuple[int, np.ndarray]:
    """The step of an optimiser with state (Adam, SGD with momentum) of layer ``k`` from the
    sums ``(p^T x, sum p)`` that ``ops.grad_sum`` returns (a caller that forms them its own way,
    e.g. a convolution, steps exactly as :func:`step_layer`); returns ``(update_writes, sat)``."""
    w, b = state.weights[k], state.biases[k]
    ops = ops.layer(k)
    gw, gb = _real_gradients(ops, gw, gb)
    sw, sb = _steps(layer_optimizer_state(state, opt, k), opt, lr, gw, gb)
    if ops.fixed:
        return _apply_fixed(ops, w, b, sw, sb, key)
    w += sw
    b += sb
    return int(np.count_nonzero(sw) + np.count_nonzero(sb)), np.zeros(4, np.int64)


def optimizer_state_arrays(state) -> dict[str, np.ndarray]:
    """The optimiser state as flat named arrays (for a model file), e.g. ``optim.0.m_w``.

    ``optim.kind`` is a 0-d unicode array; each layer's step count is ``optim.<k>.t``.
    """
    st = state.extra.get("optim")
    if not st:
        return {}
    out = {"optim.kind": np.array(st["kind"])}
    for k, layer in st["layers"].items():
        for name, value in layer.items():
            out[f"optim.{k}.{name}"] = np.asarray(value)
    return out


def restore_optimizer_state(state, arrays: dict) -> None:
    """Inverse of :func:`optimizer_state_arrays` (ignores unrelated keys)."""
    if "optim.kind" not in arrays:
        return
    layers: dict = {}
    for key, value in arrays.items():
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "optim":
            continue
        k, name = int(parts[1]), parts[2]
        layers.setdefault(k, {})[name] = int(value) if name == "t" else np.array(value, np.float32)
    state.extra["optim"] = {"kind": str(arrays["optim.kind"]), "layers": layers}
