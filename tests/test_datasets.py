"""Dataset layer: real MNIST / Fashion-MNIST, bundled data, search order, bad files, download, XOR."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import logging
import os
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from spela_hw.datasets import (
    BUNDLED_DATASET,
    DATASETS,
    Dataset,
    DatasetInfo,
    FileSpec,
    cache_dir,
    clear_verification_cache,
    dataset_info,
    download_dataset,
    file_digest,
    find_dataset_dir,
    load_dataset,
    make_noisy_xor,
    read_idx,
    to_float,
    verify_file,
)
from spela_hw.datasets import files as files_module
from spela_hw.datasets import locate as locate_module
from spela_hw.errors import ConfigError, DataError

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_TRAIN_HIST = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_HIST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
STD_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# ---------------------------------------------------------------------------- helpers / fixtures

def data_root() -> Path | None:
    """SPELA_HW_DATA, else the repository's sibling shared/data when it exists."""
    env = os.environ.get("SPELA_HW_DATA")
    if env:
        return Path(env)
    local = Path(__file__).resolve().parents[2] / "shared" / "data"
    return local if local.is_dir() else None


def require(path: Path | None, what: str) -> Path:
    """The path if it exists; under CI a missing dataset fails, locally it skips."""
    if path is not None and path.exists():
        return path
    msg = f"{what} not available at {path} (set SPELA_HW_DATA)"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def mnist_dir() -> Path:
    root = data_root()
    return require(root / "mnist" if root else None, "MNIST")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No SPELA_HW_DATA, a private user cache and private system dirs."""
    monkeypatch.delenv("SPELA_HW_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(locate_module, "SYSTEM_DATA_DIRS", (str(tmp_path / "system"),))
    clear_verification_cache()
    yield tmp_path
    clear_verification_cache()


def idx_bytes(arr, magic=None) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    magic = magic if magic is not None else (2051 if arr.ndim == 3 else 2049)
    return struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_idx(path: Path, arr, magic=None) -> Path:
    data = idx_bytes(arr, magic)
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def write_set(directory: Path, n_train=6, n_test=4, gz=True, seed=0):
    """A small well-formed dataset with the standard file names; returns the arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(directory / (name + (".gz" if gz else "")), arr)
    return arrays


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny(monkeypatch):
    """Register a dataset "tiny" with the standard layouts and no known digests or counts."""
    def register(**overrides) -> DatasetInfo:
        base = DATASETS["mnist"]
        fields = dict(name="tiny", title="tiny test set", n_train=None, n_test=None, files={},
                      mirrors=())
        info = dataclasses.replace(base, **{**fields, **overrides})
        monkeypatch.setitem(DATASETS, "tiny", info)
        return info
    return register


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields (directory, base_url)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---------------------------------------------------------------------------- real data

def test_mnist_shapes_histograms_digests(mnist_dir):
    for name, digest in MNIST_SHA256.items():
        assert file_digest(mnist_dir / name) == digest
        assert DATASETS["mnist"].files[name].sha256 == digest
    ds = load_dataset("mnist", data_dir=mnist_dir)
    assert ds.source == str(mnist_dir)
    assert ds.x_train.shape == (60_000, 784) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10_000, 784) and ds.x_test.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    assert np.bincount(ds.y_train, minlength=10).tolist() == MNIST_TRAIN_HIST
    assert np.bincount(ds.y_test, minlength=10).tolist() == MNIST_TEST_HIST
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert ds.y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    f = ds.features("test")
    assert f.dtype == np.float32 and f.shape == (10_000, 784)
    assert f.min() == 0.0 and f.max() == 1.0
    np.testing.assert_array_equal(np.rint(f * 255).astype(np.uint8), ds.x_test)


def test_mnist_found_through_env_var(mnist_dir, isolated, monkeypatch):
    monkeypatch.setenv("SPELA_HW_DATA", str(mnist_dir.parent))
    assert find_dataset_dir("mnist") == mnist_dir
    assert load_dataset("MNIST").n_train == 60_000


