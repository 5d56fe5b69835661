"""Backpropagation baseline: softmax cross-entropy at the last layer, errors ``W^T delta`` below.

Like for like with SPELA: the same layers (``ops.forward``), the same precisions and the same
weight-update primitive (``ops.update``: ``W += round(p^T x)``, stochastic rounding in fixed
point), the same Counts. What differs is where each layer's post-synaptic term ``p`` comes from:

* the **logits are the last layer's pre-activation** ``a`` (a linear output layer, the common
  baseline; the network's activation is still computed and written as ``h``, as for any layer).
  ``p_L = scale * (onehot(y) - softmax(a_L))`` from ``ops.softmax_ce_post``;
* every lower layer gets ``p_k = (p_{k+1} W_{k+1}) * act'(a_k)`` from ``ops.backprop_error``
  with the *pre-update* ``W_{k+1}``;
* ``scale = lr / B`` for plain SGD, ``1 / B`` for optimisers with state
  (:mod:`spela_hw.rules.optim`). ``p`` is the descent direction, so ``W += p^T x`` descends.

The fixed-point softmax and error path are defined in :mod:`spela_hw.backends.reference`. In
fixed point a pre-activation (logit or hidden) that sits at a limit of the activation format has
derivative 0, as saturation has: the error stops there instead of growing the weights of a unit
whose output can no longer move (the clipped straight-through rule of quantised training).
The last layer must have one unit per class. Prediction at the last layer is the argmax of the
logits (:func:`spela_hw.rules.common.uses_logit_readout`); hidden layers keep the cosine read-out
to their class vectors that every layer of the toolkit has.

Counts per mini-batch of ``B`` samples (``m_k`` x ``n_k`` weights in layer ``k``, ``N`` classes)
---------------------------------------------------------------------------------------------
forward, every layer
    as :func:`~spela_hw.rules.common.count_forward` (the same as SPELA).
stored activations
    each hidden layer's pre-activation (or its derivative mask) is written once more for the
    backward pass: ``act_writes += B m_k``, and read back for the derivative:
    ``act_reads += B m_k``. The layer inputs ``x_k`` are kept in the buffer they were written
    to and read by the update (``act_reads += B n_k``, as SPELA's update).
loss unit (last layer)
    ``loss_macs += B N`` (the sum of exponentials), ``loss_unit_ops += 2 B N`` (N exponentials
    and N divisions per sample), the output term written: ``act_writes += B N``.
error path, counted on the layer whose weights it uses (``k >= 1``)
    ``error_macs += B m_k n_k`` and ``weight_reads += B m_k n_k`` (a transposed matrix-vector
    product per sample), ``act_reads += B m_k`` (reading ``p_k``); the result ``p_{k-1}`` is
    written: ``act_writes[k-1] += B n_k``.
update, every layer
    exactly as SPELA: ``update_macs``, ``update_macs_nonzero``, one read-modify-write of every
    weight and bias, ``update_writes`` of the values that changed.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ..rng import stream_key
from ..specs import Backprop
from .base import Rule
from .common import backward_error, count_forward, forward_layer, read_params
from .optim import post_scale, step_layer

__all__ = ["BackpropRule", "train_batch", "check_config"]


def check_config(state, ops, batch: int) -> None:
    """Reject networks and formats the backprop pipeline cannot run exactly."""
    spec = state.spec
    if spec.dims[-1] != spec.n_classes:
        raise ConfigError("dims", f"backprop's last layer must have one unit per class "
                                  f"({spec.n_classes}), got {spec.dims[-1]}")
    if not ops.fixed:
        return
    p = state.precision
    if spec.n_layers > 1:
        fan = max(spec.dims[2:])
        if p.weight.bits + p.update.bits + math.ceil(math.log2(fan + 1)) > 62:
            raise ConfigError("update.bits", "weight.bits + update.bits + log2(fan_out) exceed 62 bits: "
                                             "the error sum p W could overflow int64")
    if p.update.bits + p.activation.bits + math.ceil(math.log2(batch + 1)) > 62:
        raise ConfigError("batch_size", "update.bits + activation.bits + log2(batch) exceed 62 bits: "
                                        "the gradient sum p^T x could overflow int64")


def train_batch(state, ops, rule, x, y, lr: float, counts, device=None) -> None:
    """One backprop step of every layer on the mini-batch ``(x, y)`` (``y``: class indices)."""
    nb = len(y)
    check_config(state, ops, nb)
    L = state.spec.n_layers
    opt = rule.optimizer
    d = counts.data
    sats = [np.zeros(4, np.int64) for _ in range(L)]
    xs, pre, outs, used = [], [], [], []
    for k in range(L):
        w, b = read_params(state, k, device)
        a, h, sat = forward_layer(state, ops, k, x, device, params=(w, b))
        count_forward(counts, k, x, w.shape[0])
        sats[k] += sat
        if k < L - 1:
            d["act_writes"][k] += nb * w.shape[0]  # stored pre-activation for the derivative
        xs.append(x)
        pre.append(a)
        outs.append(h)
        used.append(w)
        x = h
    n_cls = state.spec.dims[-1]
    p, sat = ops.softmax_ce_post(pre[-1], y, post_scale(opt, lr, nb))
    sats[-1] += sat
    d["loss_macs"][L - 1] += nb * n_cls
    d["loss_unit_ops"][L - 1] += 2 * nb * n_cls
    d["act_writes"][L - 1] += nb * n_cls
    for k in range(L - 1, -1, -1):
        m, n = state.weights[k].shape
        p_below = None
        if k > 0:  # the error below uses this layer's weights before they step
            p_below, sat = backward_error(ops, k, used[k], p, pre[k - 1], outs[k - 1], device)
            sats[k - 1] += sat
            d["error_macs"][k] += nb * m * n
            d["weight_reads"][k] += nb * m * n
            d["act_reads"][k] += nb * m
            d["act_reads"][k - 1] += nb * n
            d["act_writes"][k - 1] += nb * n
        key = stream_key(state.rounding_seed, k, state.update_step)
        writes, sat = step_layer(state, ops, opt, k, p, xs[k], lr, key, device)
        sats[k] += sat
        d["update_macs"][k] += nb * m * n
        d["update_macs_nonzero"][k] += int((np.count_nonzero(p, axis=1)
                                            * np.count_nonzero(xs[k], axis=1)).sum())
        d["weight_reads"][k] += m * n + m
        d["weight_writes"][k] += m * n + m
        d["update_writes"][k] += writes
        d["act_reads"][k] += nb * n
        p = p_below
    for k in range(L):
        d["saturations"][k] += int(sats[k].sum())
    for k in range(L):
        ops.check_overflow(sats[k])
    counts.samples += nb
    counts.update_steps += 1
    state.update_step += 1


class BackpropRule(Rule):
    """Backprop as a :class:`~spela_hw.rules.base.Rule`: the last layer is read out by its logits
    and is the only layer whose read-out it trains."""

    spec_type = Backprop
    train_batch = staticmethod(train_batch)

    def logit_readout(self, rule) -> bool:
        return True

    def readout_layers(self, rule, n_layers: int) -> tuple[int, ...]:
        return (n_layers - 1,)
