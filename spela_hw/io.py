"""Saving and loading trained models without pickle.

File format ``spela-hw-model`` version 1: one ``.npz`` archive (read with
``allow_pickle=False``) holding

* ``meta``: a 0-d unicode array with a JSON document: ``format``, ``version``, the estimator
  class and its hyper-parameters (rule and precision as plain dicts), ``classes``,
  ``n_features_in``, ``class_vector_seed``, ``rounding_seed``, ``update_step``, ``epochs_done``,
  ``history`` and ``train_counts``;
* ``weight_<k>``, ``bias_<k>``: each layer's parameters exactly as stored (float32, or the
  integer codes of the weight format), so a fixed-point model reloads bit for bit;
* ``optim.*``: optimiser state (momentum, Adam moments and step counts) when the rule has any,
  so training resumes exactly.

Class vectors are not stored: they are regenerated from ``class_vector_seed`` (as hardware
may). Opening a file can never run code.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .counts import Counts
from .errors import DivergenceError, ModelFileError, SpelaError
from .rules import restore_rule_state, rule_state_arrays
from .rules.optim import optimizer_state_arrays, restore_optimizer_state
from .specs import PrecisionSpec, rule_from_dict, spec_to_dict

__all__ = ["save_model", "load_model", "model_path", "read_training_data", "FORMAT", "VERSION"]

FORMAT = "spela-hw-model"
VERSION = 1
_PARAMS = ("layer_sizes", "activation", "slope", "init", "bias_init", "batch_size", "epochs",
           "shuffle", "backend", "random_state", "class_vector_seed")


def _classes_to_json(classes):
    return [c.item() if hasattr(c, "item") else c for c in classes]


def model_path(path) -> Path:
    """The file :func:`save_model` writes for ``path``: ``path`` itself if it ends in ``.npz``,
    else ``path`` with ``.npz`` appended (``mymodel`` -> ``mymodel.npz``, ``a.b`` -> ``a.b.npz``)."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def save_model(clf, path, training_data: dict | None = None) -> Path:
    """Write a fitted classifier to :func:`model_path` of ``path``, atomically (mode 0644).

    ``training_data`` (optional, JSON-able, e.g. ``{"dataset": "mnist", "limit_train": 600}``)
    is stored as the metadata field ``training_data`` so that a resumed run can check it uses
    the same data (see :func:`read_training_data`). Refuses float weights holding NaN or inf, so a
    diverged model never replaces a good checkpoint.
    """
    clf._check_fitted()
    if clf.device is not None:
        raise SpelaError("models trained with a device model are saved by sim, not here")
    st = clf.state_
    path = model_path(path)
    for k, (w, b) in enumerate(zip(st.weights, st.biases)):
        if w.dtype.kind == "f" and not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise DivergenceError(f"{path}: not saved: layer {k + 1} holds NaN or inf weights")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "estimator": type(clf).__name__,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                   ((k, getattr(clf, k)) for k in _PARAMS)},
        "rule": spec_to_dict(clf.rule_),
        "precision": clf.precision_.to_dict(),
        "classes": _classes_to_json(clf.classes_),
        "n_features_in": int(clf.n_features_in_),
        "class_vector_seed": int(st.class_vector_seed),
        "rounding_seed": int(st.rounding_seed),
        "update_step": int(st.update_step),
        "epochs_done": int(clf.epochs_done_),
        "history": clf.history_,
        "train_counts": clf.train_counts_.to_dict(),
    }
    if training_data is not None:
        meta["training_data"] = training_data
    arrays = {"meta": np.array(json.dumps(meta))}
    for k, (w, b) in enumerate(zip(st.weights, st.biases)):
        arrays[f"weight_{k}"] = w
        arrays[f"bias_{k}"] = b
    arrays.update(optimizer_state_arrays(st))
    arrays.update(rule_state_arrays(clf.rule_, st))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; models are shared like report files
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _unwritable(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _unwritable(path, exc: OSError) -> ModelFileError:
    return ModelFileError(f"{path}: cannot write the model file ({exc.strerror or exc})")


def read_training_data(path) -> dict:
    """The ``training_data`` metadata field of a model file (``{}`` in files written without it).

    Call it after :func:`load_model` has checked the file.
    """
    with np.load(Path(path), allow_pickle=False) as z:
        data = json.loads(str(z["meta"])).get("training_data")
    return data if isinstance(data, dict) else {}


def load_model(path):
    """Read a model written by :func:`save_model`; errors name the file and what is wrong."""
    from . import estimator as est

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{path}: not a readable spela-hw model file ({exc})") from None
    try:
        meta = json.loads(str(arrays["meta"]))
    except (KeyError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: missing or corrupt metadata ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a spela-hw model (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise ModelFileError(f"{path}: model format version {meta.get('version')!r}; this spela-hw "
                             f"reads version {VERSION}")
    classes_by_name = {c.__name__: c for c in (est.Classifier, est.SpelaClassifier, est.BackpropClassifier)}
    try:
        cls = classes_by_name[meta["estimator"]]
        params = dict(meta["params"])
        params["layer_sizes"] = tuple(params["layer_sizes"])
        clf = cls(**params, rule=rule_from_dict(meta["rule"]),
                  precision=PrecisionSpec.from_dict(meta["precision"]))
        clf.class_vector_seed = meta["class_vector_seed"]
        n_layers = len(params["layer_sizes"])
        weights = [arrays[f"weight_{k}"] for k in range(n_layers)]
        biases = [arrays[f"bias_{k}"] for k in range(n_layers)]
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: incomplete model file (missing {exc})") from None
    clf._initialize(meta["n_features_in"], np.asarray(meta["classes"]))
    st = clf.state_
    for k, (w, b) in enumerate(zip(weights, biases)):
        if w.shape != st.weights[k].shape or b.shape != st.biases[k].shape:
            raise ModelFileError(f"{path}: layer {k} has shape {w.shape}, expected {st.weights[k].shape}")
        if w.dtype != st.weights[k].dtype or b.dtype != st.biases[k].dtype:
            raise ModelFileError(f"{path}: layer {k} stored as {w.dtype}, expected {st.weights[k].dtype}")
        if w.dtype.kind == "f" and not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ModelFileError(f"{path}: layer {k} holds NaN or inf")
        fmt = clf.precision_.weight
        if fmt is not None and (min(w.min(), b.min()) < fmt.min_int or max(w.max(), b.max()) > fmt.max_int):
            raise ModelFileError(f"{path}: layer {k} holds codes outside the weight format {fmt}")
        st.weights[k][...] = w
        st.biases[k][...] = b
    restore_optimizer_state(st, arrays)
    try:
        restore_rule_state(clf.rule_, st, arrays)
    except SpelaError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    st.rounding_seed = int(meta["rounding_seed"])
    st.update_step = int(meta["update_step"])
    clf.epochs_done_ = int(meta["epochs_done"])
    clf.history_ = list(meta["history"])
    clf.train_counts_ = Counts.from_dict(meta["train_counts"])
    return clf
