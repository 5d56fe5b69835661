"""Saving and loading conv models without pickle (format ``spela-hw-conv-model`` version 1).

One ``.npz`` archive (read with ``allow_pickle=False``) holding ``meta`` (a JSON document: format,
version, estimator, hyper-parameters, the network description ``spec``, ``rule``,
``conv_optimizer``, ``precision``, ``classes``, ``n_features_in``, ``seeds``, ``step`` (the conv blocks' update counter, which keys their
stochastic rounding), ``dense_update_steps`` (the same of each dense SPELA layer),
``epochs_done``, ``history``) and the arrays: ``block<k>.<name>`` (conv weights and biases,
BatchNorm's scale, shift and running statistics, the trainable projections), ``dense<k>.w`` /
``dense<k>.b`` and the optimiser state ``optim.<name>``. Groups, group vectors, class vectors
and fixed projections are regenerated from the seeds, as hardware may. :func:`spela_hw.io.load_model`
reads these files too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ModelFileError
from ..io import _read_arrays, _show, model_path, write_npz_atomic
from ..rules.optim import optimizer_state_arrays, restore_optimizer_state
from ..specs import PrecisionSpec, rule_from_dict, spec_to_dict
from .description import ConvNetSpec
from .estimator import SEED_NAMES

__all__ = ["FORMAT", "VERSION", "load_conv_model", "save_conv_model"]

FORMAT = "spela-hw-conv-model"
VERSION = 1
_PARAMS = ("net", "input_shape", "norm", "conv_target", "projection_dim", "slope", "conv_epochs", "batch_size",
           "epochs", "shuffle", "random_state")


def _param_arrays(clf) -> dict:
    """Every stored array of a fitted conv classifier, by its name in the file."""
    st = clf.state_
    arrays = {}
    if st.fixed is not None:  # integer codes; the float blocks only seeded them
        for k, fb in enumerate(st.fixed):
            arrays[f"block{k}.w"], arrays[f"block{k}.b"] = fb.w, fb.conv.biases[0]
            if clf.spec_.conv_target == "projection":
                arrays[f"block{k}.projection"] = np.stack(fb.proj.weights)
    for k, b in enumerate(st.blocks if st.fixed is None else ()):
        for name in ("w", "b", "gamma", "beta", "running_mean", "running_var"):
            if getattr(b, name) is not None:
                arrays[f"block{k}.{name}"] = getattr(b, name)
        if clf.spec_.conv_target == "projection" and b.projection is not None:
            arrays[f"block{k}.projection"] = b.projection
    if clf.rule_.name == "backprop":
        for j, (w, b) in enumerate(st.dense):
            arrays[f"dense{j}.w"], arrays[f"dense{j}.b"] = w, b
    else:
        for j, layer in enumerate(st.dense):
            arrays[f"dense{j}.w"], arrays[f"dense{j}.b"] = layer.state.weights[0], layer.state.biases[0]
    return arrays


def _unstacked(clf, name: str, array):
    """The live arrays behind a stored name: a fixed-point block's projections are one per channel."""
    if name.endswith(".projection"):
        return clf.state_.fixed[int(name[5:name.index(".")])].proj.weights
    return array


def save_conv_model(clf, path) -> Path:
    """Write a fitted conv classifier to :func:`spela_hw.io.model_path` of ``path``, atomically."""
    clf._check_fitted()
    path = model_path(path)
    meta = {
        "format": FORMAT, "version": VERSION, "estimator": type(clf).__name__,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in ((k, getattr(clf, k)) for k in _PARAMS)},
        "spec": clf.spec_.to_dict(), "rule": spec_to_dict(clf.rule_),
        "conv_optimizer": {"kind": clf.conv_optimizer_.kind, **spec_to_dict(clf.conv_optimizer_)},
        "precision": clf.precision_.to_dict(), "classes": [c.item() for c in clf.classes_],
        "n_features_in": int(clf.n_features_in_), "seeds": clf.seeds_, "step": int(clf.state_.step),
        "dense_update_steps": [] if clf.rule_.name == "backprop" else [int(layer.state.update_step)
                                                                      for layer in clf.state_.dense],
        "epochs_done": int(clf.epochs_done_), "history": clf.history_,
    }
    arrays = {"meta": np.array(json.dumps(meta))}
    arrays.update(_param_arrays(clf))
    for name, v in clf.state_.optim.items():
        arrays[f"optim.{name}"] = np.asarray(v)
    for prefix, layer in _fixed_layers(clf):
        arrays.update({prefix + k: v for k, v in optimizer_state_arrays(layer).items()})
    return write_npz_atomic(path, arrays)


def _fixed_layers(clf):
    """``(array-name prefix, layer)`` of every fixed-point layer that may hold optimiser state."""
    for k, fb in enumerate(clf.state_.fixed or ()):
        yield f"fixed{k}.conv.", fb.conv
        yield f"fixed{k}.proj.", fb.proj


