"""SPELA: every layer steps on its own cosine loss to its label's class vector, in one sweep."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..rng import stream_key
from .common import count_forward, count_input_norm, forward_layer

__all__ = ["train_batch", "train_chunk"]


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
    d = counts.data
    for k in range(state.spec.n_layers):
        w, b = state.weights[k], state.biases[k]
        m, n = w.shape
        if rule.input_norm != "off":
            x = ops.normalize_rows(x)
            count_input_norm(counts, k, x)
        a, h, sat = forward_layer(state, ops, k, x, device)
        count_forward(counts, k, x, m)
        p, zeros, sat_p = ops.spela_post(a, h, state.vectors[k][y], state.vector_norms[k][y],
                                         lr / nb, rule.loss)
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
        d["loss_macs"][k] += 2 * nb * m
        d["loss_unit_ops"][k] += nb * (3 + (rule.loss == "log_2_minus_cos"))
        d["class_vector_reads"][k] += nb * m
        d["update_macs"][k] += nb * m * n
        d["update_macs_nonzero"][k] += int((np.count_nonzero(p, axis=1) * np.count_nonzero(x, axis=1)).sum())
        d["weight_reads"][k] += m * n + m
        d["weight_writes"][k] += m * n + m
        d["update_writes"][k] += writes
        d["act_reads"][k] += nb * n
        d["act_writes"][k] += nb * m
        d["saturations"][k] += int(total_sat.sum())
        d["zero_norm_events"][k] += zeros
        if rule.update_order == "recompute":
            _, h, _ = forward_layer(state, ops, k, x, device)
            count_forward(counts, k, x, m)
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
