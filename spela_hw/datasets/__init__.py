"""Datasets: MNIST, Fashion-MNIST, KMNIST, CIFAR-10, SVHN from their standard files, bundled
MNIST, noisy XOR.

>>> from spela_hw.datasets import load_dataset
>>> ds = load_dataset("mnist-bundled")          # offline: 8,000 train / 2,000 test
>>> ds.x_train.shape, ds.features("test").dtype
((8000, 784), dtype('float32'))
>>> ds.image_shape, ds.images("test").shape     # the same values as (n, C, H, W) images
((1, 28, 28), (2000, 1, 28, 28))

Files are searched in ``data_dir``, ``$SPELA_HW_DATA/<name>``, the user cache
(``$XDG_CACHE_HOME/spela-hw/datasets/<name>``), ``/usr/local/share/datasets/<name>`` and
``/usr/share/datasets/<name>``; they are checked against published digests.

Formats and where to put the files (``<root>`` is ``$SPELA_HW_DATA`` or any directory above;
``data_dir=`` may also name the dataset's own directory):

==================  ===============================================  ===========  ============
name                files in ``<root>/<name>/``                      image shape  download
==================  ===============================================  ===========  ============
``mnist``,          ``train-images-idx3-ubyte[.gz]``,                (1, 28, 28)  yes
``fashion-mnist``,  ``train-labels-idx1-ubyte[.gz]``,
``kmnist``          ``t10k-images-idx3-ubyte[.gz]``,
                    ``t10k-labels-idx1-ubyte[.gz]`` (IDX; KMNIST
                    also its ``kmnist-*.npz``)
``mnist-bundled``   shipped in the package                           (1, 28, 28)  no need
``cifar10``         the python version, ``data_batch_1`` ...          (3, 32, 32)  no
                    ``data_batch_5`` and ``test_batch`` (pickled
                    dicts, read without running code), or the binary
                    version, ``data_batch_1.bin`` ... ``test_batch.bin``
                    (records of 1 label byte + 3072 pixels); either
                    directly or in the ``cifar-10-batches-py/`` or
                    ``cifar-10-batches-bin/`` folder the archive
                    extracts to
``svhn``            ``train_32x32.mat``, ``test_32x32.mat`` (cropped  (3, 32, 32)  no
                    digits, MATLAB v5; needs scipy:
                    ``pip install 'spela-hw[svhn]'``; label 10 is
                    read as digit 0; ``extra_32x32.mat`` is not read)
==================  ===============================================  ===========  ============

Flat features (``Dataset.features``, what the MLPs take) hold each image in ``(C, H, W)`` order:
CIFAR-10 stores its red, green and blue 32x32 planes in that order and SVHN's ``(H, W, C, n)``
arrays are transposed to it, so ``Dataset.images`` (or :func:`as_images`) reshapes them to
``(n, C, H, W)`` for a conv network without a copy. CIFAR-10's python batches and SVHN's files
are verified against the md5 digests torchvision uses; CIFAR-10's binary batches have no known
digest and are accepted with a logged warning.
"""

from .download import download_dataset
from .files import clear_verification_cache, file_digest, read_idx, verify_file
from .loader import Dataset, as_images, load_dataset, to_float
from .locate import DATA_ENV_VAR, SYSTEM_DATA_DIRS, cache_dir, candidate_dirs, find_dataset_dir
from .registry import BUNDLED_DATASET, DATASETS, DatasetInfo, FileSpec, Layout, dataset_info
from .xor import make_noisy_xor

__all__ = [
    "Dataset",
    "load_dataset",
    "to_float",
    "as_images",
    "DATASETS",
    "DatasetInfo",
    "FileSpec",
    "Layout",
    "BUNDLED_DATASET",
    "dataset_info",
    "find_dataset_dir",
    "candidate_dirs",
    "cache_dir",
    "DATA_ENV_VAR",
    "SYSTEM_DATA_DIRS",
    "download_dataset",
    "verify_file",
    "file_digest",
    "read_idx",
    "clear_verification_cache",
    "make_noisy_xor",
]
