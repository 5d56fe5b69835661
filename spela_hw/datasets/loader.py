"""``load_dataset``: find, verify, parse and check a dataset; the :class:`Dataset` it returns."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .download import download_dataset
from .cifar import read_cifar_binary_batch, read_cifar_python_batch
from .files import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx, read_npz_array, verify_file
from .locate import cache_dir, find_dataset_dir, find_layout
from .registry import PAIRED_FORMATS, DatasetInfo, Layout, dataset_info
from .svhn import read_svhn_mat

__all__ = ["Dataset", "load_dataset", "to_float", "as_images"]

log = logging.getLogger(__name__)

SPLITS = ("train", "test")


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 features in ``[0, 1]`` (``x / 255``)."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise DataError(f"to_float expects uint8 pixels, got dtype {x.dtype}")
    return x.astype(np.float32) * np.float32(1.0 / 255.0)


def as_images(x: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Flat samples ``(n, C*H*W)`` as images ``(n, C, H, W)``: a view of ``x`` (no copy) when its
    rows are contiguous, as the arrays of :class:`Dataset` and :meth:`Dataset.features` are.

    Raises
    ------
    DataError
        When ``x`` is not 2-D with ``C*H*W`` columns.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != math.prod(image_shape):
        raise DataError(f"as_images: expected samples of shape (n, {math.prod(image_shape)}) for "
                        f"images {tuple(image_shape)}, got {x.shape}")
    return x.reshape(x.shape[0], *image_shape)


@dataclass(frozen=True, eq=False)
class Dataset:
    """An image-classification dataset with a train and a test split.

    Arrays are read-only. Pixels stay uint8 (what a device would store); use :meth:`features`
    for flat float32 inputs in ``[0, 1]`` (the MLPs') and :meth:`images` for the same values as
    ``(n, C, H, W)`` images (the conv networks').

    Parameters
    ----------
    name : str
        Registry name.
    x_train, x_test : numpy.ndarray
        uint8, shape ``(n, n_features)``: images flattened in ``(C, H, W)`` order.
    y_train, y_test : numpy.ndarray
        int64 class labels in ``[0, n_classes)``, shape ``(n,)``.
    source : str
        Directory the files were read from.
    n_classes : int
        Number of classes.
    image_shape : tuple of int
        ``(channels, height, width)`` of one image; a 2-tuple ``(height, width)`` means one channel.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    n_classes: int = 10
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self):
        shape = tuple(self.image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or not all(isinstance(d, (int, np.integer)) and d >= 1 for d in shape):
            raise ConfigError("image_shape", f"must be (channels, height, width), got "
                                             f"{self.image_shape!r}")
        object.__setattr__(self, "image_shape", tuple(int(d) for d in shape))
        n_features = math.prod(self.image_shape)
        for split in SPLITS:
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 \
                    or x.shape[1] != n_features:
                raise DataError(f"{self.name}: x_{split} must be uint8 of shape (n, {n_features}), "
                                f"got {getattr(x, 'dtype', type(x))} {getattr(x, 'shape', '')}")
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (x.shape[0],):
                raise DataError(f"{self.name}: y_{split} must be int64 of shape ({x.shape[0]},), "
                                f"got {getattr(y, 'dtype', type(y))} {getattr(y, 'shape', '')}")
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise DataError(f"{self.name}: y_{split} has labels outside [0, {self.n_classes})")
            # Read-only views: the dataset is immutable, the caller's arrays are left alone.
            for attr, arr in ((f"x_{split}", x), (f"y_{split}", y)):
                view = arr.view()
                view.setflags(write=False)
                object.__setattr__(self, attr, view)

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in SPLITS:
            raise ConfigError("split", f"must be 'train' or 'test', got {split!r}")
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def features(self, split: str = "train") -> np.ndarray:
        """float32 features in ``[0, 1]`` of ``split`` (``"train"`` or ``"test"``), a new array."""
        return to_float(self._split(split)[0])

    def images(self, split: str = "train") -> np.ndarray:
        """float32 images in ``[0, 1]`` of ``split``, shape ``(n, C, H, W)``: the values of
        :meth:`features` (a new array) seen as images, without a further copy."""
        return as_images(self.features(split), self.image_shape)

    def labels(self, split: str = "train") -> np.ndarray:
        """int64 labels of ``split`` (read-only)."""
        return self._split(split)[1]

    @property
    def n_features(self) -> int:
        """Values per sample, ``C * H * W``."""
        return math.prod(self.image_shape)

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.x_test.shape[0])

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
                f"n_classes={self.n_classes}, source={self.source!r})")