def test_uncompressed_idx_is_verified_and_equal(mnist_dir, tmp_path):
    raw = tmp_path / "t10k-images-idx3-ubyte"
    raw.write_bytes(gzip.decompress((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes()))
    verify_file(raw, DATASETS["mnist"].file_spec(raw.name))  # derived digest matches
    np.testing.assert_array_equal(read_idx(raw, 2051),
                                  read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz", 2051))


def test_mnist_digest_mismatch_names_file_expected_actual(mnist_dir, tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    for name in STD_NAMES:
        (d / name).symlink_to(mnist_dir / name)
    bad = d / "t10k-labels-idx1-ubyte.gz"
    data = bytearray((mnist_dir / bad.name).read_bytes())
    data[-9] ^= 0xFF  # same size, different content
    bad.unlink()
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=d)
    msg = str(err.value)
    assert str(bad) in msg and MNIST_SHA256[bad.name] in msg and sha256(bad) in msg
    # verify=False skips digests; the gzip CRC still catches the damage.
    with pytest.raises(DataError, match="t10k-labels"):
        load_dataset("mnist", data_dir=d, verify=False)


def test_fashion_mnist_from_debian_package():
    fdir = require(FASHION_DIR if FASHION_DIR.is_dir() else None, "Fashion-MNIST")
    ds = load_dataset("fashion-mnist", data_dir=fdir)
    assert (ds.n_train, ds.n_test) == (60_000, 10_000)
    assert np.bincount(ds.y_train, minlength=10).tolist() == [6000] * 10
    assert np.bincount(ds.y_test, minlength=10).tolist() == [1000] * 10
    assert ds.x_train.shape == (60_000, 784)
    for name in STD_NAMES:
        assert file_digest(fdir / name) == DATASETS["fashion-mnist"].files[name].sha256


# ---------------------------------------------------------------------------- bundled data

BUNDLED_TRAIN_HIST = [773, 905, 834, 803, 788, 723, 756, 813, 787, 818]
BUNDLED_TEST_HIST = [207, 230, 198, 207, 194, 169, 202, 215, 187, 191]


def test_bundled_loads_offline_and_splits(isolated):
    ds = load_dataset(BUNDLED_DATASET)
    assert ds.name == "mnist-bundled"
    assert Path(ds.source).name == "bundled"
    assert ds.x_train.shape == (8_000, 784) and ds.x_test.shape == (2_000, 784)
    assert np.bincount(ds.y_train, minlength=10).tolist() == BUNDLED_TRAIN_HIST
    assert np.bincount(ds.y_test, minlength=10).tolist() == BUNDLED_TEST_HIST
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert sha256(Path(ds.source) / name) == MNIST_SHA256[name]


def test_bundled_is_first_8000_last_2000_of_mnist_test(mnist_dir):
    full = load_dataset("mnist", data_dir=mnist_dir)
    b = load_dataset(BUNDLED_DATASET)
    np.testing.assert_array_equal(b.x_train, full.x_test[:8000])
    np.testing.assert_array_equal(b.y_test, full.y_test[8000:])


# ---------------------------------------------------------------------------- Dataset, registry

def test_dataset_is_frozen_and_read_only():
    ds = load_dataset(BUNDLED_DATASET)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.x_train = ds.x_test
    with pytest.raises(ValueError):
        ds.x_train[0, 0] = 1
    with pytest.raises(ValueError):
        ds.y_test[0] = 1
    assert ds.labels("test") is ds.y_test
    with pytest.raises(ConfigError, match="split"):
        ds.features("validation")


def test_dataset_validates_arrays_and_leaves_caller_arrays_writable():
    x = np.zeros((3, 784), np.uint8)
    y = np.zeros(3, np.int64)
    ds = Dataset("d", x, y, x, y, source="-")
    assert x.flags.writeable and not ds.x_train.flags.writeable
    with pytest.raises(DataError, match="x_train"):
        Dataset("d", x.astype(np.float32), y, x, y, source="-")
    with pytest.raises(DataError, match="y_test"):
        Dataset("d", x, y, x, y[:2], source="-")
    with pytest.raises(DataError, match="outside"):
        Dataset("d", x, y, x, y + 10, source="-")


def test_to_float():
    x = np.array([[0, 51, 255]], np.uint8)
    f = to_float(x)
    assert f.dtype == np.float32
    np.testing.assert_allclose(f, [[0.0, 0.2, 1.0]], rtol=1e-6)
    with pytest.raises(DataError):
        to_float(f)


def test_registry_metadata():
    assert set(DATASETS) >= {"mnist", "fashion-mnist", "kmnist", "mnist-bundled", "cifar10", "svhn"}
    for info in DATASETS.values():
        colour = info.name in ("cifar10", "svhn")
        assert info.n_classes == 10 and info.image_shape == ((3, 32, 32) if colour else (1, 28, 28))
        assert info.n_features == (3072 if colour else 784)
        assert info.license
    assert "CC BY-SA 3.0" in DATASETS["mnist"].license
    assert "MIT" in DATASETS["fashion-mnist"].license
    assert "CC BY-SA 4.0" in DATASETS["kmnist"].license
    for name in ("mnist", "fashion-mnist", "kmnist"):
        assert DATASETS[name].mirrors and all(m.endswith("/") for m in DATASETS[name].mirrors)
    assert dataset_info("Fashion_MNIST").name == "fashion-mnist"
    with pytest.raises(ConfigError, match="unknown dataset"):
        dataset_info("cifar-100")


# ---------------------------------------------------------------------------- search order

def test_search_order(isolated, tiny, monkeypatch):
    tiny()
    tmp = isolated
    places = {
        "explicit": tmp / "explicit",
        "env": tmp / "env" / "tiny",
        "cache": tmp / "xdg-cache" / "spela-hw" / "datasets" / "tiny",
        "system": tmp / "system" / "tiny",
    }
    for seed, d in enumerate(places.values()):
        write_set(d, seed=seed)
    monkeypatch.setenv("SPELA_HW_DATA", str(tmp / "env"))
    assert cache_dir("tiny") == places["cache"]
    assert find_dataset_dir("tiny", places["explicit"]) == places["explicit"]
    assert find_dataset_dir("tiny", tmp / "env") == places["env"]  # a root holding tiny/
    assert find_dataset_dir("tiny") == places["env"]
    with pytest.raises(DataError, match="not found in data_dir") as err:
        find_dataset_dir("tiny", tmp / "nowhere")  # an explicit directory is used or refused, never replaced
    assert str(tmp / "nowhere" / "tiny") in str(err.value) and str(places["env"]) not in str(err.value)
    shutil.rmtree(places["env"])
    assert find_dataset_dir("tiny") == places["cache"]
    shutil.rmtree(places["cache"])
    assert find_dataset_dir("tiny") == places["system"]
    shutil.rmtree(places["system"])
    with pytest.raises(DataError) as err:
        find_dataset_dir("tiny")
    msg = str(err.value)
    for d in (tmp / "env" / "tiny", places["cache"], places["system"]):
        assert str(d) in msg
    assert "train-images-idx3-ubyte.gz" in msg


def test_incomplete_directory_is_not_a_dataset(isolated, tiny):
    tiny()
    d = isolated / "partial"
    write_set(d)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="not found"):
        find_dataset_dir("tiny", d)


def test_uncompressed_layout_and_values(isolated, tiny):
    tiny()
    arrays = write_set(isolated / "raw", gz=False)
    ds = load_dataset("tiny", data_dir=isolated / "raw")
    np.testing.assert_array_equal(ds.x_train, arrays["train-images-idx3-ubyte"].reshape(6, 784))
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])


