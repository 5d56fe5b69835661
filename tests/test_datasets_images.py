"""Datasets as images (C, H, W), and CIFAR-10 / SVHN read from small files in their standard formats.

The files are written here as their publishers wrote them: CIFAR-10's python batches as Python 2's
cPickle did (protocol 2, byte strings, ``numpy.core`` names), its binary batches record by record
(label byte, then the red, green and blue 32x32 planes row by row), SVHN's cropped digits as a
MATLAB v5 file with ``X`` of shape (32, 32, 3, n) and ``y`` of shape (n, 1), 10 meaning the digit 0.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import struct
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports.cli import build_parser
from spela_hw.datasets import DATASETS, Dataset, as_images, load_dataset, to_float
from spela_hw.datasets import locate as locate_module
from spela_hw.datasets.cifar import read_cifar_binary_batch, read_cifar_python_batch, restricted_unpickle
from spela_hw.datasets.svhn import read_svhn_mat
from spela_hw.errors import ConfigError, DataError

scipy_io = pytest.importorskip("scipy.io", reason="scipy (the svhn / dev extra) writes the .mat files")

N_PER_BATCH, N_TEST = 4, 6  # 5 training batches: 20 training images


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No SPELA_HW_DATA, private cache and system dirs, and CIFAR-10 / SVHN without sample counts
    (the files here hold a few images, not 50,000)."""
    monkeypatch.delenv("SPELA_HW_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(locate_module, "SYSTEM_DATA_DIRS", (str(tmp_path / "system"),))
    for name in ("cifar10", "svhn"):
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], n_train=None, n_test=None))
    return tmp_path


def images(n, seed):
    """n random RGB images (n, 3, 32, 32) and labels; pixel values and labels differ by seed."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def rows(x):
    """CIFAR-10's rows: per image, the R, G and B planes, each 32x32 row-major, one after another."""
    return np.stack([np.concatenate([img[c].ravel() for c in range(3)]) for img in x])


class _Python2Pickler(pickle._Pickler):
    """What Python 2's cPickle wrote into CIFAR-10's batches: protocol 2, str as (SHORT_)BINSTRING,
    the array reconstructor under numpy.core."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_str_bytes(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256
                   else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_str_bytes

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def python2_pickle(obj) -> bytes:
    import io

    buf = io.BytesIO()
    _Python2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def python_batch(x, y, name="data_batch_1") -> bytes:
    return python2_pickle({b"batch_label": b"training batch 1 of 5", b"labels": [int(v) for v in y],
                           b"data": rows(x), b"filenames": [b"img_%d.png" % i for i in range(len(y))]})


def binary_batch(x, y) -> bytes:
    return b"".join(bytes([int(label)]) + row.tobytes() for label, row in zip(y, rows(x)))


def write_cifar(directory, binary=False, folder=""):
    """The 5 training batches and the test batch; returns (x_train, y_train, x_test, y_test)."""
    target = directory / folder
    target.mkdir(parents=True, exist_ok=True)
    suffix = ".bin" if binary else ""
    parts = [images(N_PER_BATCH, seed) for seed in range(5)]
    for i, (x, y) in enumerate(parts, 1):
        (target / f"data_batch_{i}{suffix}").write_bytes(binary_batch(x, y) if binary else python_batch(x, y))
    x_test, y_test = images(N_TEST, 99)
    (target / f"test_batch{suffix}").write_bytes(binary_batch(x_test, y_test) if binary
                                                 else python_batch(x_test, y_test, "test_batch"))
    return (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]), x_test, y_test)


def write_svhn(directory, n_train=7, n_test=5):
    """train_32x32.mat and test_32x32.mat; returns the (n, 3, 32, 32) images and the digits 0-9."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        x, digits = images(n, seed)
        digits[0] = 0  # SVHN writes the digit 0 as 10
        hwcn = np.ascontiguousarray(x.transpose(2, 3, 1, 0))  # X[h, w, c, i]
        scipy_io.savemat(directory / f"{name}_32x32.mat",
                         {"X": hwcn, "y": np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]})
        out += [x, digits]
    return out


# ------------------------------------------------------------------------------ images (C, H, W)

