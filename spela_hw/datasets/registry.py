"""What we know about each dataset: file names, published digests, sizes, licenses and mirrors.

The registry is data. Digests of the ``.gz`` files are the published ones (as each dataset's
authors list them); digests of the uncompressed IDX files were computed from the decompressed
published ``.gz`` files after those matched their published digests, so an uncompressed copy is
checked just as strictly. CIFAR-10's python batches and SVHN's ``.mat`` files are checked against
the md5 digests torchvision has verified them with for years (the authors publish only the
archive's md5); CIFAR-10's binary batches have no known digests. A file with no known digest is
accepted with a logged warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..errors import ConfigError

__all__ = ["FileSpec", "Layout", "DatasetInfo", "DATASETS", "dataset_info", "BUNDLED_DATASET"]

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
#: Formats with separate image and label files (the four :data:`ROLES`).
PAIRED_FORMATS = ("idx", "npz")
#: Formats whose files each hold images and labels (:attr:`Layout.train_files`, ``test_files``).
COMBINED_FORMATS = ("cifar-python", "cifar-binary", "svhn-mat")


@dataclass(frozen=True)
class FileSpec:
    """One data file and its known digests (lower-case hex; ``None`` when unknown).

    Parameters
    ----------
    filename : str
        Standard file name, e.g. ``"train-images-idx3-ubyte.gz"``.
    sha256, md5 : str or None
        Published (or derived, see the module docstring) digests. Every known digest is checked.
    size : int or None
        Size in bytes, when known; checked before hashing (cheap early failure).
    """

    filename: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None

    @property
    def digests(self) -> dict[str, str]:
        """Known digests as ``{algorithm: hexdigest}``."""
        return {k: v for k, v in (("sha256", self.sha256), ("md5", self.md5)) if v}


@dataclass(frozen=True)
class Layout:
    """One complete set of files in one format.

    Parameters
    ----------
    format : {"idx", "npz", "cifar-python", "cifar-binary", "svhn-mat"}
        Paired formats (separate image and label files): IDX (gzipped when the name ends in
        ``.gz``) or NumPy ``.npz`` with key ``arr_0``. Combined formats (each file holds images
        and labels): CIFAR-10's pickled python batches, its binary batches, SVHN's MATLAB files.
    train_images, train_labels, test_images, test_labels : str or None
        File names of a paired format; ``None`` for a role the layout lacks (the bundled set only
        has test files and splits them, see :attr:`DatasetInfo.split_at`).
    train_files, test_files : tuple of str
        File names of a combined format, concatenated in this order.
    """

    format: str
    train_images: str | None = None
    train_labels: str | None = None
    test_images: str | None = None
    test_labels: str | None = None
    train_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()

    def __post_init__(self):
        if self.format in PAIRED_FORMATS:
            if self.test_images is None or self.test_labels is None or self.train_files \
                    or self.test_files:
                raise ConfigError("layouts.test_images", f"a {self.format!r} layout names its "
                                  "test_images and test_labels (and no train_files/test_files)")
        elif self.format in COMBINED_FORMATS:
            if not self.test_files or any(getattr(self, r) is not None for r in ROLES):
                raise ConfigError("layouts.test_files", f"a {self.format!r} layout names its "
                                  "test_files (and no separate image/label files)")
        else:
            raise ConfigError("layouts.format", f"must be one of "
                              f"{PAIRED_FORMATS + COMBINED_FORMATS}, got {self.format!r}")

    def filenames(self) -> tuple[str, ...]:
        """The file names this layout needs, in role order."""
        roles = tuple(n for n in (getattr(self, r) for r in ROLES) if n is not None)
        return roles + self.train_files + self.test_files


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of one dataset.

    Parameters
    ----------
    name : str
        Registry key, also the subdirectory name under every data root.
    title, homepage, license : str
        Human-readable name, where it comes from, and its license and attribution as stated by its
        owners.
    n_train, n_test : int or None
        Expected number of samples per split (after :attr:`split_at`), checked on load.
    layouts : tuple of Layout
        Accepted file sets, in order of preference.
    files : mapping of str to FileSpec
        Every known file by name, with its digests.
    mirrors : tuple of str
        Base URLs (ending in ``/``) from which the files of the first layout can be downloaded.
    n_classes : int
        Labels must lie in ``[0, n_classes)``.
    image_shape : tuple of int
        ``(channels, height, width)`` of every image.
    split_at : int or None
        When set, the layout holds one set of files only (the test files) and the loader splits
        it: the first ``split_at`` samples become the training set, the rest the test set.
    builtin_dir : str or None
        Directory inside the package holding the files (bundled data), searched last.
    """

    name: str
    title: str
    homepage: str
    license: str
    n_train: int | None
    n_test: int | None
    layouts: tuple[Layout, ...]
    files: Mapping[str, FileSpec] = field(default_factory=dict)
    mirrors: tuple[str, ...] = ()
    n_classes: int = 10
    image_shape: tuple[int, int, int] = (1, 28, 28)
    split_at: int | None = None
    builtin_dir: str | None = None

    def __post_init__(self):
        if not self.layouts:
            raise ConfigError("layouts", "at least one layout is needed")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ConfigError("image_shape", f"must be (channels, height, width), got "
                                             f"{self.image_shape}")
        if self.n_classes < 2:
            raise ConfigError("n_classes", f"must be >= 2, got {self.n_classes}")
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))

    def file_spec(self, filename: str) -> FileSpec:
        """The :class:`FileSpec` of ``filename`` (one without digests when unknown)."""
        return self.files.get(filename, FileSpec(filename))

    @property
    def n_features(self) -> int:
        """Values per image (channels x height x width)."""
        return math.prod(self.image_shape)


