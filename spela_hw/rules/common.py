"""Inference and counting shared by every rule."""

from __future__ import annotations

import numpy as np

from ..activations import activate, gate
from ..counts import Counts
from ..errors import ConfigError

__all__ = ["backward_error", "forward_all", "forward_layer", "read_params", "readout_predictions", "count_forward",
           "new_counts", "readout_layers", "uses_logit_readout"]


def new_counts(state, phase: str) -> Counts:
    p = state.precision
    bits = ({n: getattr(p, n).bits for n in ("weight", "activation", "accumulator", "class_vector", "update")}
            if p.is_fixed else {n: 32 for n in ("weight", "activation", "accumulator", "class_vector", "update")})
    return Counts(state.spec.n_layers, phase=phase, precision=p.name, bits=bits)


def read_params(state, k: int, device=None):
    """Layer ``k``'s weights and biases as a forward pass sees them (through ``device.read``)."""
    w, b = state.weights[k], state.biases[k]
    if device is None:
        return w, b
    w_eff, b_eff = device.read(k, w, b)
    return np.asarray(w_eff, np.float32), np.asarray(b_eff, np.float32)


def _activate(ops, a: np.ndarray) -> np.ndarray:
    """The float32 activation of a pre-activation (as the float backends compute it)."""
    return activate(a, ops.act_code, ops.slope).astype(np.float32)


def forward_layer(state, ops, k: int, x, device=None, params=None):
    """Layer ``k``'s forward pass ``(a, h, sat)`` as the hardware computes it.

    The one place where a rule meets the device on the forward path: the weights come from
    ``device.read`` (:func:`read_params`; pass ``params=(w, b)`` when the caller already read
    them, so each pass reads once), and the product ``x W^T + b`` from ``device.mvm`` when the
    device has one (ADC/DAC effects), else from the backend's exact ``ops.forward``. Without a
    device this is ``ops.forward`` on the stored weights, bit for bit.
    """
    w, b = read_params(state, k, device) if params is None else params
    mvm = getattr(device, "mvm", None)
    if mvm is None:
        return ops.layer(k).forward(w, b, x)
    if ops.fixed:
        raise ConfigError("device", "a device's matrix-vector product runs with float32 weights (precision=None)")
    a = np.ascontiguousarray(mvm(k, np.asarray(x, np.float32), w, b), np.float32)
    if a.shape != (len(x), w.shape[0]):
        raise ConfigError("device", f"mvm of layer {k} returned shape {a.shape}, expected {(len(x), w.shape[0])}")
    return a, _activate(ops, a), np.zeros(4, np.int64)


def backward_error(ops, k: int, w, p, a, h, device=None):
    """Backprop's error term of the layer below layer ``k``: ``(p W) * act'(a)``, and ``sat``.

    ``w`` are the weights layer ``k`` used in its forward pass. A device with
    ``mvm_transposed`` computes ``p W`` (its transposed read through the ADCs); otherwise the
    backend's exact ``ops.backprop_error``.
    """
    mvm_t = getattr(device, "mvm_transposed", None)
    if mvm_t is None:
        return ops.layer(k).backprop_error(w, p, a, h)
    if ops.fixed:
        raise ConfigError("device", "a device's transposed product runs with float32 weights (precision=None)")
    e = np.asarray(mvm_t(k, np.asarray(p, np.float32), w), np.float32)
    if e.shape != (len(p), w.shape[1]):
        raise ConfigError("device", f"mvm_transposed of layer {k} returned shape {e.shape}, "
                                    f"expected {(len(p), w.shape[1])}")
    return (e * gate(a, h, ops.act_code, ops.slope)).astype(np.float32), np.zeros(4, np.int64)


def count_forward(counts: Counts, k: int, x: np.ndarray, m: int) -> None:
    """Counters of one layer's forward pass over a batch ``x`` ``(B, n)``."""
    nb, n = x.shape
    d = counts.data
    d["forward_macs"][k] += nb * m * n
    d["forward_macs_nonzero"][k] += m * int(np.count_nonzero(x))
    d["weight_reads"][k] += nb * (m * n + m)
    d["act_reads"][k] += nb * n
    d["act_writes"][k] += nb * m


def count_input_norm(counts: Counts, k: int, x: np.ndarray) -> None:
    nb, n = x.shape
    counts.data["loss_macs"][k] += nb * n
    counts.data["loss_unit_ops"][k] += 2 * nb


def uses_logit_readout(rule) -> bool:
    """True for rules whose last layer is read out by the argmax of its logits (backprop, and
    sigprop's output layer)."""
    return getattr(rule, "loss", None) == "softmax_ce" or getattr(rule, "inference", None) == "output_layer"


def readout_layers(rule, n_layers: int) -> tuple[int, ...]:
    """Layers (0-based) whose read-out the rule trains: every layer of a rule with a loss at every
    layer (SPELA, sigprop); only the output of backprop, whose hidden layers learn no class
    vectors, so a cosine read-out there measures nothing about the model."""
    if getattr(rule, "loss", None) == "softmax_ce":
        return (n_layers - 1,)
    return tuple(range(n_layers))


def forward_all(state, ops, x, normalize_inputs: bool, upto: int | None = None, counts=None,
                logits_last: bool = False, device=None):
    """Outputs ``h`` of layers ``0..upto`` (all by default) for an input batch, no learning.

    ``logits_last``: the network's last layer gives its pre-activation ``a`` (the logits of a
    linear output layer) instead of ``h``. ``device``: infer on the device (its reads and
    matrix-vector products, see :func:`forward_layer`) instead of the stored weights exactly.
    """
    upto = state.spec.n_layers - 1 if upto is None else upto
    outs = []
    for k in range(upto + 1):
        if normalize_inputs:
            x = ops.normalize_rows(x)
            if counts is not None:
                count_input_norm(counts, k, x)
        a, h, _ = forward_layer(state, ops, k, x, device)
        if counts is not None:
            count_forward(counts, k, x, state.weights[k].shape[0])
        outs.append(a if logits_last and k == state.spec.n_layers - 1 else h)
        x = h
    return outs


def readout_predictions(state, ops, k: int, h: np.ndarray, counts=None,
                        logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cosine read-out at layer ``k``: (predicted class indices, scores ``(B, N)``).

    The argmax of ``V h`` equals the argmax of the cosine (the factor 1/|h| is common); ties go
    to the lowest index; an all-zero ``h`` predicts class 0 and is counted as a zero-norm event.
    ``logits=True``: ``h`` are logits, read out by their argmax (no class vectors, nothing counted).
    """
    if logits:
        return np.argmax(h, axis=1), h
    from . import sigprop  # sigprop reads out by matching its class targets, not class vectors

    if sigprop.EXTRA_KEY in state.extra:
        return sigprop.readout_predictions(state, ops, k, h, counts)
    scores = ops.readout(h, state.vectors[k])
    pred = np.argmax(scores, axis=1)
    if counts is not None:
        nb, m = h.shape
        n_cls = state.vectors[k].shape[0]
        counts.data["readout_macs"][k] += nb * n_cls * m
        counts.data["class_vector_reads"][k] += nb * n_cls * m
        counts.data["zero_norm_events"][k] += int(np.count_nonzero(~h.any(axis=1)))
    return pred, scores