def _read_pair(info: DatasetInfo, layout: Layout, directory: Path, images: str, labels: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """Read one (images, labels) pair of a paired format and check it against ``info``."""
    ipath, lpath = directory / images, directory / labels
    if layout.format == "npz":
        x, y = read_npz_array(ipath), read_npz_array(lpath)
        if x.dtype != np.uint8 or x.ndim != 3:
            raise DataError(f"{ipath}: expected uint8 images of shape (n, h, w), "
                            f"got {x.dtype} {x.shape}")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{lpath}: expected 1-D integer labels, got {y.dtype} {y.shape}")
    else:
        x, y = read_idx(ipath, IDX_IMAGES_MAGIC), read_idx(lpath, IDX_LABELS_MAGIC)
    return _checked(info, x[:, None], y, ipath, lpath)  # one channel


_COMBINED_READERS = {
    "cifar-python": read_cifar_python_batch,
    "cifar-binary": read_cifar_binary_batch,
    "svhn-mat": read_svhn_mat,
}


def _read_combined(info: DatasetInfo, layout: Layout, directory: Path, filenames: tuple[str, ...]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Read and concatenate the files of a combined format (each holds images and labels)."""
    read = _COMBINED_READERS[layout.format]
    parts = [_checked(info, *read(directory / f), directory / f, directory / f) for f in filenames]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def _read_split(info: DatasetInfo, layout: Layout, directory: Path, split: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """The flat uint8 images and int64 labels of ``split`` in ``layout``'s format."""
    if layout.format in PAIRED_FORMATS:
        return _read_pair(info, layout, directory, getattr(layout, f"{split}_images"),
                          getattr(layout, f"{split}_labels"))
    return _read_combined(info, layout, directory, getattr(layout, f"{split}_files"))


def _checked(info: DatasetInfo, x: np.ndarray, y: np.ndarray, ipath: Path, lpath: Path
             ) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, C, H, W)`` and labels checked against ``info``, as ``(n, C*H*W)`` uint8 and
    ``(n,)`` int64."""
    if tuple(x.shape[1:]) != tuple(info.image_shape):
        raise DataError(f"{ipath}: images are {x.shape[1:]}, expected {info.image_shape}")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{ipath} / {lpath}: inconsistent: {x.shape[0]} images but "
                        f"{y.shape[0]} labels")
    if y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= info.n_classes:
            bad = int(np.count_nonzero((y < 0) | (y >= info.n_classes)))
            raise DataError(f"{lpath}: {bad} labels out of range [0, {info.n_classes}) "
                            f"(min {lo}, max {hi})")
    return x.reshape(x.shape[0], -1), y.astype(np.int64)


def _check_count(info: DatasetInfo, split: str, n: int, path: Path) -> None:
    expected = info.n_train if split == "train" else info.n_test
    if expected is not None and n != expected:
        raise DataError(f"{path}: {info.name} {split} split has {n} samples, expected {expected}")


def load_dataset(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = False,
                 verify: bool = True) -> Dataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        ``"mnist"``, ``"fashion-mnist"``, ``"kmnist"`` or ``"mnist-bundled"`` (the MNIST test set
        shipped in the package: train = its first 8,000 images, test = its last 2,000), or
        ``"cifar10"`` or ``"svhn"`` (from a copy of their files, see the package docstring).
    data_dir : path-like, optional
        The only directory searched when given (see :func:`find_dataset_dir` for the search
        order without it).
    download : bool
        When the files are found nowhere, download them (verified, atomic) into ``data_dir``
        when given, else into the user cache.
    verify : bool
        Check every file against its known digests (cached per path, size and mtime).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Files missing (listing every place looked), digest mismatch, or malformed files.
    ConfigError
        Unknown dataset name.
    """
    info = dataset_info(name)
    try:
        directory = find_dataset_dir(info.name, data_dir)
    except DataError:
        if not download:
            raise
        directory = download_dataset(info.name, Path(data_dir).expanduser() if data_dir is not None
                                     else cache_dir(info.name))
    layout = find_layout(info, directory)
    assert layout is not None  # find_dataset_dir / download_dataset guarantee a complete layout
    if verify:
        for filename in layout.filenames():
            verify_file(directory / filename, info.file_spec(filename))
    x_test, y_test = _read_split(info, layout, directory, "test")
    if info.split_at is not None:
        if info.split_at >= x_test.shape[0]:
            raise DataError(f"{directory / layout.test_images}: {x_test.shape[0]} samples, "
                            f"cannot split at {info.split_at}")
        x_train, y_train = x_test[:info.split_at], y_test[:info.split_at]
        x_test, y_test = x_test[info.split_at:], y_test[info.split_at:]
    else:
        x_train, y_train = _read_split(info, layout, directory, "train")
    _check_count(info, "train", x_train.shape[0], directory)
    _check_count(info, "test", x_test.shape[0], directory)
    log.info("loaded %s from %s (%d train, %d test)", info.name, directory, x_train.shape[0],
             x_test.shape[0])
    return Dataset(name=info.name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   source=str(directory), n_classes=info.n_classes,
                   image_shape=tuple(info.image_shape))