def _idx_layouts(gz: bool = True, raw: bool = True) -> tuple[Layout, ...]:
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    out = []
    if gz:
        out.append(Layout("idx", *(n + ".gz" for n in names)))
    if raw:
        out.append(Layout("idx", *names))
    return tuple(out)


def _files(*specs: FileSpec) -> dict[str, FileSpec]:
    return {s.filename: s for s in specs}


_MNIST_FILES = _files(
    FileSpec("train-images-idx3-ubyte.gz",
             sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
             md5="f68b3c2dcbeaaa9fbdd348bbdeb94873", size=9_912_422),
    FileSpec("train-labels-idx1-ubyte.gz",
             sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
             md5="d53e105ee54ea40749a09fcbcd1e9432", size=28_881),
    FileSpec("t10k-images-idx3-ubyte.gz",
             sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
             md5="9fb629c4189551a2d022fa330f9573f3", size=1_648_877),
    FileSpec("t10k-labels-idx1-ubyte.gz",
             sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
             md5="ec29112dd5afa0611ce80d1b7f02629c", size=4_542),
    # Uncompressed: derived from the verified .gz files (module docstring).
    FileSpec("train-images-idx3-ubyte",
             sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
             size=47_040_016),
    FileSpec("train-labels-idx1-ubyte",
             sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
             size=60_008),
    FileSpec("t10k-images-idx3-ubyte",
             sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
             size=7_840_016),
    FileSpec("t10k-labels-idx1-ubyte",
             sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
             size=10_008),
)

_FASHION_FILES = _files(
    FileSpec("train-images-idx3-ubyte.gz",
             sha256="b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
             size=26_421_856),
    FileSpec("train-labels-idx1-ubyte.gz",
             sha256="0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
             size=29_491),
    FileSpec("t10k-images-idx3-ubyte.gz",
             sha256="cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
             size=4_422_079),
    FileSpec("t10k-labels-idx1-ubyte.gz",
             sha256="8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
             size=5_125),
    FileSpec("train-images-idx3-ubyte",
             sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
             size=47_040_016),
    FileSpec("train-labels-idx1-ubyte",
             sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
             size=60_008),
    FileSpec("t10k-images-idx3-ubyte",
             sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
             size=7_840_016),
    FileSpec("t10k-labels-idx1-ubyte",
             sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
             size=10_008),
)

# KMNIST: only md5 digests of the .gz files (and of the uncompressed training images) are known.
_KMNIST_FILES = _files(
    FileSpec("train-images-idx3-ubyte.gz", md5="bdb82020997e1d708af4cf47b453dcf7",
             size=18_165_135),
    FileSpec("train-labels-idx1-ubyte.gz", md5="e144d726b3acfaa3e44228e80efcd344"),
    FileSpec("t10k-images-idx3-ubyte.gz", md5="5c965bf0a639b31b8f53240b1b52f4d7", size=3_041_136),
    FileSpec("t10k-labels-idx1-ubyte.gz", md5="7320c461ea6c1c855c0b718fb2a4b134", size=5_120),
    FileSpec("train-images-idx3-ubyte", md5="92be26ec9822e900ac425d0a0aa84ced", size=47_040_016),
)

# CIFAR-10 python batches: the md5s torchvision checks them with (taken from the archive whose md5,
# c58f30108f718f92721af3b95e74349a, the authors publish). The binary batches have none known.
_CIFAR10_PYTHON_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
_CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def _cifar10_layouts() -> tuple[Layout, ...]:
    """Python then binary batches, each flat in the directory or in the folder its archive
    extracts to (``cifar-10-batches-py/``, ``cifar-10-batches-bin/``)."""
    out = []
    for fmt, folder, suffix in (("cifar-python", "cifar-10-batches-py/", ""),
                                ("cifar-binary", "cifar-10-batches-bin/", ".bin")):
        for prefix in ("", folder):
            out.append(Layout(fmt, train_files=tuple(prefix + n + suffix for n in _CIFAR10_TRAIN),
                              test_files=(prefix + "test_batch" + suffix,)))
    return tuple(out)


_CIFAR10_FILES = _files(*(FileSpec(prefix + name, md5=md5) for name, md5 in _CIFAR10_PYTHON_MD5.items()
                          for prefix in ("", "cifar-10-batches-py/")))