def test_mnist_family_is_one_channel_28x28_and_images_are_the_flat_features_reshaped():
    for name in ("mnist", "fashion-mnist", "kmnist", "mnist-bundled"):
        assert DATASETS[name].image_shape == (1, 28, 28)
    ds = load_dataset("mnist-bundled")
    assert ds.image_shape == (1, 28, 28) and ds.n_features == 784
    flat = ds.features("test")
    assert flat.shape == (2000, 784)  # the MLPs' view is unchanged
    img = ds.images("test")
    assert img.shape == (2000, 1, 28, 28) and img.dtype == np.float32 and img.flags.c_contiguous
    np.testing.assert_array_equal(img.reshape(2000, -1), flat)
    np.testing.assert_array_equal(img[5, 0], to_float(ds.x_test[5].reshape(28, 28)))
    view = as_images(flat, ds.image_shape)
    assert np.shares_memory(view, flat)  # no copy
    with pytest.raises(DataError, match=r"\(n, 3072\)"):
        as_images(flat, (3, 32, 32))


def test_dataset_image_shape_is_validated_and_a_pair_means_one_channel():
    x, y = np.zeros((2, 12), np.uint8), np.zeros(2, np.int64)
    assert Dataset("d", x, y, x, y, source="-", image_shape=(3, 2, 2)).images().shape == (2, 3, 2, 2)
    assert Dataset("d", x, y, x, y, source="-", image_shape=(3, 4)).image_shape == (1, 3, 4)
    for bad in ((12,), (0, 3, 4), (1, 2, 3, 2)):
        with pytest.raises(ConfigError, match="image_shape"):
            Dataset("d", x, y, x, y, source="-", image_shape=bad)
    with pytest.raises(DataError, match=r"\(n, 24\)"):
        Dataset("d", x, y, x, y, source="-", image_shape=(2, 3, 4))


# ------------------------------------------------------------------------------ CIFAR-10

@pytest.mark.parametrize("binary", [False, True], ids=["python", "binary"])
@pytest.mark.parametrize("folder", ["", "archive-folder"])
def test_cifar10_loads_both_formats_flat_or_in_the_archive_folder(isolated, binary, folder):
    if folder:
        folder = "cifar-10-batches-bin" if binary else "cifar-10-batches-py"
    root = isolated / "data"
    x_train, y_train, x_test, y_test = write_cifar(root / "cifar10", binary=binary, folder=folder)
    for data_dir in (root, root / "cifar10"):  # a root holding cifar10/, or the dataset's own directory
        ds = load_dataset("cifar10", data_dir=data_dir, verify=False)
        assert (ds.n_train, ds.n_test, ds.image_shape) == (20, N_TEST, (3, 32, 32))
        assert ds.x_train.shape == (20, 3072) and ds.x_train.dtype == np.uint8
        np.testing.assert_array_equal(ds.y_train, y_train)
        np.testing.assert_array_equal(ds.y_test, y_test)
        # (C, H, W): a row is the R plane, then G, then B, each row-major
        np.testing.assert_array_equal(ds.x_train[3, :1024], x_train[3, 0].ravel())
        np.testing.assert_array_equal(ds.x_test[2, 2048:], x_test[2, 2].ravel())
        np.testing.assert_array_equal(ds.images("train"), to_float(x_train))
        np.testing.assert_array_equal(ds.images("test")[4, 1, 7, 30], to_float(x_test)[4, 1, 7, 30])


def test_cifar10_python_batches_are_verified_and_binary_ones_accepted_with_a_warning(isolated, caplog):
    write_cifar(isolated / "py")
    with pytest.raises(DataError, match=r"data_batch_1: md5 digest mismatch: expected c99cafc1"):
        load_dataset("cifar10", data_dir=isolated / "py")
    write_cifar(isolated / "bin", binary=True)
    with caplog.at_level("WARNING"):
        assert load_dataset("cifar10", data_dir=isolated / "bin").n_train == 20
    assert "no published digest" in caplog.text


