"""Inference and counting shared by every rule.

The read-out helpers (:func:`readout_predictions`, :func:`readout_layers`,
:func:`uses_logit_readout`) ask the rule's implementation (:func:`spela_hw.rules.base.rule_for`).
"""

from __future__ import annotations

import numpy as np

from ..activations import activate, gate
from ..counts import Counts
from ..errors import ConfigError
from .base import RULE_KEY, class_vector_readout, rule_for

__all__ = ["backward_error", "forward_all", "forward_layer", "read_params", "readout_predictions", "count_forward",
           "count_forward_passes", "count_input_norm", "new_counts", "readout_layers", "uses_logit_readout"]


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
    count_forward_passes(counts, k, nb, n, m, int(np.count_nonzero(x)))


def count_forward_passes(counts: Counts, k: int, samples: int, n: int, m: int, input_nonzeros: int) -> None:
    """Counters of ``samples`` forward passes of a layer of ``m x n`` weights whose inputs held
    ``input_nonzeros`` non-zero values in all: ``W x + b`` read and multiplied, ``x`` read,
    ``h`` written."""
    d = counts.data
    d["forward_macs"][k] += samples * m * n
    d["forward_macs_nonzero"][k] += m * input_nonzeros
    d["weight_reads"][k] += samples * (m * n + m)
    d["act_reads"][k] += samples * n
    d["act_writes"][k] += samples * m


def count_input_norm(counts: Counts, k: int, samples: int, n: int) -> None:
    """Counters of L2-normalising ``samples`` inputs of width ``n`` (``|x|^2``, one square root
    and one division each)."""
    counts.data["loss_macs"][k] += samples * n
    counts.data["loss_unit_ops"][k] += 2 * samples


def uses_logit_readout(rule) -> bool:
    """True for rules whose last layer is read out by the argmax of its logits (backprop, and
    sigprop's output layer)."""
    return rule_for(rule).logit_readout(rule)


def readout_layers(rule, n_layers: int) -> tuple[int, ...]:
    """Layers (0-based) whose read-out the rule trains: every layer of a rule with a loss at every
    layer (SPELA, sigprop); only the output of backprop, whose hidden layers learn no class
    vectors, so a cosine read-out there measures nothing about the model."""
    return rule_for(rule).readout_layers(rule, n_layers)


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
                count_input_norm(counts, k, *x.shape)
        a, h, _ = forward_layer(state, ops, k, x, device)
        if counts is not None:
            count_forward(counts, k, x, state.weights[k].shape[0])
        outs.append(a if logits_last and k == state.spec.n_layers - 1 else h)
        x = h
    return outs


def readout_predictions(state, ops, k: int, h: np.ndarray, counts=None,
                        logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read-out at layer ``k``: (predicted class indices, scores ``(B, N)``).

    ``logits=True``: ``h`` are logits, read out by their argmax (no class vectors, nothing
    counted). Otherwise the read-out of the rule that initialised ``state`` (sigprop matches its
    class targets), by default the cosine to the class vectors
    (:func:`~spela_hw.rules.base.class_vector_readout`).
    """
    if logits:
        return np.argmax(h, axis=1), h
    rule = state.extra.get(RULE_KEY)
    readout = class_vector_readout if rule is None else rule_for(rule).readout_predictions
    return readout(state, ops, k, h, counts)