# ---------------------------------------------------------------------------- bad files

def _corrupt_gzip_body(p: Path):
    data = bytearray(p.read_bytes())
    data[12:40] = b"\x00" * 28
    p.write_bytes(bytes(data))


BAD_CASES = {
    "truncated gzip": ("train-images-idx3-ubyte.gz",
                       lambda p: p.write_bytes(p.read_bytes()[:-60]), "truncated"),
    "not gzip": ("train-labels-idx1-ubyte.gz",
                 lambda p: p.write_bytes(b"this is not gzip at all"), "not a gzip"),
    "bad gzip body": ("t10k-images-idx3-ubyte.gz", _corrupt_gzip_body, "corrupted gzip"),
    "truncated idx": ("t10k-images-idx3-ubyte.gz",
                      lambda p: p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())[:-5])),
                      "truncated"),
    "trailing bytes": ("t10k-labels-idx1-ubyte.gz",
                       lambda p: p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())
                                                             + b"xx")), "trailing"),
    "header only": ("train-labels-idx1-ubyte.gz",
                    lambda p: p.write_bytes(gzip.compress(b"\x00\x00")), "truncated"),
    "wrong magic (labels in image slot)": (
        "train-images-idx3-ubyte.gz",
        lambda p: write_idx(p, np.zeros(6, np.uint8)), "wrong IDX magic 2049"),
    "wrong magic (images in label slot)": (
        "t10k-labels-idx1-ubyte.gz",
        lambda p: write_idx(p, np.zeros((4, 28, 28), np.uint8)), "wrong IDX magic 2051"),
    "count mismatch": ("train-labels-idx1-ubyte.gz",
                       lambda p: write_idx(p, np.zeros(5, np.uint8)), "6 images but 5 labels"),
    "labels out of range": ("t10k-labels-idx1-ubyte.gz",
                            lambda p: write_idx(p, np.array([0, 1, 10, 255], np.uint8)),
                            "2 labels out of range"),
    "wrong image shape": ("train-images-idx3-ubyte.gz",
                          lambda p: write_idx(p, np.zeros((6, 14, 56), np.uint8)), "expected"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_file_raises_data_error_naming_file(case, isolated, tiny):
    tiny()
    filename, damage, pattern = BAD_CASES[case]
    d = isolated / "bad"
    write_set(d)
    damage(d / filename)
    with pytest.raises(DataError, match=pattern) as err:
        load_dataset("tiny", data_dir=d)
    assert str(d / filename) in str(err.value)


def test_sample_count_checked_against_registry(isolated, tiny):
    tiny(n_train=60_000)
    write_set(isolated / "d")
    with pytest.raises(DataError, match="expected 60000"):
        load_dataset("tiny", data_dir=isolated / "d")


def test_digest_mismatch_message(isolated, tiny):
    d = isolated / "d"
    write_set(d)
    target = d / "t10k-images-idx3-ubyte.gz"
    wrong = "0" * 64
    tiny(files={target.name: FileSpec(target.name, sha256=wrong)})
    with pytest.raises(DataError) as err:
        load_dataset("tiny", data_dir=d)
    msg = str(err.value)
    assert str(target) in msg and wrong in msg and sha256(target) in msg
    load_dataset("tiny", data_dir=d, verify=False)  # the file itself is well-formed


def test_size_mismatch_reported(isolated, tiny):
    d = isolated / "d"
    write_set(d)
    target = d / "train-labels-idx1-ubyte.gz"
    tiny(files={target.name: FileSpec(target.name, size=28_881)})
    with pytest.raises(DataError, match=f"{target}: size mismatch: expected 28881"):
        load_dataset("tiny", data_dir=d)


def test_verification_is_cached_and_invalidated_by_change(isolated, tiny, monkeypatch):
    d = isolated / "d"
    write_set(d)
    target = d / "t10k-labels-idx1-ubyte.gz"
    tiny(files={target.name: FileSpec(target.name, sha256=sha256(target))})
    load_dataset("tiny", data_dir=d)
    real_new = hashlib.new
    calls = []
    monkeypatch.setattr(files_module.hashlib, "new",
                        lambda *a, **k: calls.append(a) or real_new(*a, **k))
    load_dataset("tiny", data_dir=d)
    assert calls == []  # served from the (path, size, mtime) cache
    write_idx(target, np.array([1, 2, 3, 4], np.uint8))  # new content, new mtime/size
    os.utime(target, ns=(1, 1))
    with pytest.raises(DataError, match="digest mismatch"):
        load_dataset("tiny", data_dir=d)
    assert calls


def test_unknown_digest_is_accepted_with_warning(isolated, tiny, caplog):
    tiny()
    write_set(isolated / "d")
    with caplog.at_level(logging.WARNING, logger="spela_hw.datasets"):
        load_dataset("tiny", data_dir=isolated / "d")
    warned = [r.getMessage() for r in caplog.records if "no published digest" in r.getMessage()]
    assert len(warned) == 4


def test_kmnist_npz_layout(isolated, monkeypatch, caplog):
    monkeypatch.setitem(DATASETS, "kmnist",
                        dataclasses.replace(DATASETS["kmnist"], n_train=None, n_test=None))
    d = isolated / "kmnist"
    d.mkdir()
    rng = np.random.default_rng(3)
    x_tr = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    y_tr = rng.integers(0, 10, 5, dtype=np.uint8)
    x_te = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    y_te = rng.integers(0, 10, 3, dtype=np.uint8)
    for name, arr in (("kmnist-train-imgs", x_tr), ("kmnist-train-labels", y_tr),
                      ("kmnist-test-imgs", x_te), ("kmnist-test-labels", y_te)):
        np.savez_compressed(d / f"{name}.npz", arr_0=arr)
    with caplog.at_level(logging.WARNING, logger="spela_hw.datasets"):
        ds = load_dataset("kmnist", data_dir=isolated)
    assert "no published digest" in caplog.text
    np.testing.assert_array_equal(ds.x_train, x_tr.reshape(5, 784))
    np.testing.assert_array_equal(ds.y_test, y_te.astype(np.int64))
    # A damaged npz and a missing key are DataErrors naming the file.
    (d / "kmnist-test-imgs.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DataError, match="kmnist-test-imgs.npz"):
        load_dataset("kmnist", data_dir=isolated)
    np.savez(d / "kmnist-test-imgs.npz", images=x_te)
    with pytest.raises(DataError, match="no array 'arr_0'"):
        load_dataset("kmnist", data_dir=isolated)


def test_kmnist_idx_checked_by_md5(isolated):
    d = isolated / "kmnist"
    write_set(d)
    # The gz train labels have a known md5 but no known size: the md5 check must fire.
    target = d / "train-labels-idx1-ubyte.gz"
    for name in STD_NAMES:
        if name != target.name:
            (d / name).unlink()
    with pytest.raises(DataError) as err:
        verify_file(target, DATASETS["kmnist"].file_spec(target.name))
    assert "md5 digest mismatch" in str(err.value)
    assert "e144d726b3acfaa3e44228e80efcd344" in str(err.value)


# ---------------------------------------------------------------------------- download

def test_download_verified_into_cache(isolated, tiny, http_root):
    root, url = http_root
    arrays = write_set(root)
    tiny(mirrors=(url,), files={n: FileSpec(n, sha256=sha256(root / n)) for n in STD_NAMES})
    with pytest.raises(DataError, match="not found"):
        load_dataset("tiny")
    ds = load_dataset("tiny", download=True)
    assert Path(ds.source) == cache_dir("tiny")
    assert sorted(p.name for p in cache_dir("tiny").iterdir()) == sorted(STD_NAMES)
    np.testing.assert_array_equal(ds.x_test, arrays["t10k-images-idx3-ubyte"].reshape(4, 784))
    assert load_dataset("tiny").source == ds.source  # found in the cache next time


def test_download_bad_digest_leaves_nothing(isolated, tiny, http_root):
    root, url = http_root
    write_set(root)
    good = {n: FileSpec(n, sha256=sha256(root / n)) for n in STD_NAMES}
    first = STD_NAMES[0]
    good[first] = FileSpec(first, sha256="ab" * 32)
    tiny(mirrors=(url,), files=good)
    with pytest.raises(DataError) as err:
        load_dataset("tiny", download=True)
    msg = str(err.value)
    assert first in msg and "ab" * 32 in msg and sha256(root / first) in msg
    cache = cache_dir("tiny")
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_falls_back_to_next_mirror(isolated, tiny, http_root):
    root, url = http_root
    (root / "good").mkdir()
    write_set(root / "good")
    tiny(mirrors=(url + "missing/", url + "good/"),
         files={n: FileSpec(n, sha256=sha256(root / "good" / n)) for n in STD_NAMES})
    dest = download_dataset("tiny", isolated / "dl")
    assert sorted(p.name for p in dest.iterdir()) == sorted(STD_NAMES)


def test_download_unreachable_raises(isolated, tiny, http_root):
    root, url = http_root
    tiny(mirrors=(url + "nothing-here/",))
    with pytest.raises(DataError, match="download failed from every mirror"):
        load_dataset("tiny", download=True)
    assert list(cache_dir("tiny").iterdir()) == []
    with pytest.raises(DataError, match="no download mirrors"):
        download_dataset(BUNDLED_DATASET, isolated / "x")


def test_download_real_mnist_files_from_local_mirror(mnist_dir, isolated, http_root, monkeypatch):
    root, url = http_root
    for name in STD_NAMES:
        (root / name).symlink_to(mnist_dir / name)
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], mirrors=(url,)))
    ds = load_dataset("mnist", download=True)
    assert Path(ds.source) == cache_dir("mnist")
    assert np.bincount(ds.y_train, minlength=10).tolist() == MNIST_TRAIN_HIST
    for name in STD_NAMES:
        assert sha256(cache_dir("mnist") / name) == MNIST_SHA256[name]