def load_conv_model(path, arrays: dict | None = None, meta: dict | None = None):
    """Read a conv model written by :func:`save_conv_model`; errors name the file and the field."""
    from ..specs import Adam, Sgd
    from . import estimator as est

    path = Path(path)
    if arrays is None:
        arrays = _read_arrays(path)
        meta = json.loads(str(arrays["meta"])) if "meta" in arrays else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a spela-hw conv model")
    if meta.get("version") != VERSION:
        raise ModelFileError(f"{path}: field 'version': conv model format version {_show(meta.get('version'))}; "
                             f"this spela-hw reads version {VERSION}")
    estimators = {c.__name__: c for c in (est.ConvClassifier, est.ConvSpelaClassifier, est.ConvBackpropClassifier)}
    try:
        for name in ("estimator", "params", "spec", "rule", "conv_optimizer", "precision", "classes",
                     "n_features_in", "seeds", "step", "dense_update_steps", "epochs_done", "history"):
            if name not in meta:
                raise ConfigError(name, "missing")
        if meta["estimator"] not in estimators:
            raise ConfigError("estimator", f"must be one of {sorted(estimators)}, got {_show(meta['estimator'])}")
        spec = ConvNetSpec.from_dict(meta["spec"])
        rule = rule_from_dict(meta["rule"])
        opt = dict(meta["conv_optimizer"])
        kind = opt.pop("kind", None)
        if kind not in ("sgd", "adam"):
            raise ConfigError("conv_optimizer.kind", f"must be 'sgd' or 'adam', got {_show(kind)}")
        conv_opt = (Sgd if kind == "sgd" else Adam)(**opt)
        precision = PrecisionSpec.from_dict(meta["precision"])
        params = dict(meta["params"])
        params.setdefault("conv_epochs", None)  # files written before conv_epochs existed
        if set(params) != set(_PARAMS):
            raise ConfigError("params", f"must hold exactly {_PARAMS}")
        if params["input_shape"] is not None:
            params["input_shape"] = tuple(params["input_shape"])
        clf = estimators[meta["estimator"]](**params, rule=rule, precision=precision,
                                            conv_optimizer=conv_opt if rule.name == "spela" else None)
        seeds = meta["seeds"]
        if not isinstance(seeds, dict) or set(seeds) != set(SEED_NAMES) or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64 for v in seeds.values()):
            raise ConfigError("seeds", f"must map {SEED_NAMES} to non-negative 64-bit integers")
        clf._initialize(int(meta["n_features_in"]), np.asarray(meta["classes"]), seeds)
        if clf.spec_ != spec:
            raise ConfigError("spec", f"does not match the hyper-parameters: {spec.net} vs {clf.spec_.net}")
    except (ConfigError, TypeError, ValueError) as exc:
        field = getattr(exc, "field", None)
        raise ModelFileError(f"{path}: field {field!r}: {getattr(exc, 'message', exc)}" if field
                             else f"{path}: bad metadata ({exc})") from None
    expected = _param_arrays(clf)
    stored = {k for k in arrays if k.startswith(("block", "dense"))}
    if stored != set(expected):
        odd = min(stored ^ set(expected))
        raise ModelFileError(f"{path}: array {odd!r} is {'missing' if odd in expected else 'not expected'}")
    if clf.state_.fixed is not None:
        expected = {n: _unstacked(clf, n, a) for n, a in expected.items()}
    for name, target in expected.items():
        a = arrays[name]
        want = np.stack(target) if isinstance(target, list) else target
        if a.shape != want.shape or a.dtype != want.dtype:
            raise ModelFileError(f"{path}: array {name!r} is {a.dtype}{a.shape}, the network needs "
                                 f"{want.dtype}{want.shape}")
        fmt = clf.precision_.weight
        if fmt is not None and a.dtype.kind == "i" and a.size and (a.min() < fmt.min_int or a.max() > fmt.max_int):
            raise ModelFileError(f"{path}: array {name!r} holds codes outside the weight format {fmt}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ModelFileError(f"{path}: array {name!r} holds NaN or inf")
        if isinstance(target, list):  # a fixed-point block's projections, one array per channel
            for c, t in enumerate(target):
                t[...] = a[c]
        else:
            target[...] = a
    for name, a in arrays.items():
        if name.startswith("optim."):
            key = name.removeprefix("optim.")
            clf.state_.optim[key] = int(a) if key.endswith(".t") else np.array(a, np.float32)
    for prefix, layer in _fixed_layers(clf):
        part = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
        restore_optimizer_state(layer, part)
    clf.state_.step = int(meta["step"])
    steps = meta["dense_update_steps"]
    if clf.rule_.name == "spela":
        if not isinstance(steps, list) or len(steps) != len(clf.state_.dense) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in steps):
            raise ModelFileError(f"{path}: field 'dense_update_steps' must list one non-negative count "
                                 f"per dense layer ({len(clf.state_.dense)})")
        for layer, n in zip(clf.state_.dense, steps):
            layer.state.update_step = n
    clf.epochs_done_ = int(meta["epochs_done"])
    clf.history_ = list(meta["history"])
    return clf
