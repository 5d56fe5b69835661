"""Datasets: MNIST, Fashion-MNIST, KMNIST from their standard files, bundled MNIST, noisy XOR.

>>> from spela_hw.datasets import load_dataset
>>> ds = load_dataset("mnist-bundled")          # offline: 8,000 train / 2,000 test
>>> ds.x_train.shape, ds.features("test").dtype
((8000, 784), dtype('float32'))

Files are searched in ``data_dir``, ``$SPELA_HW_DATA/<name>``, the user cache
(``$XDG_CACHE_HOME/spela-hw/datasets/<name>``), ``/usr/local/share/datasets/<name>`` and
``/usr/share/datasets/<name>``; they are checked against published digests.
"""

from .download import download_dataset
from .files import clear_verification_cache, file_digest, read_idx, verify_file
from .loader import Dataset, load_dataset, to_float
from .locate import DATA_ENV_VAR, SYSTEM_DATA_DIRS, cache_dir, candidate_dirs, find_dataset_dir
from .registry import BUNDLED_DATASET, DATASETS, DatasetInfo, FileSpec, Layout, dataset_info
from .xor import make_noisy_xor

__all__ = [
    "Dataset",
    "load_dataset",
    "to_float",
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
