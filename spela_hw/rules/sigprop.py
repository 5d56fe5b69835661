"""Signal propagation (sigprop): the label travels forward through the same layers as the input.

Sigprop (Kohan, Rietman & Siegelmann, IEEE TNNLS 2023) is the other forward-only rule next to
SPELA: no backward pass, no feedback weights. The one-hot label ``c`` enters at the front of the
network and runs through the same weights as the input; each layer steps on a local loss between
the two streams as soon as the forward pass reaches it, and hands the *pre-update* (detached)
``h`` and ``t`` to the next layer. Options are the fields of :class:`~spela_hw.specs.Sigprop`;
``docs/sigprop.md`` gives the sources.

It is built from the same primitives as SPELA and backprop: ``ops.forward`` for both streams,
``ops.update`` / :func:`spela_hw.rules.optim.step_layer` for ``W += round(p^T x)``, backprop's
softmax unit ``ops.softmax_ce_post`` (base-2 look-up-table exponential in fixed point) for the
cross-entropies, its ``ops.backprop_error`` for the learned front projection, SPELA's
``ops.spela_post`` for the cosine loss, ``ops.readout`` for products with the other stream, and
two sigprop primitives, ``ops.sigprop_logits`` and ``ops.sigprop_post`` (defined in
:mod:`spela_hw.backends.reference`).

One step on a mini-batch of ``B`` samples
-----------------------------------------
Target rows: the ``C`` class one-hots (``targets="classes"``, ``B' = C``) or each sample's own
label (``targets="batch"``, ``B' = B``); ``pos_n`` is sample ``n``'s positive target row (its
class, or the first batch row of its class: the official code's ``v1`` and ``v14`` losses).
Layer ``k`` (weights ``W`` ``m x n``; ``p`` is ``lr/B`` times the descent direction in the update
format, ``A`` the real value of one activation LSB, ``1`` in float32):

* input stream ``h = f(W x + b)``, target stream ``t = f(W t_prev + b)``; at the first layer the
  front: ``concat`` runs ``t = f(S c + b)`` (``S`` ``m x C``, the label columns of an input
  ``[x, c]``), the projections run ``t_0 = f(P c)`` (``P`` ``n x C``) then ``t = f(W t_0 + b)``;
* ``in_batch_ce``: logits ``z = h t^T A / temperature`` in activation LSBs
  (``ops.sigprop_logits``), ``G = (onehot(pos) - softmax(z)) / 2`` (``ops.softmax_ce_post``),
  ``p_h = 2 A lr / (B temperature) * f'(a_h) (G T)`` and, with ``target_grad``,
  ``p_t = ... f'(a_t) (G^T H)`` (``ops.readout`` for the exact products, ``ops.sigprop_post``);
* ``l2``: ``p_h = lr/B f'(a_h) (t_pos - h)``, ``p_t = lr/B f'(a_t) (h - t_pos)`` per sample;
* ``cosine``: SPELA's ``-cos`` loss unit with the target row in place of the class vector
  (``p_h``) and the input row in place of the class vector (``p_t``);
* Hebbian forms (``loss="l2"``): ``p = lr/B (t_pos - h)`` with presynaptic ``t_prev`` of the
  positive row (``target_pre``), or ``p = lr/B f'(a_h) (t_pos - h)`` with presynaptic ``x``
  (``input_pre``), and no target-branch term;
* one update of the layer from all rows: ``W += round(p_h^T x + p_t^T t_prev)``,
  ``b += round(sum p_h + sum p_t)``. With ``concat`` the first layer's target rows have a zero
  ``x`` part (they step ``b`` and ``S`` only: ``S += round(p_t^T c)``); a learned projection steps
  ``P += round(q^T c)`` with ``q = (p_t W) f'(a_0)`` (``ops.backprop_error``, the pre-update
  ``W``).

With ``inference="output_layer"`` the last layer is the read-out: ``p = lr'/B (onehot(y) -
softmax(a))`` from its pre-activation ``a`` on the detached input, ``lr' = lr *
output_lr_scale``. The front parameters live in ``state.extra["sigprop"]`` and step by plain SGD
(or the rule's optimiser through :mod:`spela_hw.rules.optim`'s state of their own).

Read-out
--------
The output layer predicts ``argmax a`` (``uses_logit_readout``); every other layer (every layer
with ``target_matching``) predicts ``argmax_c sim(h, t^c)`` with ``t^c`` the class ``c`` sent
through the target path of the current weights (a ``C x m`` table per layer, like SPELA's class
vectors): the dot product for ``in_batch_ce``, ``2 h.t - |t|^2`` (nearest target) for ``l2`` and
the Hebbian forms, ``h.t / |t|`` for ``cosine``.

Counts (per mini-batch; ``R`` = target rows forwarded, ``B'``)
-----------------------------------------------------------
* input stream as every rule (:func:`~spela_hw.rules.common.count_forward`);
* target stream: ``target_macs += R m n_t`` (``n_t = C`` for the ``concat`` front), weight reads
  ``R (m n_t + m)``, ``act_reads += R n_t``, ``act_writes += R m`` (the second stream is the
  rule's extra activation memory and traffic); a projection front adds ``R n C`` target MACs at
  the first layer;
* ``in_batch_ce``: ``loss_macs += B B' m`` (logits) ``+ B B'`` (sum of exponentials)
  ``+ B B' m`` (``G T``) ``[+ B B' m`` (``G^T H``)]; ``loss_unit_ops += 2 B B'`` (exponentials and
  divisions); ``l2``/Hebbian: ``loss_macs += B m`` per branch (differences); ``cosine``:
  ``loss_macs += 3 B m`` and ``loss_unit_ops += 3 B`` per branch; post-synaptic terms written:
  ``act_writes += m`` per row;
* update: ``update_macs`` over every row that steps the layer (``B + B'`` with the target branch),
  one read-modify-write of the weights, biases and front parameters, ``act_reads`` of the
  presynaptic rows; the learned projection's ``p_t W`` adds ``error_macs`` and weight reads
  ``R m n`` at the first layer;
* output layer: as backprop's (``loss_macs += B C``, ``loss_unit_ops += 2 B C``).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..errors import ConfigError
from ..rng import stream_key
from ..specs import Sigprop
from . import optim
from .base import Rule
from .common import count_forward, forward_layer, read_params

__all__ = ["SigpropRule", "train_batch", "init_extra", "readout_predictions", "class_targets", "check_config",
           "state_arrays", "restore_state", "EXTRA_KEY"]

log = logging.getLogger(__name__)

EXTRA_KEY = "sigprop"  # state.extra[EXTRA_KEY] = {"rule": Sigprop, "front": array[, "optim": dict]}


# -- state ------------------------------------------------------------------------------------
def init_extra(state, ops, rule, rng: np.random.Generator) -> None:
    """Create the front parameters (label columns ``S`` or projection ``P``) in ``state.extra``.

    Initialised like a layer with ``C`` inputs (the network's ``init``): ``S`` ``(d_1, C)`` for
    ``concat``, ``P`` ``(d_0, C)`` for the projections, stored in the weight format.
    """
    spec = state.spec
    if rule.inference == "output_layer" and spec.dims[-1] != spec.n_classes:
        raise ConfigError("layer_sizes", f"sigprop's output layer needs one unit per class ({spec.n_classes}), "
                                         f"got {spec.dims[-1]} (or use inference='target_matching')")
    C = spec.n_classes
    rows = spec.dims[1] if rule.front == "concat" else spec.dims[0]
    if spec.init == "he_uniform":
        bound = math.sqrt(6.0 / C)
        real = rng.uniform(-bound, bound, size=(rows, C))
    else:
        real = rng.normal(0.0, math.sqrt(2.0 / C), size=(rows, C))
    front, _, _ = ops.layer(0).store_params(real, np.zeros(rows))  # in layer 1's weight format
    state.extra[EXTRA_KEY] = {"rule": rule, "front": front}


def state_arrays(state) -> dict[str, np.ndarray]:
    """The sigprop parameters as named arrays for a model file.

    ``sigprop.front`` (the label columns or projection) and, when the rule's optimiser keeps
    state, the front's own: ``sigprop.optim.kind`` (0-d unicode), ``sigprop.optim.t`` and the
    float32 moments (``sigprop.optim.m_w`` ...), so a checkpoint resumes exactly.
    """
    sp = state.extra.get(EXTRA_KEY)
    if sp is None:
        return {}
    out = {"sigprop.front": np.asarray(sp["front"])}
    slot = sp.get("optim")
    if slot is not None:
        out["sigprop.optim.kind"] = np.array(slot["kind"])
        out["sigprop.optim.t"] = np.array(slot["t"], np.int64)
        for name, value in slot.items():
            if name not in ("kind", "t"):
                out[f"sigprop.optim.{name}"] = np.asarray(value)
    return out


def restore_state(state, arrays: dict) -> None:
    """Inverse of :func:`state_arrays` (the rule's :func:`init_extra` must have run)."""
    sp = state.extra.get(EXTRA_KEY)
    if sp is None or "sigprop.front" not in arrays:
        return
    a = np.asarray(arrays["sigprop.front"])
    if a.shape != sp["front"].shape or a.dtype != sp["front"].dtype:
        raise ConfigError("sigprop.front", f"expected {sp['front'].dtype}{sp['front'].shape}, got {a.dtype}{a.shape}")
    sp["front"][...] = a
    if "sigprop.optim.kind" in arrays:
        slot = {"kind": str(arrays["sigprop.optim.kind"]), "t": int(arrays["sigprop.optim.t"])}
        prefix = "sigprop.optim."
        for key, value in arrays.items():
            name = key[len(prefix):]
            if key.startswith(prefix) and name not in ("kind", "t"):
                slot[name] = np.array(value, np.float32)
        sp["optim"] = slot


def check_config(state, ops, rule, batch: int) -> None:
    """Reject fixed-point formats whose exact int64 sums could overflow."""
    if not ops.fixed:
        return
    p = state.precision
    rows = batch if rule.targets == "batch" else state.spec.n_classes
    lg = lambda v: math.ceil(math.log2(v + 1))  # noqa: E731
    if 2 * p.activation.bits + lg(max(state.spec.dims)) > 62:
        raise ConfigError("activation.bits", "2 * activation.bits + log2(width) exceed 62 bits: the logits "
                                             "h . t could overflow int64")
    if p.update.bits + p.activation.bits + lg(batch + rows) > 62:
        raise ConfigError("update.bits", "update.bits + activation.bits + log2(B + B') exceed 62 bits: the "
                                         "products G T and p^T x could overflow int64")


# -- the two streams --------------------------------------------------------------------------
def _units(ops):
    """(real value of one activation LSB, update-format scale ``2**f_u``); ``(1, 1)`` in float32."""
    return (2.0 ** -ops.f_a, 2.0**ops.f_u) if ops.fixed else (1.0, 1.0)


def _onehot(ops, rows: np.ndarray, n_classes: int) -> np.ndarray:
    return ops.quantize_input(np.eye(n_classes, dtype=np.float32)[rows])


def _target_forward(state, ops, rule, k, t_in, w, b):
    """Target stream through layer ``k``: ``(a_t, t, pre, front, sat)``.

    ``pre`` is the presynaptic input of ``W`` (``None`` for ``concat`` at the first layer, whose
    target rows enter through the label columns); ``front`` is ``(a_0, t_0)`` of a projection
    front, else ``None``. At the first layer ``t_in`` is the one-hot rows.
    """
    sat = np.zeros(4, np.int64)
    front = None
    if k == 0:
        F = state.extra[EXTRA_KEY]["front"]
        if rule.front == "concat":
            a_t, t, s = ops.layer(0).forward(F, b, t_in)
            return a_t, t, None, None, sat + s
        a0, t0, s0 = ops.layer(0).forward(F, np.zeros(F.shape[0], F.dtype), t_in)
        sat += s0
        front, t_in = (a0, t0), t0
    a_t, t, s = ops.layer(k).forward(w, b, t_in)
    return a_t, t, t_in, front, sat + s


def class_targets(state, ops, upto: int) -> list[np.ndarray]:
    """``t^c`` of every class at layers ``0..upto`` (``C x m_k`` each), current stored weights."""
    rule = state.extra[EXTRA_KEY]["rule"]
    C = state.spec.n_classes
    t = _onehot(ops, np.arange(C), C)
    out = []
    for k in range(upto + 1):
        _, t, _, _, _ = _target_forward(state, ops, rule, k, t, state.weights[k], state.biases[k])
        out.append(t)
    return out


def _count_target_forward(d, k, rows, n_in, m, n_front=0, n_classes=0):
    d["target_macs"][k] += rows * m * n_in
    d["weight_reads"][k] += rows * (m * n_in + m)
    d["act_reads"][k] += rows * n_in
    d["act_writes"][k] += rows * m
    if n_front:  # projection front: t_0 = f(P c)
        d["target_macs"][k] += rows * n_front * n_classes
        d["weight_reads"][k] += rows * n_front * n_classes
        d["act_reads"][k] += rows * n_classes
        d["act_writes"][k] += rows * n_front


# -- local losses -----------------------------------------------------------------------------
def _positive_rows(rule, y: np.ndarray) -> np.ndarray:
    """Each sample's positive target row: its class, or the first batch row of its class."""
    if rule.targets == "classes":
        return y
    uniq, first = np.unique(y, return_index=True)
    return first[np.searchsorted(uniq, y)]


def _loss_terms(ops, rule, ps, h, a_h, t, a_t, pos, d, k):
    """Post-synaptic terms of one sigprop layer: ``(p_h or None, p_t or None, rows of t, sat, zeros)``.

    ``p_t`` has one row per target row (``in_batch_ce``) or per sample (the rest; ``rows`` then
    picks each sample's positive target row for the presynaptic side).
    """
    A, U = _units(ops)
    nb, m = h.shape
    sat = np.zeros(4, np.int64)
    zeros = 0
    p_h = p_t = None
    rows = None
    if rule.loss == "in_batch_ce":
        nt = len(t)
        z = ops.sigprop_logits(h, t, A / rule.temperature)
        G, s = ops.softmax_ce_post(z, pos, 0.5)
        sat += s
        scale = 2.0 * A * ps / rule.temperature
        p_h, s = ops.sigprop_post(a_h, h, ops.readout(G, np.ascontiguousarray(t.T)), scale, True)
        sat += s
        d["loss_macs"][k] += nb * nt * m + nb * nt + nb * nt * m
        d["loss_unit_ops"][k] += 2 * nb * nt
        d["act_writes"][k] += nb * m
        if rule.target_grad:
            p_t, s = ops.sigprop_post(a_t, t, ops.readout(np.ascontiguousarray(G.T), np.ascontiguousarray(h.T)),
                                      scale, True)
            sat += s
            d["loss_macs"][k] += nb * nt * m
            d["act_writes"][k] += nt * m
        return p_h, p_t, None, sat, zeros
    rows = pos
    t_y, a_ty = t[rows], a_t[rows]
    if rule.loss == "cosine":
        if ops.fixed:
            vt = np.sqrt((t_y * t_y).sum(axis=1).astype(np.float64))
            vh = np.sqrt((h * h).sum(axis=1).astype(np.float64))
            v_for_h, n_for_h, v_for_t, n_for_t = t_y, np.where(vt > 0, vt, 1.0), h, np.where(vh > 0, vh, 1.0)
        else:
            v_for_h, v_for_t = ops.normalize_rows(t_y), ops.normalize_rows(h)
            n_for_h = n_for_t = np.ones(nb)
        zeros += int(np.count_nonzero(~t_y.any(axis=1)))
        p_h, z1, s = ops.spela_post(a_h, h, v_for_h, n_for_h, ps, "neg_cos")
        zeros += z1
        sat += s
        d["loss_macs"][k] += 3 * nb * m
        d["loss_unit_ops"][k] += 3 * nb
        d["act_writes"][k] += nb * m
        if rule.target_grad:
            p_t, _, s = ops.spela_post(a_ty, t_y, v_for_t, n_for_t, ps, "neg_cos")
            sat += s
            d["loss_macs"][k] += 3 * nb * m
            d["loss_unit_ops"][k] += 3 * nb
            d["act_writes"][k] += nb * m
        return p_h, p_t, rows, sat, zeros
    # l2 and the Hebbian forms: the error t - h
    diff = t_y - h
    scale = ps * U * A
    d["loss_macs"][k] += nb * m
    d["act_writes"][k] += nb * m
    if rule.hebbian == "target_pre":
        p_t, s = ops.sigprop_post(None, None, diff, scale, False)
        return None, p_t, rows, sat + s, zeros
    p_h, s = ops.sigprop_post(a_h, h, diff, scale, True)
    sat += s
    if rule.hebbian == "off" and rule.target_grad:
        p_t, s = ops.sigprop_post(a_ty, t_y, -diff, scale, True)
        sat += s
        d["loss_macs"][k] += nb * m
        d["act_writes"][k] += nb * m
    return p_h, p_t, rows, sat, zeros


# -- updates ----------------------------------------------------------------------------------
def _step_front(state, ops, opt, p, x, lr, key):
    """One step of the front parameters ``F += round(p^T x)`` (their own optimiser state)."""
    sp = state.extra[EXTRA_KEY]
    F = sp["front"]
    ops = ops.layer(0)  # the front is stored in layer 1's weight format
    dummy = np.zeros(F.shape[0], F.dtype)  # the front has no bias
    if not optim.is_stateful(opt):
        before = F.copy()
        _, sat = ops.update(F, dummy, p, x, key)
        return int(np.count_nonzero(F != before)), sat
    slot = sp.get("optim")
    if slot is None or slot.get("kind") != opt.kind:
        names = ("m_w", "m_b", "v_w", "v_b") if opt.kind == "adam" else ("u_w", "u_b")
        slot = {n: np.zeros(F.shape if n.endswith("w") else F.shape[0], np.float32) for n in names}
        slot.update(kind=opt.kind, t=0)
        sp["optim"] = slot
    gw, gb = optim._real_gradients(ops, *ops.grad_sum(p, x))
    sw, _ = optim._steps(slot, opt, lr, gw, np.zeros_like(gb))
    if ops.fixed:
        return optim._apply_fixed(ops, F, dummy, sw, np.zeros_like(sw[:, 0]), key)
    F += sw
    return int(np.count_nonzero(sw)), np.zeros(4, np.int64)


def _count_update(d, k, p, x, m, n):
    d["update_macs"][k] += len(p) * m * n
    d["update_macs_nonzero"][k] += int((np.count_nonzero(p, axis=1) * np.count_nonzero(x, axis=1)).sum())
    d["act_reads"][k] += len(p) * n


def _sigprop_layer(state, ops, rule, k, x, t_in, y, pos, lr, counts, device):
    """Forward both streams through layer ``k``, step it, return the pre-update ``(h, t)``."""
    d = counts.data
    opt = rule.optimizer
    w, b = state.weights[k], state.biases[k]
    m, n = w.shape
    nb = len(y)
    w_eff, b_eff = read_params(state, k, device)
    a_h, h, sat = forward_layer(state, ops, k, x, device, params=(w_eff, b_eff))  # the device's MVM
    count_forward(counts, k, x, m)
    a_t, t, pre, front, s = _target_forward(state, ops, rule, k, t_in, w_eff, b_eff)
    sat += s
    nt = len(t)
    C = state.spec.n_classes
    if pre is None:
        _count_target_forward(d, k, nt, C, m)
    else:
        _count_target_forward(d, k, nt, n, m, n if front is not None else 0, C if front is not None else 0)

    ps = optim.post_scale(opt, lr, nb)
    p_h, p_t, rows, s, zeros = _loss_terms(ops, rule, ps, h, a_h, t, a_t, pos, d, k)
    sat += s

    # every row that steps W (and b): input rows with x, target rows with their presynaptic input
    P, X = [], []
    if p_h is not None:
        P.append(p_h)
        X.append(x)
    front_rows = None  # (p, one-hot rows) stepping the front parameters
    if p_t is not None:
        sel = slice(None) if rows is None else rows
        if pre is None:  # concat: the target rows' input part is zero, their label part steps S;
            # for W and b one row of their exact sum with a zero input is the same update
            P.append(p_t.sum(axis=0, keepdims=True))
            X.append(np.zeros((1, n), x.dtype))
            front_rows = (p_t, t_in[sel])
        else:
            P.append(p_t)
            X.append(pre[sel])
            if front is not None and rule.front == "learned_projection":
                q, s = ops.layer(k).backprop_error(w_eff, p_t, front[0][sel], front[1][sel])
                sat += s
                front_rows = (q, t_in[sel])
                d["error_macs"][k] += len(p_t) * m * n
                d["weight_reads"][k] += len(p_t) * m * n
    P = np.concatenate(P) if len(P) > 1 else P[0]
    X = np.concatenate(X) if len(X) > 1 else X[0]
    key = stream_key(state.rounding_seed, k, state.update_step)
    writes, s = optim.step_layer(state, ops, opt, k, P, X, lr, key, device)
    sat += s
    counted = len(P) - (pre is None and p_t is not None)  # the bias-only sum row is not a MAC row
    _count_update(d, k, P[:counted], X[:counted], m, n)
    d["weight_reads"][k] += m * n + m
    d["weight_writes"][k] += m * n + m
    d["update_writes"][k] += writes
    if front_rows is not None:
        fp, fx = front_rows
        F = state.extra[EXTRA_KEY]["front"]
        fkey = stream_key(state.rounding_seed, state.spec.n_layers, state.update_step)
        fw, s = _step_front(state, ops, opt, fp, fx, lr, fkey)
        sat += s
        _count_update(d, k, fp, fx, F.shape[0], C)
        d["weight_reads"][k] += F.size
        d["weight_writes"][k] += F.size
        d["update_writes"][k] += fw
    d["saturations"][k] += int(sat.sum())
    d["zero_norm_events"][k] += zeros
    ops.check_overflow(sat)
    return h, t


def _output_layer(state, ops, rule, k, x, y, lr, counts, device):
    """The read-out layer: softmax cross-entropy on its pre-activation, detached input."""
    d = counts.data
    opt = rule.optimizer
    w, b = state.weights[k], state.biases[k]
    m, n = w.shape
    nb = len(y)
    w_eff, b_eff = read_params(state, k, device)
    a, _, sat = forward_layer(state, ops, k, x, device, params=(w_eff, b_eff))
    count_forward(counts, k, x, m)
    lr_out = lr * rule.output_lr_scale
    p, s = ops.softmax_ce_post(a, y, optim.post_scale(opt, lr_out, nb))
    sat += s
    d["loss_macs"][k] += nb * m
    d["loss_unit_ops"][k] += 2 * nb * m
    d["act_writes"][k] += nb * m
    key = stream_key(state.rounding_seed, k, state.update_step)
    writes, s = optim.step_layer(state, ops, opt, k, p, x, lr_out, key, device)
    sat += s
    _count_update(d, k, p, x, m, n)
    d["weight_reads"][k] += m * n + m
    d["weight_writes"][k] += m * n + m
    d["update_writes"][k] += writes
    d["saturations"][k] += int(sat.sum())
    ops.check_overflow(sat)


_warned_single = False


def train_batch(state, ops, rule, x, y, lr: float, counts, device=None) -> None:
    """One sigprop step of every layer on the mini-batch ``(x, y)`` (``y``: class indices)."""
    global _warned_single
    if EXTRA_KEY not in state.extra:
        raise ConfigError("rule", "the sigprop front was not initialised (call sigprop.init_extra)")
    y = np.asarray(y, np.int64)
    nb = len(y)
    check_config(state, ops, rule, nb)
    if nb == 1 and rule.targets == "batch" and rule.loss == "in_batch_ce" and not _warned_single:
        log.warning("sigprop with targets='batch' learns nothing from a batch of one sample "
                    "(no other target row to contrast); use targets='classes' or a larger batch")
        _warned_single = True
    L = state.spec.n_layers
    C = state.spec.n_classes
    n_sigprop = L - 1 if rule.inference == "output_layer" else L
    t_rows = np.arange(C) if rule.targets == "classes" else y
    t = _onehot(ops, t_rows, C)
    pos = _positive_rows(rule, y)
    h = x
    for k in range(n_sigprop):
        h, t = _sigprop_layer(state, ops, rule, k, h, t, y, pos, lr, counts, device)
    if n_sigprop < L:
        _output_layer(state, ops, rule, L - 1, h, y, lr, counts, device)
    counts.samples += nb
    counts.update_steps += 1
    state.update_step += 1


# -- read-out ---------------------------------------------------------------------------------
def readout_predictions(state, ops, k: int, h: np.ndarray, counts=None) -> tuple[np.ndarray, np.ndarray]:
    """Target matching at layer ``k``: (predicted class indices, scores ``(B, C)``).

    Ties go to the lowest index. The class-target table ``t^c`` is read like SPELA's class
    vectors (``readout_macs`` and ``class_vector_reads`` of ``B C m``).
    """
    rule = state.extra[EXTRA_KEY]["rule"]
    T = class_targets(state, ops, k)[k]
    scores = ops.readout(h, T)
    if rule.loss == "cosine":
        nrm = np.sqrt((np.asarray(T, np.float64) ** 2).sum(axis=1))
        scores = scores / np.where(nrm > 0, nrm, 1.0)
    elif rule.loss == "l2":
        scores = 2 * scores - (T * T).sum(axis=1)
    pred = np.argmax(scores, axis=1)
    if counts is not None:
        nb, m = h.shape
        n_cls = T.shape[0]
        counts.data["readout_macs"][k] += nb * n_cls * m
        counts.data["class_vector_reads"][k] += nb * n_cls * m
        counts.data["zero_norm_events"][k] += int(np.count_nonzero(~h.any(axis=1)))
    return pred, scores


class SigpropRule(Rule):
    """Sigprop as a :class:`~spela_hw.rules.base.Rule`: the label front is its own state, its
    read-out matches class targets, and with ``inference="output_layer"`` the last layer is read
    out by its logits."""

    spec_type = Sigprop
    init_state = staticmethod(init_extra)
    train_batch = staticmethod(train_batch)
    state_arrays = staticmethod(state_arrays)
    restore_state = staticmethod(restore_state)
    readout_predictions = staticmethod(readout_predictions)

    def logit_readout(self, rule) -> bool:
        return rule.inference == "output_layer"
