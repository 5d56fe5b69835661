"""Fuzz every reader of files users hand us: never a traceback, always a named error.

Corrupted model files (metadata fields deleted or given random JSON values, arrays of the wrong
dtype or shape or holding NaN, truncated or random bytes), corrupted TOML files (random bytes,
non-UTF-8 text, valid TOML with random keys and values against each reader) and corrupted dataset
files (truncated, flipped bytes, forged headers, random garbage). A reader either accepts the
file (a harmless edit) and returns something usable, or raises the project's error type whose
message names the file and, where one field was changed, that field.

``TALLY`` counts, per kind of bad input, how many were tried, rejected, and rejected naming the
file and the field; run with ``-s`` to print it.
"""

from __future__ import annotations

import collections
import gzip
import json
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports.config import ReportConfig
from reports.sweep import SweepConfig
from sim import load_hardware_toml, preset_dict
from spela_hw import BackpropClassifier, PrecisionSpec, SpelaClassifier
from spela_hw.datasets import dataset_info
from spela_hw.datasets.loader import _read_pair
from spela_hw.errors import ConfigError, DataError, ModelFileError
from spela_hw.io import load_model
from spela_hw.specs import Adam, Backprop

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# kind -> Counter(tried, accepted, rejected, named): the figures of the reliability section
TALLY: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module", autouse=True)
def _print_tally():
    yield
    for kind, c in sorted(TALLY.items()):
        print(f"\n{kind:36s} tried {c['tried']:4d}  accepted {c['accepted']:4d}  "
              f"rejected {c['rejected']:4d}  named {c['named']:4d} (field exactly {c['named exactly']:4d})", end="")


def check(kind, read, path, error, field=None, use=None):
    """Run ``read(path)``: it returns (then ``use`` the result) or raises ``error`` naming the file and
    the dotted ``field`` (or the table holding it: a table of bit widths is checked as a whole)."""
    TALLY[kind]["tried"] += 1
    try:
        result = read(path)
    except error as exc:
        message = str(exc)
        TALLY[kind]["rejected"] += 1
        assert path.name in message, message
        if field is not None:
            parts = field.split(".")
            named = [".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in message]
            assert named, f"{field!r} not named in: {message}"
            TALLY[kind]["named exactly"] += named[0] == field
        TALLY[kind]["named"] += 1
        return
    TALLY[kind]["accepted"] += 1
    if use is not None:
        use(result)


# -- values ------------------------------------------------------------------------------------------
_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("éπ中"), max_size=8)
_SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.sampled_from([0, 1, -1, 2**63, 10**12])
            | st.floats(allow_nan=True, allow_infinity=True) | _TEXT)
JSON_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=6)
TOML_VALUES = st.recursive(_SCALARS.filter(lambda v: v is not None),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                           max_leaves=6)


def _paths(d, prefix=""):
    """Dotted paths of every entry of a nested dict."""
    for k, v in d.items():
        yield prefix + k
        if isinstance(v, dict):
            yield from _paths(v, prefix + k + ".")


def _edit(doc, path, value=None, delete=False):
    *parents, key = path.split(".")
    table = doc
    for p in parents:
        table = table[p]
    if delete:
        del table[key]
    else:
        table[key] = value


class Quiet(tuple):
    """A fixture value with a short repr (hypothesis prints its arguments when a case fails)."""

    def __repr__(self):
        return "<fixture>"


# -- model files -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two tiny fitted models (float32 SPELA, 8-bit backprop with Adam state), as (meta, arrays)."""
    rng = np.random.default_rng(0)
    X, y = rng.random((30, 6)).astype(np.float32), rng.integers(0, 3, 30)
    folder = tmp_path_factory.mktemp("fuzz-models")
    out = []
    for clf in (SpelaClassifier((5, 3), random_state=0),
                BackpropClassifier((5, 3), precision=PrecisionSpec.fixed(8), rule=Backprop(Adam(0.01)),
                                   batch_size=5, random_state=0)):
        path = clf.fit(X, y).save(folder / "base.npz")
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        out.append((json.loads(str(arrays.pop("meta"))), arrays, path.read_bytes()))
    return Quiet((out, X))


