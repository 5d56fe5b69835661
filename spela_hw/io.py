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
import math
import os
import tempfile
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .backends import BACKENDS
from .counts import COUNTERS, Counts
from .errors import ConfigError, DivergenceError, ModelFileError, SpelaError
from .rules import restore_rule_state, rule_state_arrays
from .rules.optim import optimizer_state_arrays, restore_optimizer_state
from .specs import ACTIVATIONS, BIAS_INITS, INITS, PrecisionSpec, rule_from_dict, spec_to_dict
from .tempfiles import fsync_dir, remove_stale_temporaries, temporary_prefix

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
    return write_npz_atomic(path, arrays)


def write_npz_atomic(path: Path, arrays: dict) -> Path:
    """Write ``arrays`` as the ``.npz`` archive ``path`` atomically (mode 0644): a temporary file
    moved into place, so a reader never sees half a model and a killed writer leaves no model."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, path.name, recursive=False)  # left by a killed save
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; models are shared like report files
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
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


# -- reading: every field of a file someone handed us is checked before anything is built -------

#: Sane limits of what a model file may ask us to allocate beyond its own arrays.
MAX_CLASSES = 10_000
MAX_ELEMENTS = 1 << 30  # of any one array (weights, class vectors)
_U64 = 1 << 64
#: What NumPy raises on a damaged archive or array header (its header parser tokenizes text).
NPZ_READ_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, SyntaxError,
                   tokenize.TokenError)


def _integer(lo, hi=_U64 - 1):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _optional(check):
    return lambda v: v is None or check(v)


def _one_of(choices):
    return lambda v: isinstance(v, str) and v in choices


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_widths(v) -> bool:
    return isinstance(v, list) and len(v) >= 1 and all(_integer(1, MAX_ELEMENTS)(d) for d in v)


def _is_classes(v) -> bool:
    """Distinct labels, all numbers or all strings, in the sorted order ``np.unique`` gives them."""
    if not isinstance(v, list) or not 2 <= len(v) <= MAX_CLASSES:
        return False
    if not (all(_is_number(c) for c in v) or all(isinstance(c, str) for c in v)):
        return False
    return all(a < b for a, b in zip(v, v[1:]))


def _is_history(v) -> bool:
    return isinstance(v, list) and all(isinstance(r, dict) for r in v)


def _is_table(v) -> bool:
    return isinstance(v, dict)


def _is_counter_table(v) -> bool:
    return (isinstance(v, dict) and set(v) <= set(COUNTERS)
            and all(isinstance(x, list) and all(_integer(0, _U64 // 2 - 1)(n) for n in x) for x in v.values()))


def _meta_fields(estimators) -> dict:
    """field -> (check, what it must be) of the metadata; ``params`` and ``train_counts`` nest."""
    seed = (_integer(0), "a non-negative 64-bit integer")
    table = (_is_table, "a JSON object")
    return {
        "estimator": (_one_of(estimators), f"one of {sorted(estimators)}"),
        "params": table,
        "params.layer_sizes": (_is_widths, f"a non-empty list of positive integers up to {MAX_ELEMENTS}"),
        "params.activation": (_one_of(ACTIVATIONS), f"one of {ACTIVATIONS}"),
        "params.slope": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
        "params.init": (_one_of(INITS), f"one of {INITS}"),
        "params.bias_init": (_one_of(BIAS_INITS), f"one of {BIAS_INITS}"),
        "params.batch_size": (_integer(1, MAX_ELEMENTS), "a positive integer"),
        "params.epochs": (_integer(0, MAX_ELEMENTS), "a non-negative integer"),
        "params.shuffle": (lambda v: isinstance(v, bool), "true or false"),
        "params.backend": (_one_of(BACKENDS), f"one of {BACKENDS}"),
        "params.random_state": (_optional(seed[0]), "null or a non-negative 64-bit integer"),
        "params.class_vector_seed": (_optional(seed[0]), "null or a non-negative 64-bit integer"),
        "rule": table,
        "precision": table,
        "classes": (_is_classes, f"a sorted list of 2 to {MAX_CLASSES} distinct labels, all numbers "
                                 f"or all strings"),
        "n_features_in": (_integer(1, MAX_ELEMENTS), "a positive integer"),
        "class_vector_seed": seed,
        "rounding_seed": seed,
        "update_step": (_integer(0, _U64 - 1), "a non-negative integer"),
        "epochs_done": (_integer(0, MAX_ELEMENTS), "a non-negative integer"),
        "history": (_is_history, "a list of epoch records (JSON objects)"),
        "train_counts": table,
        "train_counts.n_layers": (_integer(1, MAX_ELEMENTS), "a positive integer"),
        "train_counts.phase": (lambda v: v == "train", "'train'"),
        "train_counts.precision": (lambda v: isinstance(v, str), "a string"),
        "train_counts.bits": (lambda v: isinstance(v, dict) and all(_integer(0, 64)(b) for b in v.values()),
                              "a JSON object of bit widths"),
        "train_counts.samples": (_integer(0, _U64 // 2 - 1), "a non-negative integer"),
        "train_counts.update_steps": (_integer(0, _U64 // 2 - 1), "a non-negative integer"),
        "train_counts.data": (_is_counter_table, f"a JSON object of counters ({', '.join(COUNTERS)}), "
                                                 f"each a list of non-negative integers"),
    }


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_meta(path, meta: dict, fields: dict) -> None:
    """Check every field of ``fields`` (dotted names nest) in order; unknown extra fields are fine."""
    for name, (check, must_be) in fields.items():
        parent, _, key = name.rpartition(".")
        table = meta[parent] if parent else meta
        if key not in table:
            raise ModelFileError(f"{path}: field {name!r} is missing")
        if not check(table[key]):
            raise ModelFileError(f"{path}: field {name!r} must be {must_be}, got {_show(table[key])}")


def _spec(path, name: str, build, d):
    """A rule or precision spec from its dict, its errors named as fields of the file."""
    try:
        return build(d)
    except ConfigError as exc:
        raise ModelFileError(f"{path}: field '{name}.{exc.field}': {exc.message}") from None


def _read_arrays(path: Path) -> dict:
    try:
        z = np.load(path, allow_pickle=False)
        if isinstance(z, np.lib.npyio.NpzFile):
            with z:
                arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except NPZ_READ_ERRORS as exc:
        raise ModelFileError(f"{path}: not a readable spela-hw model file ({exc})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ModelFileError(f"{path}: not a spela-hw model file (a bare .npy array, not an .npz archive)")
    odd = [k for k, a in arrays.items() if not isinstance(a, np.ndarray)]
    if odd:  # a zip member that is not a .npy array comes back as bytes
        raise ModelFileError(f"{path}: array {odd[0]!r} is not a NumPy array")
    return arrays


def _read_meta(path: Path, arrays: dict) -> dict:
    meta = arrays.get("meta")
    if meta is None or not isinstance(meta, np.ndarray) or meta.shape != () or meta.dtype.kind != "U":
        raise ModelFileError(f"{path}: missing or corrupt metadata (no 0-d text array 'meta')")
    try:
        meta = json.loads(str(meta))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: corrupt metadata: not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: corrupt metadata: not a JSON object")
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a spela-hw model (field 'format' is {_show(meta.get('format'))})")
    if meta.get("version") != VERSION or isinstance(meta.get("version"), bool):
        raise ModelFileError(f"{path}: field 'version': model format version {_show(meta.get('version'))}; "
                             f"this spela-hw reads version {VERSION}")
    return meta


def _layer_arrays(path, meta: dict, arrays: dict) -> tuple[list, list]:
    """Each layer's stored weights and biases, their shapes checked against the metadata."""
    sizes = meta["params"]["layer_sizes"]
    dims = [meta["n_features_in"], *sizes]
    expected = {f"{kind}_{k}" for k in range(len(sizes)) for kind in ("weight", "bias")}
    present = {name for name in arrays if name.startswith(("weight_", "bias_"))}
    if present != expected:
        odd = sorted(present ^ expected)[0]
        what = "missing" if odd in expected else "not expected"
        raise ModelFileError(f"{path}: array {odd!r} is {what}: field 'params.layer_sizes' lists "
                             f"{len(sizes)} layers, the file stores {len(present) // 2}")
    weights, biases = [], []
    for k in range(len(sizes)):
        for name, shape in ((f"weight_{k}", (dims[k + 1], dims[k])), (f"bias_{k}", (dims[k + 1],))):
            a = arrays[name]
            if a.shape != shape:
                raise ModelFileError(f"{path}: array {name!r} has shape {a.shape}, but fields "
                                     f"'n_features_in' and 'params.layer_sizes' give {shape}")
        weights.append(arrays[f"weight_{k}"])
        biases.append(arrays[f"bias_{k}"])
    if len(meta["classes"]) * max(sizes) > MAX_ELEMENTS:
        raise ModelFileError(f"{path}: field 'classes': {len(meta['classes'])} class vectors of up to "
                             f"{max(sizes)} entries exceed {MAX_ELEMENTS} elements")
    if meta["train_counts"]["n_layers"] != len(sizes) or any(
            len(v) != len(sizes) for v in meta["train_counts"]["data"].values()):
        raise ModelFileError(f"{path}: field 'train_counts' does not count {len(sizes)} layers")
    return weights, biases


