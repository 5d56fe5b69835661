"""A model file someone edited: every field is checked, the error names the file and the field."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from spela_hw import BackpropClassifier, ModelFileError, PrecisionSpec, SpelaClassifier
from spela_hw.io import load_model
from spela_hw.specs import Adam, Backprop


def _toy(n=40, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype(np.float32), rng.integers(0, c, n)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny fitted float32 SPELA model and an 8-bit backprop model with Adam state."""
    X, y = _toy()
    folder = tmp_path_factory.mktemp("models")
    spela = SpelaClassifier((5, 3), random_state=0).fit(X, y).save(folder / "spela.npz")
    adam = BackpropClassifier((5, 3), precision=PrecisionSpec.fixed(8), rule=Backprop(Adam(0.01)),
                              batch_size=5, random_state=0).fit(X, y).save(folder / "adam.npz")
    return {"spela": spela, "adam": adam}


def rewrite(src, dst, edit_meta=None, edit_arrays=None):
    """Copy model file ``src`` to ``dst`` with its metadata and arrays edited."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    if edit_meta:
        edit_meta(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    if edit_arrays:
        edit_arrays(arrays)
    np.savez(dst, **arrays)
    return dst


def drop(name):
    def edit(meta):
        *parents, key = name.split(".")
        table = meta
        for p in parents:
            table = table[p]
        del table[key]
    return edit


def put(name, value):
    def edit(meta):
        *parents, key = name.split(".")
        table = meta
        for p in parents:
            table = table[p]
        table[key] = value
    return edit


MISSING = ["n_features_in", "rounding_seed", "history", "train_counts", "class_vector_seed", "epochs_done",
           "update_step", "classes", "estimator", "params", "rule", "precision", "params.layer_sizes",
           "params.batch_size", "params.shuffle", "train_counts.data"]


@pytest.mark.parametrize("field", MISSING)
def test_a_missing_field_is_named(saved, tmp_path, field):
    path = rewrite(saved["spela"], tmp_path / "edited.npz", drop(field))
    with pytest.raises(ModelFileError, match=rf"edited\.npz: field '{field}' is missing"):
        load_model(path)


WRONG = [
    ("n_features_in", "abc"), ("n_features_in", 0), ("n_features_in", 6.0), ("n_features_in", True),
    ("rounding_seed", -1), ("rounding_seed", "7"), ("rounding_seed", 2**64), ("class_vector_seed", [1]),
    ("update_step", 1.5), ("epochs_done", -2), ("epochs_done", None), ("history", 5), ("history", [1, 2]),
    ("classes", "abc"), ("classes", [0]), ("classes", [2, 1, 0]), ("classes", [0, "a", 2]), ("classes", [0, 0, 1]),
    ("classes", [0, True, 2]), ("estimator", "Pickle"), ("params", [1]), ("rule", "spela"), ("precision", 8),
    ("params.layer_sizes", [10**12]), ("params.layer_sizes", [-5, 3]), ("params.layer_sizes", "5,3"),
    ("params.layer_sizes", []), ("params.batch_size", "1"), ("params.epochs", -1), ("params.shuffle", "yes"),
    ("params.slope", "0.1"), ("params.slope", 2.0), ("params.activation", "relu6"), ("params.backend", "gpu"),
    ("params.random_state", -3), ("train_counts.samples", "many"), ("train_counts.phase", "infer"),
    ("train_counts.data", {"forward_macs": ["x", 1]}), ("train_counts.data", {"no_such_counter": [1, 1]}),
    ("train_counts.bits", {"weight": "eight"}),
]


@pytest.mark.parametrize("field, value", WRONG, ids=[f"{f}={v!r}"[:40] for f, v in WRONG])
def test_a_wrong_value_is_named(saved, tmp_path, field, value):
    path = rewrite(saved["spela"], tmp_path / "edited.npz", put(field, value))
    with pytest.raises(ModelFileError, match=rf"edited\.npz: field '{field}' must be"):
        load_model(path)


SPECS = [
    ("rule", {"rule": "spela", "optimizer": {"kind": "sgd", "lr": "fast"}}, "rule.optimizer.lr"),
    ("rule", {"rule": "spela", "optimizer": {"kind": "sgd", "lr": 0.1, "bogus": 1}}, "rule.optimizer.bogus"),
    ("rule", {"rule": "spela", "optimizer": "sgd"}, "rule.optimizer.kind"),
    ("rule", {"rule": "spela", "loss": 3}, "rule.loss"),
    ("rule", {"rule": ["spela"]}, "rule.rule"),
    ("rule", {"rule": "spela", "colour": "red"}, "rule.colour"),
    ("precision", {"weight": 5}, "precision.weight.format"),
    ("precision", {"weight": {"bits": 8}}, "precision.weight.frac_bits"),
    ("precision", {"weight_exponents": "x"}, "precision.weight_exponents"),
    ("precision", {"colour": None}, "precision.colour"),
]


@pytest.mark.parametrize("field, value, named", SPECS, ids=[n for _, _, n in SPECS])
def test_a_malformed_rule_or_precision_is_named(saved, tmp_path, field, value, named):
    path = rewrite(saved["spela"], tmp_path / "edited.npz", put(field, value))
    with pytest.raises(ModelFileError, match=rf"edited\.npz: field '{named}'"):
        load_model(path)


def _set(name, value):
    return lambda arrays: arrays.__setitem__(name, value)


ARRAYS = [
    ("extra layer", lambda a: a.update(weight_2=np.zeros((3, 3), np.float32), bias_2=np.zeros(3, np.float32)),
     "(weight|bias)_2"),
    ("missing bias", lambda a: a.pop("bias_1"), "bias_1"),
    ("wrong shape", lambda a: a.__setitem__("weight_0", a["weight_0"][:, :2]), "weight_0"),
    ("wrong dtype", lambda a: a.__setitem__("weight_1", a["weight_1"].astype(np.float64)), "weight_1"),
    ("NaN", lambda a: a["bias_0"].__setitem__(0, np.nan), "bias_0"),
    ("text weights", lambda a: a.__setitem__("weight_0", np.full((5, 6), "w")), "weight_0"),
    ("meta not text", lambda a: a.__setitem__("meta", np.zeros(3)), "meta"),
]


@pytest.mark.parametrize("edit, named", [(e, n) for _, e, n in ARRAYS], ids=[i for i, _, _ in ARRAYS])
def test_a_corrupt_array_is_named(saved, tmp_path, edit, named):
    path = rewrite(saved["spela"], tmp_path / "edited.npz", edit_arrays=edit)
    with pytest.raises(ModelFileError, match=rf"edited\.npz: .*'?{named}"):
        load_model(path)


OPTIM = [
    ("moment shape", lambda a: a.__setitem__("optim.0.m_w", np.zeros((2, 2), np.float32)), "optim.0.m_w"),
    ("moment NaN", lambda a: a["optim.1.v_b"].__setitem__(0, np.nan), "optim.1.v_b"),
    ("bad layer", lambda a: a.__setitem__("optim.x.m_w", np.zeros(3, np.float32)), "optim.x.m_w"),
    ("other kind", lambda a: a.__setitem__("optim.kind", np.array("sgd")), "optim.kind"),
    ("step count text", lambda a: a.__setitem__("optim.0.t", np.array("ten")), "optim.0.t"),
    ("incomplete", lambda a: a.pop("optim.1.m_b"), "optim.1.m_b"),
]


@pytest.mark.parametrize("edit, named", [(e, n) for _, e, n in OPTIM], ids=[i for i, _, _ in OPTIM])
def test_corrupt_optimizer_state_is_named(saved, tmp_path, edit, named):
    path = rewrite(saved["adam"], tmp_path / "edited.npz", edit_arrays=edit)
    with pytest.raises(ModelFileError, match=rf"edited\.npz: array '{named}'"):
        load_model(path)


def test_absurd_layer_sizes_are_refused_before_any_allocation(saved, tmp_path):
    path = rewrite(saved["spela"], tmp_path / "huge.npz", put("params.layer_sizes", [10**6, 3]))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"huge\.npz: .*'params\.layer_sizes'"):
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5e6  # the model itself is a few hundred bytes; 10**6 x 6 floats would be 24 MB


def test_unknown_extra_fields_are_accepted_and_the_model_round_trips(saved, tmp_path):
    path = rewrite(saved["adam"], tmp_path / "extra.npz", put("dataset", "mnist"))
    X, _ = _toy()
    np.testing.assert_array_equal(load_model(path).predict(X), load_model(saved["adam"]).predict(X))


@pytest.mark.parametrize("offset", [78, 118, 122])
def test_a_damaged_array_header_is_named(saved, tmp_path, offset):
    """One flipped bit in an .npy header made NumPy's header parser raise tokenize.TokenError."""
    raw = bytearray(saved["spela"].read_bytes())
    raw[offset] ^= 1
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=r"flipped\.npz: not a readable"):
        load_model(path)


def test_a_bare_npy_is_not_a_model(tmp_path):
    path = tmp_path / "array.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ModelFileError, match=r"array\.npz: .*bare \.npy"):
        load_model(path)