_SVHN_FILES = _files(FileSpec("train_32x32.mat", md5="e26dedcc434d2e4c54c9b2d4a06d8373"),
                     FileSpec("test_32x32.mat", md5="eb5a983be6a315427106f1b164d9cef3"))

MNIST_LICENSE = ("MNIST database by Yann LeCun and Corinna Cortes (with Christopher J. C. Burges), "
                 "http://yann.lecun.com/exdb/mnist/, licensed CC BY-SA 3.0 "
                 "(https://creativecommons.org/licenses/by-sa/3.0/).")

BUNDLED_DATASET = "mnist-bundled"

_REGISTRY = {
    "mnist": DatasetInfo(
        name="mnist", title="MNIST handwritten digits",
        homepage="http://yann.lecun.com/exdb/mnist/", license=MNIST_LICENSE,
        n_train=60_000, n_test=10_000, layouts=_idx_layouts(), files=_MNIST_FILES,
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist", title="Fashion-MNIST (Zalando Research)",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        license="Fashion-MNIST, Copyright (c) 2017 Zalando SE, MIT License.",
        n_train=60_000, n_test=10_000, layouts=_idx_layouts(), files=_FASHION_FILES,
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"),
    ),
    "kmnist": DatasetInfo(
        name="kmnist", title="Kuzushiji-MNIST",
        homepage="https://github.com/rois-codh/kmnist",
        license=("Kuzushiji-MNIST by ROIS-DS Center for Open Data in the Humanities (CODH), "
                 "derived from the Kuzushiji dataset of the National Institute of Japanese "
                 "Literature (NIJL), licensed CC BY-SA 4.0 "
                 "(https://creativecommons.org/licenses/by-sa/4.0/). Cite: Clanuwat et al., "
                 "'Deep Learning for Classical Japanese Literature', arXiv:1812.01718."),
        n_train=60_000, n_test=10_000,
        layouts=_idx_layouts() + (Layout("npz", "kmnist-train-imgs.npz",
                                         "kmnist-train-labels.npz", "kmnist-test-imgs.npz",
                                         "kmnist-test-labels.npz"),),
        files=_KMNIST_FILES,
        mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
                 "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
    ),
    # The MNIST 10,000-image test set shipped inside the package, split 8,000 / 2,000 (first /
    # last) so that training and evaluation run offline with no download.
    BUNDLED_DATASET: DatasetInfo(
        name=BUNDLED_DATASET, title="MNIST test set, bundled (train = first 8,000, test = last 2,000)",
        homepage="http://yann.lecun.com/exdb/mnist/", license=MNIST_LICENSE,
        n_train=8_000, n_test=2_000,
        layouts=(Layout("idx", None, None, "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"),),
        files={k: v for k, v in _MNIST_FILES.items() if k.startswith("t10k")},
        split_at=8_000, builtin_dir="bundled",
    ),
    # Not downloadable here (CIFAR-10 comes as a tar archive): read from a user's copy.
    "cifar10": DatasetInfo(
        name="cifar10", title="CIFAR-10 (32x32 colour images, 10 classes)",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        license=("CIFAR-10 by Alex Krizhevsky, Vinod Nair and Geoffrey Hinton; no license is stated "
                 "by its authors, who ask to cite A. Krizhevsky, 'Learning Multiple Layers of "
                 "Features from Tiny Images', technical report, University of Toronto, 2009."),
        n_train=50_000, n_test=10_000, layouts=_cifar10_layouts(), files=_CIFAR10_FILES,
        image_shape=(3, 32, 32),
    ),
    "svhn": DatasetInfo(
        name="svhn", title="SVHN, cropped digits (Street View House Numbers, 32x32 colour)",
        homepage="http://ufldl.stanford.edu/housenumbers/",
        license=("SVHN, for non-commercial use only; cite Y. Netzer, T. Wang, A. Coates, "
                 "A. Bissacco, B. Wu, A. Y. Ng, 'Reading Digits in Natural Images with "
                 "Unsupervised Feature Learning', NIPS Workshop on Deep Learning and "
                 "Unsupervised Feature Learning, 2011."),
        n_train=73_257, n_test=26_032,
        layouts=(Layout("svhn-mat", train_files=("train_32x32.mat",),
                        test_files=("test_32x32.mat",)),),
        files=_SVHN_FILES, image_shape=(3, 32, 32),
    ),
}

#: name -> :class:`DatasetInfo` of every known dataset.
DATASETS: dict[str, DatasetInfo] = _REGISTRY


def dataset_info(name: str) -> DatasetInfo:
    """Look a dataset up by name (case-insensitive; ``_`` and ``-`` are equivalent).

    Raises
    ------
    ConfigError
        For an unknown name; the message lists the known ones.
    """
    if not isinstance(name, str):
        raise ConfigError("name", f"must be a dataset name string, got {name!r}")
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise ConfigError("name", f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[key]