_MOMENTS = {"sgd": ("u_w", "u_b"), "adam": ("m_w", "m_b", "v_w", "v_b")}


def _optimizer_slot(name: str) -> tuple[str, str] | None:
    """``(owner, slot)`` of an optimiser-state array (``optim.kind`` -> ``("", "kind")``), else None."""
    if name.startswith("sigprop.optim."):
        return "sigprop", name.removeprefix("sigprop.optim.")
    if name.startswith("optim."):
        owner, _, slot = name.removeprefix("optim.").rpartition(".")
        return owner, slot
    return None


def _check_optimizer_arrays(path, state, rule, arrays: dict) -> None:
    """Optimiser state arrays: known names, complete per layer, shaped like their parameters, finite."""
    kind = rule.optimizer.kind
    params = {str(k): (w, b) for k, (w, b) in enumerate(zip(state.weights, state.biases))}
    front = state.extra.get("sigprop", {}).get("front")
    if front is not None:
        params["sigprop"] = (front, front[:, 0])  # the front has no bias: its bias moments are per row
    slots: dict[str, set] = {}
    for name, a in arrays.items():
        found = _optimizer_slot(name)
        if found is None:
            continue
        owner, slot = found
        if slot == "kind":
            ok = owner in ("", "sigprop") and a.shape == () and a.dtype.kind == "U" and str(a) == kind
            must_be = f"{kind!r}, the optimizer of field 'rule'"
        elif owner not in params:
            ok, must_be = False, "named after a layer index"
        elif slot == "t":
            ok = a.shape == () and a.dtype.kind in "iu" and int(a) >= 0
            must_be = "a non-negative integer step count"
        else:
            like = params[owner][0 if slot.endswith("w") else 1]
            ok = (slot in _MOMENTS[kind] and a.shape == like.shape and a.dtype == np.float32
                  and bool(np.all(np.isfinite(a))))
            must_be = f"one of {_MOMENTS[kind]}: finite float32 shaped {like.shape}"
        if not ok:
            raise ModelFileError(f"{path}: array {name!r} must be {must_be}, got {a.dtype}{a.shape}")
        slots.setdefault(owner, set()).add(slot)
    for owner, have in slots.items():
        want = {"t", *_MOMENTS[kind]} | ({"kind"} if owner == "sigprop" else set())
        if owner and have != want:
            prefix = "sigprop.optim." if owner == "sigprop" else f"optim.{owner}."
            raise ModelFileError(f"{path}: array '{prefix}{sorted(want - have)[0]}' is missing")
    if any(slots) and "" not in slots:
        raise ModelFileError(f"{path}: array 'optim.kind' is missing")