def _write_model(path, meta, arrays):
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


def _usable(X):
    return lambda clf: clf.predict(X)


@FUZZ
@given(st.data())
def test_fuzz_model_metadata(models, tmp_path, data):
    (bases, X) = models
    meta, arrays, _ = bases[data.draw(st.integers(0, len(bases) - 1))]
    meta = json.loads(json.dumps(meta))
    field = data.draw(st.sampled_from(sorted(_paths(meta))))
    if data.draw(st.booleans()):
        _edit(meta, field, delete=True)
        kind = "model: field deleted"
    else:
        _edit(meta, field, data.draw(JSON_VALUES))
        kind = "model: field set to a random value"
    path = tmp_path / "fuzzed.npz"
    _write_model(path, meta, arrays)
    check(kind, load_model, path, ModelFileError, field, _usable(X))


_DTYPES = st.sampled_from(["float64", "float16", "int8", "int64", "uint8", "bool", "U3", "complex64"])


@FUZZ
@given(st.data())
def test_fuzz_model_arrays(models, tmp_path, data):
    (bases, X) = models
    meta, arrays, _ = bases[data.draw(st.integers(0, len(bases) - 1))]
    arrays = dict(arrays)
    name = data.draw(st.sampled_from(sorted(arrays)))
    a = arrays[name]
    how = data.draw(st.sampled_from(["dtype", "shape", "nan", "delete", "extra", "random"]))
    if how == "dtype":
        arrays[name] = a.astype(data.draw(_DTYPES))
    elif how == "shape":
        arrays[name] = np.resize(a, data.draw(st.lists(st.integers(0, 7), max_size=3)))
    elif how == "nan" and a.dtype.kind in "fiu":
        arrays[name] = np.where(np.arange(a.size).reshape(a.shape) == 0, np.nan, a.astype(np.float32))
    elif how in ("delete", "nan"):
        del arrays[name]
    elif how == "extra":
        name = data.draw(st.sampled_from(["weight_7", "bias_2", "optim.9.m_w", "optim.0.zz", "sigprop.front"]))
        arrays[name] = np.zeros(data.draw(st.lists(st.integers(0, 4), max_size=2)), np.float32)
    else:
        arrays[name] = np.frombuffer(data.draw(st.binary(min_size=8, max_size=64)), np.uint8)
    path = tmp_path / "fuzzed.npz"
    _write_model(path, meta, arrays)
    check(f"model: array {how}", load_model, path, ModelFileError, None, _usable(X))


@FUZZ
@given(st.data())
def test_fuzz_model_bytes(models, tmp_path, data):
    (bases, X) = models
    raw = bytearray(bases[data.draw(st.integers(0, len(bases) - 1))][2])
    how = data.draw(st.sampled_from(["truncate", "flip", "random", "empty"]))
    if how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[i] ^= data.draw(st.integers(1, 255))
    elif how == "random":
        raw = data.draw(st.binary(max_size=512))
    else:
        raw = b""
    path = tmp_path / "fuzzed.npz"
    path.write_bytes(bytes(raw))
    check(f"model: bytes {how}", load_model, path, ModelFileError, None, _usable(X))


# -- TOML files --------------------------------------------------------------------------------------
def _toml_key(k: str) -> str:
    return json.dumps(k, ensure_ascii=False)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -2**63 <= v < 2**63 else json.dumps(str(v))  # TOML integers are 64-bit
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict) -> str:
    """A document as TOML: top-level keys, nested tables inline (``None`` values left out)."""
    return "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in doc.items() if v is not None)


def _report_doc():
    return {k: v for k, v in ReportConfig(budget="256 KB").to_dict().items() if v is not None}


