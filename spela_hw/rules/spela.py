"""SPELA: every layer steps on the cosine of its output to its label's class vector, in one sweep.

The rule on one page, in real numbers (``docs/spela.md`` §1.3-1.4 derives it; the docstring of
:mod:`spela_hw.backends.reference` fixes every bit of the fixed-point arithmetic). Layer ``k`` has
weights ``W`` ``(m, n)``, bias ``b`` and fixed class vectors ``V`` ``(N, m)``; for one sample
``(x, y)``::

    a = W x + b        h = act(a)        v = V[y]
    c = cos(h, v) = h.v / (|h| |v|)
    loss l = f(c)      neg_cos: f = -c        log_2_minus_cos: f = log(2 - c)
    g = -f'(c)                  g = 1                          g = 1 / (2 - c)
    dc/dh = v / (|v| |h|) - c h / |h|^2
    dl/da = -g (dc/dh) * act'(a)     act' = 1 or slope (LeakyReLU), 1 - h^2 (tanh), 1 (identity)

The loss unit (``ops.spela_post``) gives each sample ``n`` of a mini-batch of ``B`` its
post-synaptic term, the descent direction of the batch loss ``L = (1/B) sum_n l_n`` (in the
update format in fixed point)::

    p_n = lr/B * g_n * (v_n / (|v_n| |h_n|) - c_n h_n / |h_n|^2) * act'(a_n)  = -lr/B dl_n/da_n

and the update (``ops.layer(k).update``) is its outer product with the layer input, rounded once
to the weight format (stochastically by default)::

    W += sum_n p_n x_n^T = p^T x = -lr dL/dW         b += sum_n p_n = -lr dL/db

A sample with ``h = 0`` has no cosine: ``p_n = 0``, counted as a zero-norm event. The layer
passes its *pre-update* ``h`` on as the next layer's input (``update_order="recompute"``: the
``h`` of the updated weights), detached: no gradient crosses a layer. With ``input_norm`` every
layer's input is first scaled to unit L2 norm. ``tests/test_spela_rule.py`` checks ``p^T x``
and ``sum_n p_n`` against finite differences of ``L``.

What a step executes is counted by :func:`count_layer_steps`, for this per-step path and for the
fused chunk path of the numba backend alike (:mod:`spela_hw.backends.numba_fused`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..rng import stream_key
from ..specs import Spela
from .base import Rule
from .common import count_forward, count_forward_passes, count_input_norm, forward_layer

__all__ = ["SpelaRule", "count_layer_steps", "train_batch", "train_chunk"]


def train_batch(state, ops, rule, x, y, lr: float, counts, device=None) -> None:
    """One SPELA update step of every layer on the mini-batch ``(x, y)``.

    ``x`` is the batch in the backend's input representation; each layer's pre-update output
    ``h`` feeds the next layer (``update_order="recompute"`` recomputes it after the step).
    With a ``device`` every forward pass goes through :func:`~spela_hw.rules.common.forward_layer`
    (device reads and its matrix-vector product) and every update through ``device.update``.
    """
    if rule.optimizer.kind != "sgd" or rule.optimizer.momentum:
        raise ConfigError("optimizer", "SPELA runs plain SGD (no momentum, no Adam) in this version")
    nb = len(y)
    for k in range(state.spec.n_layers):
        w, b = state.weights[k], state.biases[k]
        if rule.input_norm != "off":
            x = ops.normalize_rows(x)
        a, h, sat = forward_layer(state, ops, k, x, device)
        p, zeros, sat_p = ops.spela_post(a, h, state.vectors[k][y], state.vector_norms[k][y], lr / nb, rule.loss)
        if device is not None:
            dw, db = p.T @ x, p.sum(axis=0)
            new_w, new_b = device.update(k, w, b, dw, db)
            writes = int(np.count_nonzero(dw) + np.count_nonzero(db))
            w[...] = new_w
            b[...] = new_b
            sat_u = np.zeros(4, np.int64)
        else:
            key = stream_key(state.rounding_seed, k, state.update_step)
            writes, sat_u = ops.layer(k).update(w, b, p, x, key)
        total_sat = sat + sat_p + sat_u
        ops.check_overflow(total_sat)
        count_layer_steps(counts, k, w.shape, rule, nb, 1, input_nonzeros=int(np.count_nonzero(x)),
                          update_macs_nonzero=int((np.count_nonzero(p, axis=1) * np.count_nonzero(x, axis=1)).sum()),
                          update_writes=writes, saturations=int(total_sat.sum()), zero_norm_events=zeros)
        if rule.update_order == "recompute":
            _, h, _ = forward_layer(state, ops, k, x, device)
            count_forward(counts, k, x, w.shape[0])
        x = h
    counts.samples += nb
    counts.update_steps += 1
    state.update_step += 1


def train_chunk(state, ops, rule, x, y, lr: float, batch_size: int, counts, device=None) -> None:
    """SPELA steps of ``batch_size`` samples over the chunk ``(x, y)``, in order.

    Equivalent to :func:`train_batch` on each slice; backends that provide a fused path
    (``ops.spela_train_chunk``, e.g. the numba backend) run the whole chunk in one call, the others
    (and configurations the fused path does not cover, among them any ``device``: the fused
    kernels compute exact products and update the weights in place) step here.
    """
    fused = getattr(ops, "spela_train_chunk", None)
    if fused is not None and fused(state, rule, x, y, lr, batch_size, counts, device=device):
        return
    for s0 in range(0, len(y), batch_size):
        train_batch(state, ops, rule, x[s0:s0 + batch_size], y[s0:s0 + batch_size], lr, counts,
                    device=device)


def count_layer_steps(counts, k: int, shape: tuple[int, int], rule, samples: int, steps: int, *,
                      input_nonzeros: int, update_macs_nonzero: int, update_writes: int,
                      saturations: int, zero_norm_events: int) -> None:
    """Add what ``steps`` SPELA steps of layer ``k`` over ``samples`` samples in all executed.

    ``shape`` is the layer's ``(m, n)``. The keyword arguments are what depends on the data,
    summed over the samples: non-zero layer inputs, products of the update with a non-zero input
    and post-synaptic term, weights and biases whose stored value changed, saturated values and
    samples with ``h = 0``. Per sample: the input normalisation (with ``input_norm``), the
    forward pass (:func:`~spela_hw.rules.common.count_forward_passes`), the loss unit (``|h|^2``
    and ``h.v_y``: ``2m`` MACs and ``v_y`` read; three scalar operations, square root and
    divisions, a fourth for ``g = 1 / (2 - cos)``), ``p`` written, ``m n`` update products and ``x`` read again; per step one
    read-modify-write of every weight and bias. The recomputed forward pass of
    ``update_order="recompute"`` is counted by its caller.
    """
    m, n = shape
    d = counts.data
    if rule.input_norm != "off":
        count_input_norm(counts, k, samples, n)
    count_forward_passes(counts, k, samples, n, m, input_nonzeros)
    d["loss_macs"][k] += 2 * samples * m
    d["loss_unit_ops"][k] += samples * (3 + (rule.loss == "log_2_minus_cos"))
    d["class_vector_reads"][k] += samples * m
    d["update_macs"][k] += samples * m * n
    d["update_macs_nonzero"][k] += update_macs_nonzero
    d["weight_reads"][k] += steps * (m * n + m)
    d["weight_writes"][k] += steps * (m * n + m)
    d["update_writes"][k] += update_writes
    d["act_reads"][k] += samples * n
    d["act_writes"][k] += samples * m
    d["saturations"][k] += saturations
    d["zero_norm_events"][k] += zero_norm_events


class SpelaRule(Rule):
    """SPELA as a :class:`~spela_hw.rules.base.Rule` (no parameters of its own; every layer is
    read out by the cosine to its class vectors)."""

    spec_type = Spela
    train_batch = staticmethod(train_batch)
    train_chunk = staticmethod(train_chunk)