def _conv_meta(arrays: dict) -> dict | None:
    """The metadata of a conv model's file (format ``spela-hw-conv-model``), else None."""
    meta = arrays.get("meta")
    if not isinstance(meta, np.ndarray) or meta.shape != () or meta.dtype.kind != "U":
        return None
    try:
        meta = json.loads(str(meta))
    except (json.JSONDecodeError, RecursionError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == "spela-hw-conv-model" else None


def load_model(path):
    """Read a model written by :func:`save_model`.

    Every metadata field and array is checked before the model is built, so a file that was
    edited, truncated or made up never allocates more than it holds nor gives a traceback.

    Raises
    ------
    ModelFileError
        Naming the file and the field or array that is wrong.
    """
    from . import estimator as est

    path = Path(path)
    arrays = _read_arrays(path)
    conv = _conv_meta(arrays)
    if conv is not None:  # a conv network's file (spela_hw.conv.io)
        from .conv.io import load_conv_model

        return load_conv_model(path, arrays, conv)
    meta = _read_meta(path, arrays)
    estimators = {c.__name__: c for c in (est.Classifier, est.SpelaClassifier, est.BackpropClassifier)}
    _check_meta(path, meta, _meta_fields(estimators))
    rule = _spec(path, "rule", rule_from_dict, meta["rule"])
    precision = _spec(path, "precision", PrecisionSpec.from_dict, meta["precision"])
    weights, biases = _layer_arrays(path, meta, arrays)
    params = {k: meta["params"][k] for k in _PARAMS}
    params["layer_sizes"] = tuple(params["layer_sizes"])
    clf = estimators[meta["estimator"]](**params, rule=rule, precision=precision)
    clf.class_vector_seed = meta["class_vector_seed"]
    try:
        clf._initialize(meta["n_features_in"], np.asarray(meta["classes"]))
    except ConfigError as exc:
        raise ModelFileError(f"{path}: field 'params.{exc.field}': {exc.message}") from None
    st = clf.state_
    for k, (w, b) in enumerate(zip(weights, biases)):
        if w.dtype != st.weights[k].dtype or b.dtype != st.biases[k].dtype:
            raise ModelFileError(f"{path}: arrays 'weight_{k}', 'bias_{k}' stored as {w.dtype}, {b.dtype}; "
                                 f"field 'precision' gives {st.weights[k].dtype}")
        if w.dtype.kind == "f" and not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ModelFileError(f"{path}: arrays 'weight_{k}', 'bias_{k}' hold NaN or inf")
        fmt = clf.precision_.weight
        if fmt is not None and (min(w.min(), b.min()) < fmt.min_int or max(w.max(), b.max()) > fmt.max_int):
            raise ModelFileError(f"{path}: arrays 'weight_{k}', 'bias_{k}' hold codes outside the weight "
                                 f"format {fmt} of field 'precision'")
        st.weights[k][...] = w
        st.biases[k][...] = b
    _check_optimizer_arrays(path, st, clf.rule_, arrays)
    restore_optimizer_state(st, arrays)
    try:
        restore_rule_state(clf.rule_, st, arrays)
    except SpelaError as exc:
        raise ModelFileError(f"{path}: array {exc}") from None
    st.rounding_seed = int(meta["rounding_seed"])
    st.update_step = int(meta["update_step"])
    clf.epochs_done_ = int(meta["epochs_done"])
    clf.history_ = list(meta["history"])
    clf.train_counts_ = Counts.from_dict(meta["train_counts"])
    return clf