def _sweep_doc():
    return {"sweep": {"dataset": "mnist-bundled", "epochs": 1, "out": "sweep", "budget": "256 KB"},
            "grid": {"bits": ["fp32", 8], "rules": ["spela", "backprop"], "dims": [[784, 32, 10]]}}


READERS = {  # name -> (reader, a valid document)
    "report config": (ReportConfig.from_toml, _report_doc),
    "sweep config": (SweepConfig.from_toml, _sweep_doc),
    "hardware file": (load_hardware_toml, lambda: preset_dict("rram-22nm")),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@FUZZ
@given(data=st.data())
def test_fuzz_toml_fields(tmp_path, reader, data):
    read, valid = READERS[reader]
    doc = valid()
    paths = sorted(_paths(doc))
    how = data.draw(st.sampled_from(["delete", "set", "new key"]))
    if how == "new key":
        table = data.draw(st.sampled_from([""] + [p + "." for p in paths if isinstance(_get(doc, p), dict)]))
        field = table + data.draw(_TEXT.filter(lambda k: k and "." not in k and k not in paths))
        _edit(doc, field, data.draw(TOML_VALUES))
    else:
        field = data.draw(st.sampled_from(paths))
        _edit(doc, field, data.draw(TOML_VALUES), delete=how == "delete")
    path = tmp_path / "fuzzed.toml"
    path.write_text(to_toml(doc), encoding="utf-8")
    # a deleted key may fall back to a default; anything else must name the key it changed
    check(f"toml {reader}: {how}", read, path, ConfigError, None if how == "delete" else field.split(".")[-1])


def _get(doc, path):
    for p in path.split("."):
        doc = doc[p]
    return doc


@pytest.mark.parametrize("reader", sorted(READERS))
@FUZZ
@given(data=st.data())
def test_fuzz_toml_bytes(tmp_path, reader, data):
    read, valid = READERS[reader]
    how = data.draw(st.sampled_from(["random bytes", "not UTF-8", "truncated", "not TOML"]))
    text = to_toml(valid()).encode()
    if how == "random bytes":
        raw = data.draw(st.binary(max_size=256))
    elif how == "not UTF-8":
        i = data.draw(st.integers(0, len(text)))
        raw = text[:i] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xe9t\xe9", b"\x80\x80"])) + text[i:]
    elif how == "truncated":
        raw = text[:data.draw(st.integers(0, len(text) - 1))]
    else:
        raw = data.draw(st.sampled_from([b"[[[", b"a = ", b"= 1", b"x = [1,", b"\x00", b"[a]\n[a]\n", b"a=1\na=2"]))
    path = tmp_path / "fuzzed.toml"
    path.write_bytes(raw)
    field = "not UTF-8" if how == "not UTF-8" else None
    check(f"toml {reader}: {how}", read, path, ConfigError, field)


# -- dataset files -----------------------------------------------------------------------------------
_N = 12


def _idx(magic: int, array: np.ndarray) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


@pytest.fixture(scope="module")
def dataset_files():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (_N, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, _N, dtype=np.uint8)
    return Quiet((images, labels))


@FUZZ
@given(st.data())
def test_fuzz_idx_files(dataset_files, tmp_path, data):
    images, labels = dataset_files
    info = dataset_info("mnist")
    gz = data.draw(st.booleans())
    layout = next(lay for lay in info.layouts if lay.test_images.endswith(".gz") == gz)
    raw = {layout.test_images: bytearray(_idx(2051, images)), layout.test_labels: bytearray(_idx(2049, labels))}
    target = data.draw(st.sampled_from(sorted(raw)))
    how = data.draw(st.sampled_from(["truncate", "flip", "header", "labels out of range", "empty", "garbage"]))
    b = raw[target]
    if how == "truncate":
        b = b[:data.draw(st.integers(0, len(b) - 1))]
    elif how == "flip":
        for i in data.draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=4)):
            b[i] ^= data.draw(st.integers(1, 255))
    elif how == "header":
        word = data.draw(st.integers(0, 3 if target == layout.test_images else 1))
        b[4 * word:4 * word + 4] = struct.pack(">I", data.draw(st.integers(0, 2**32 - 1)))
    elif how == "labels out of range":
        target = layout.test_labels
        b = bytearray(_idx(2049, np.where(np.arange(_N) == 3, data.draw(st.integers(10, 255)), labels).astype(np.uint8)))
    elif how == "empty":
        b = bytearray()
    else:
        b = bytearray(data.draw(st.binary(max_size=300)))
    raw[target] = b
    for name, content in raw.items():
        content = bytes(content)
        if gz and not (name == target and how in ("empty", "garbage")):
            content = gzip.compress(content, mtime=0)
        (tmp_path / name).write_bytes(content)
    path = tmp_path / target
    check(f"dataset idx{' gz' if gz else ''}: {how}",
          lambda p: _read_pair(info, layout, tmp_path, layout.test_images, layout.test_labels),
          path, DataError)


