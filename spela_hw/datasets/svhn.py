"""Reading SVHN's cropped digits (``train_32x32.mat``, ``test_32x32.mat``).

Each file is a MATLAB v5 file with ``X``, uint8 of shape ``(32, 32, 3, n)`` (height, width, RGB,
sample), and ``y``, shape ``(n, 1)``, the digits 1 to 9 and 10 for the digit 0. Reading needs
scipy (``pip install 'spela-hw[svhn]'``).

A damaged file is a :class:`~spela_hw.errors.DataError` naming it, with one known exception:
scipy's ``loadmat`` (seen with scipy 1.18) can crash the process (segmentation fault) on a file
whose element tag holds an invalid data-type code, so the md5 check of ``load_dataset`` (on by
default) is what stands between a corrupted copy and scipy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["SVHN_IMAGE_SHAPE", "read_svhn_mat"]

SVHN_IMAGE_SHAPE = (3, 32, 32)
_ZERO_LABEL = 10  # SVHN's label of the digit 0


def _loadmat(path: Path) -> dict:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError(f"{path}: reading SVHN .mat files needs scipy, which is not installed: "
                        "pip install 'spela-hw[svhn]'") from None
    try:
        return loadmat(path)  # SVHN's files hold only X and y
    except NotImplementedError as exc:  # MATLAB v7.3 files are HDF5
        raise DataError(f"{path}: unsupported .mat version ({exc}); SVHN's files are MATLAB v5")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    # scipy's parser fails in many ways on a damaged file (MatReadError is a plain Exception).
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: not a readable MATLAB v5 .mat file ({type(exc).__name__}: "
                        f"{exc})") from None


def read_svhn_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one SVHN cropped-digits file.

    Returns
    -------
    images : numpy.ndarray
        uint8, shape ``(n, 3, 32, 32)`` (channels first, a transposed view of ``X``).
    labels : numpy.ndarray
        int64 digits in ``[0, 10)``, shape ``(n,)`` (the file's 10 becomes 0).

    Raises
    ------
    DataError
        scipy missing, not a MATLAB v5 file, ``X`` or ``y`` missing, of the wrong type or shape, or
        labels outside 1..10; the message names the file and the variable.
    """
    p = Path(path)
    mat = _loadmat(p)
    for key in ("X", "y"):
        if key not in mat:
            raise DataError(f"{p}: no variable {key!r} in the .mat file (has "
                            f"{sorted(k for k in mat if not k.startswith('__'))})")
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{p}: 'X' must be uint8 of shape (32, 32, 3, n), got {x.dtype} {x.shape}")
    n = x.shape[3]
    if y.shape not in ((n, 1), (n,)) or not (np.issubdtype(y.dtype, np.integer)
                                             or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"{p}: 'y' must be {n} labels of shape ({n}, 1), one per image of 'X', got "
                        f"{y.dtype} {y.shape}")
    y = y.reshape(n)
    bad = (y < 1) | (y > _ZERO_LABEL) | (y != np.round(y))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{p}: 'y' holds {int(bad.sum())} labels outside the digits 1..10 "
                        f"(10 means 0), e.g. {y[i]!r} at index {i}")
    labels = y.astype(np.int64)
    labels[labels == _ZERO_LABEL] = 0
    return x.transpose(3, 2, 0, 1), labels