def test_cifar10_sample_counts_are_checked(tmp_path):
    write_cifar(tmp_path, binary=True)
    with pytest.raises(DataError, match="cifar10 train split has 20 samples, expected 50000"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar10_python_batch_written_by_python3_loads(isolated):
    x, y = images(3, 5)
    d = isolated / "py3"
    d.mkdir()
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        (d / name).write_bytes(pickle.dumps({"data": rows(x), "labels": np.asarray(y)}))
    ds = load_dataset("cifar10", data_dir=d, verify=False)
    np.testing.assert_array_equal(ds.images("test"), to_float(x))


def _batch_with(**entries) -> bytes:
    x, y = images(N_PER_BATCH, 0)
    batch = {b"data": rows(x), b"labels": [int(v) for v in y]}
    batch.update({k.encode(): v for k, v in entries.items()})
    return python2_pickle({k: v for k, v in batch.items() if v is not None})


@pytest.mark.parametrize("content, message", [
    (lambda: _batch_with(labels=None, fine_labels=[1, 2, 3, 4]), r"no 'labels' entry .*'fine_labels'"),
    (lambda: _batch_with(data=None), r"no 'data' entry"),
    (lambda: _batch_with(data=np.zeros((4, 3073), np.uint8)), r"'data' must be a uint8 array of shape \(n, 3072\)"),
    (lambda: _batch_with(data=np.zeros((4, 3072), np.float32)), r"'data' must be a uint8 array"),
    (lambda: _batch_with(labels=[1, 2, 3]), r"'labels' must be 4 integers"),
    (lambda: _batch_with(labels=[1, 2, 3, 12]), r"labels out of range \[0, 10\)"),
    (lambda: python2_pickle([1, 2, 3]), r"not a CIFAR batch: the pickle holds a list"),
    (lambda: b"\x89PNG\r\n\x1a\n not a pickle at all", r"not a readable pickle"),
    (lambda: _batch_with()[:-40], r"not a readable pickle"),
    (lambda: b"", r"not a readable pickle"),
], ids=["key", "no-data", "data-shape", "data-dtype", "labels-length", "label-range", "list", "png",
        "truncated", "empty"])
def test_bad_cifar10_python_batch_names_the_file_and_the_field(isolated, content, message):
    write_cifar(isolated)
    (isolated / "data_batch_3").write_bytes(content())
    with pytest.raises(DataError, match=message) as info:
        load_dataset("cifar10", data_dir=isolated, verify=False)
    assert str(isolated / "data_batch_3") in str(info.value)


class _RunsCode:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.remove, (str(self.path),)


def test_restricted_unpickler_never_runs_code(tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("still here")
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(pickle.dumps({"data": _RunsCode(canary), "labels": []}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_1: .*refused global (posix|nt|os)\.(remove|unlink)"):
        restricted_unpickle(evil)
    assert canary.exists()
    with pytest.raises(DataError, match="refused global builtins.eval"):
        evil.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
        restricted_unpickle(evil)


@pytest.mark.parametrize("cut", [1, 3072, 5000])
def test_truncated_cifar10_binary_record_names_the_file_and_the_record(isolated, cut):
    write_cifar(isolated, binary=True)
    path = isolated / "data_batch_2.bin"
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) - cut] if cut < len(raw) else raw[:cut])
    with pytest.raises(DataError, match=r"data_batch_2\.bin: record: \d+ bytes is not a whole number of "
                                        r"3073-byte records"):
        load_dataset("cifar10", data_dir=isolated, verify=False)


def test_cifar10_binary_label_out_of_range_names_the_file(isolated):
    write_cifar(isolated, binary=True)
    path = isolated / "test_batch.bin"
    raw = bytearray(path.read_bytes())
    raw[3073] = 10  # second record's label byte
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"test_batch\.bin: 1 labels out of range \[0, 10\) \(min \d, max 10\)"):
        load_dataset("cifar10", data_dir=isolated, verify=False)


def test_cifar10_missing_says_where_to_get_it(isolated):
    with pytest.raises(DataError, match=r"(?s)not found.*data_batch_1.*test_batch\.bin.*cifar\.html"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="no download mirrors"):
        load_dataset("cifar10", download=True)


# ------------------------------------------------------------------------------ SVHN

def test_svhn_loads_channels_first_with_10_read_as_0(isolated):
    x_train, d_train, x_test, d_test = write_svhn(isolated / "svhn")
    ds = load_dataset("svhn", data_dir=isolated, verify=False)
    assert (ds.n_train, ds.n_test, ds.image_shape, ds.x_train.shape) == (7, 5, (3, 32, 32), (7, 3072))
    np.testing.assert_array_equal(ds.y_train, d_train)
    np.testing.assert_array_equal(ds.y_test, d_test)
    assert ds.y_train[0] == 0 and ds.y_test[0] == 0
    np.testing.assert_array_equal(ds.images("train"), to_float(x_train))
    mat = scipy_io.loadmat(isolated / "svhn" / "test_32x32.mat")
    assert ds.x_test[3].reshape(3, 32, 32)[2, 5, 9] == mat["X"][5, 9, 2, 3]  # X[h, w, c, i] -> [i, c, h, w]
    with pytest.raises(DataError, match=r"train_32x32\.mat: md5 digest mismatch"):
        load_dataset("svhn", data_dir=isolated)