@FUZZ
@given(st.data())
def test_fuzz_gz_stream(dataset_files, tmp_path, data):
    """Damage the compressed stream itself (truncated or flipped gzip bytes)."""
    images, labels = dataset_files
    info = dataset_info("mnist")
    layout = next(lay for lay in info.layouts if lay.test_images.endswith(".gz"))
    target = data.draw(st.sampled_from([layout.test_images, layout.test_labels]))
    for name, content in ((layout.test_images, _idx(2051, images)), (layout.test_labels, _idx(2049, labels))):
        b = bytearray(gzip.compress(content, mtime=0))
        if name == target:
            if data.draw(st.booleans()):
                b = b[:data.draw(st.integers(0, len(b) - 1))]
            else:
                i = data.draw(st.integers(2, len(b) - 1))
                b[i] ^= data.draw(st.integers(1, 255))
        (tmp_path / name).write_bytes(bytes(b))
    check("dataset gzip stream damaged",
          lambda p: _read_pair(info, layout, tmp_path, layout.test_images, layout.test_labels),
          tmp_path / target, DataError)


@FUZZ
@given(st.data())
def test_fuzz_npz_files(dataset_files, tmp_path, data):
    images, labels = dataset_files
    info = dataset_info("kmnist")
    layout = next(lay for lay in info.layouts if lay.format == "npz")
    target = data.draw(st.sampled_from([layout.test_images, layout.test_labels]))
    how = data.draw(st.sampled_from(["dtype", "shape", "labels out of range", "key", "bytes"]))
    for name, arr in ((layout.test_images, images), (layout.test_labels, labels.astype(np.int64))):
        path = tmp_path / name
        if name != target:
            np.savez(path, arr_0=arr)
        elif how == "dtype":
            np.savez(path, arr_0=arr.astype(data.draw(_DTYPES)))
        elif how == "shape":
            np.savez(path, arr_0=np.resize(arr, data.draw(st.lists(st.integers(0, 30), max_size=4))))
        elif how == "labels out of range":
            np.savez(path, arr_0=np.where(np.arange(_N) == 0, data.draw(st.integers(-5, 1000).filter(
                lambda v: not 0 <= v < 10)), labels.astype(np.int64)))
        elif how == "key":
            np.savez(path, other=arr)
        else:
            np.savez(path, arr_0=arr)
            raw = bytearray(path.read_bytes())
            raw = raw[:data.draw(st.integers(0, len(raw) - 1))] if data.draw(st.booleans()) else raw
            for i in data.draw(st.lists(st.integers(0, max(len(raw) - 1, 0)), max_size=4)) if raw else []:
                raw[i] ^= 0x5A
            path.write_bytes(bytes(raw))
    check(f"dataset npz: {how}", lambda p: _read_pair(info, layout, tmp_path, layout.test_images,
                                                       layout.test_labels), tmp_path / target, DataError)