# ---------------------------------------------------------------------------- noisy XOR

def test_xor_shapes_labels_and_parity():
    X, y = make_noisy_xor(500, n_bits=3, noise=0.0, random_state=1)
    assert X.shape == (500, 3) and X.dtype == np.float32
    assert y.shape == (500,) and y.dtype == np.int64
    assert set(np.unique(X)) <= {0.0, 1.0}
    np.testing.assert_array_equal(y, X.astype(np.int64).sum(axis=1) % 2)
    assert 0.4 < y.mean() < 0.6


def test_xor_noise_and_seed():
    X1, y1 = make_noisy_xor(1000, noise=0.1, random_state=7)
    X2, y2 = make_noisy_xor(1000, noise=0.1, random_state=7)
    X3, _ = make_noisy_xor(1000, noise=0.1, random_state=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    resid = X1 - np.rint(X1)
    assert 0.07 < resid.std() < 0.13
    np.testing.assert_array_equal(y1, np.rint(X1).astype(np.int64).sum(axis=1) % 2)


def test_xor_is_not_linearly_separable():
    X, y = make_noisy_xor(2000, noise=0.1, random_state=0)
    A = np.c_[X, np.ones(len(X))]
    w, *_ = np.linalg.lstsq(A, 2.0 * y - 1, rcond=None)
    linear_acc = np.mean((A @ w > 0) == y)
    assert linear_acc < 0.7
    # ...while a product feature (what a hidden layer can build) separates it.
    A2 = np.c_[A, (X[:, 0] - 0.5) * (X[:, 1] - 0.5)]
    w2, *_ = np.linalg.lstsq(A2, 2.0 * y - 1, rcond=None)
    assert np.mean((A2 @ w2 > 0) == y) > 0.95


@pytest.mark.parametrize("kwargs,field", [
    ({"n_samples": 0}, "n_samples"), ({"n_samples": 10, "n_bits": 1}, "n_bits"),
    ({"n_samples": 10, "noise": -0.1}, "noise"), ({"n_samples": 10, "noise": float("nan")}, "noise"),
])
def test_xor_rejects_bad_arguments(kwargs, field):
    with pytest.raises(ConfigError) as err:
        make_noisy_xor(**kwargs)
    assert err.value.field == field


# -- malformed files a user may hand us (see also tests/test_fuzz_readers.py) ---------------------
def test_npz_reader_names_a_bare_npy_and_a_member_that_is_no_array(tmp_path):
    import zipfile

    from spela_hw.datasets.files import read_npz_array

    bare = tmp_path / "bare.npz"
    with open(bare, "wb") as f:
        np.save(f, np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"bare\.npz: not an npz archive"):
        read_npz_array(bare)
    odd = tmp_path / "odd.npz"
    with zipfile.ZipFile(odd, "w") as z:
        z.writestr("arr_0", b"not an array")
    with pytest.raises(DataError, match=r"odd\.npz: 'arr_0' in the npz is not a NumPy array"):
        read_npz_array(odd)


def test_idx_header_announcing_2_to_the_64_bytes_is_named(tmp_path):
    """2**31 * 2**31 * 4 wrapped to 0 in int64: the header alone passed the size check."""
    from spela_hw.datasets.files import IDX_IMAGES_MAGIC, read_idx

    path = tmp_path / "forged-idx3-ubyte"
    path.write_bytes(struct.pack(">IIII", IDX_IMAGES_MAGIC, 2**31, 2**31, 4))
    with pytest.raises(DataError, match=r"forged-idx3-ubyte: truncated: header announces"):
        read_idx(path, IDX_IMAGES_MAGIC)