def _mat(path, **variables):
    x, digits = images(3, 0)
    base = {"X": np.ascontiguousarray(x.transpose(2, 3, 1, 0)), "y": (digits + 1).astype(np.uint8)[:, None]}
    base.update(variables)
    scipy_io.savemat(path, {k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize("variables, message", [
    ({"X": np.zeros((3, 32, 32, 3), np.uint8)}, r"'X' must be uint8 of shape \(32, 32, 3, n\), got uint8 \(3, 32, 32, 3\)"),
    ({"X": np.zeros((32, 32, 3, 3), np.float64)}, r"'X' must be uint8"),
    ({"y": np.ones((2, 1), np.uint8)}, r"'y' must be 3 labels of shape \(3, 1\)"),
    ({"y": np.array([[1], [0], [4]], np.uint8)}, r"'y' holds 1 labels outside the digits 1\.\.10 .*index 1"),
    ({"y": np.array([[1], [11], [4]], np.uint8)}, r"'y' holds 1 labels outside"),
    ({"y": np.array([[1.0], [2.5], [4.0]])}, r"'y' holds 1 labels outside"),
    ({"y": None, "labels": np.ones((3, 1))}, r"no variable 'y' in the \.mat file \(has \['X', 'labels'\]\)"),
    ({"X": None}, r"no variable 'X'"),
], ids=["X-shape", "X-dtype", "y-length", "y-zero", "y-eleven", "y-fraction", "y-missing", "X-missing"])
def test_bad_svhn_mat_names_the_file_and_the_variable(isolated, variables, message):
    write_svhn(isolated)
    _mat(isolated / "test_32x32.mat", **variables)
    with pytest.raises(DataError, match=message) as info:
        load_dataset("svhn", data_dir=isolated, verify=False)
    assert str(isolated / "test_32x32.mat") in str(info.value)


@pytest.mark.parametrize("content", [b"", b"MATLAB 5.0 MAT-file, truncated", bytes(range(256)) * 4])
def test_svhn_file_that_is_not_a_mat_file_names_the_file(isolated, content):
    write_svhn(isolated)
    (isolated / "train_32x32.mat").write_bytes(content)
    with pytest.raises(DataError, match=r"train_32x32\.mat: "):
        load_dataset("svhn", data_dir=isolated, verify=False)


def test_svhn_without_scipy_names_the_extra(isolated, monkeypatch):
    write_svhn(isolated)
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # import scipy.io now raises ImportError
    with pytest.raises(DataError, match=r"_32x32\.mat: reading SVHN \.mat files needs scipy.*spela-hw\[svhn\]"):
        load_dataset("svhn", data_dir=isolated, verify=False)


# ------------------------------------------------------------------------------ command line

def test_cli_dataset_help_lists_every_registered_dataset():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("train", "report", "spike"):
        (dataset,) = [a for a in sub.choices[command]._actions if a.dest == "dataset"]
        names = dataset.help.replace("(", ",").replace(")", ",").replace(":", ",").split(",")
        for name in DATASETS:
            assert name in {n.strip().split(" ")[-1] for n in names}, (command, name)
    assert "cifar10, svhn: your own copy" in dataset.help


# ------------------------------------------------------------------------------ damaged files, fuzzed

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data())
def test_damaged_cifar10_and_svhn_files_load_or_raise_a_named_data_error(tmp_path_factory, data):
    """Truncated or flipped bytes in any of the three formats: never a traceback, and a rejection
    names the file. A .mat file is only truncated: scipy's loadmat (1.18) crashes the process on
    some flipped bytes, e.g. an invalid data-type code in an element tag (see spela_hw/datasets/svhn.py)."""
    d = tmp_path_factory.mktemp("fuzz")
    x, y = images(3, 0)
    kind = data.draw(st.sampled_from(["python", "binary", "mat"]))
    if kind == "mat":
        path = d / "test_32x32.mat"
        _mat(path)
        read = read_svhn_mat
    else:
        path = d / "test_batch"
        path.write_bytes(python_batch(x, y) if kind == "python" else binary_batch(x, y))
        read = read_cifar_python_batch if kind == "python" else read_cifar_binary_batch
    raw = bytearray(path.read_bytes())
    if kind == "mat" or data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4)):
            raw[i] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(raw))
    try:
        images_, labels = read(path)
    except DataError as exc:
        assert str(path) in str(exc)
    else:
        assert images_.shape[1:] == (3, 32, 32) and labels.shape == images_.shape[:1]
