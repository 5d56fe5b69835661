"""Reading CIFAR-10's two standard formats, and a pickle reader that cannot run code.

* **python version** (``data_batch_1`` ... ``data_batch_5``, ``test_batch``): each file is a pickled
  dict (written by Python 2) with ``data``, a uint8 array of shape ``(n, 3072)``, and ``labels``, a
  list of ``n`` ints. It is read by :func:`restricted_unpickle`, which only builds dicts, lists,
  strings, numbers and NumPy arrays: opening a file someone sent you never runs code.
* **binary version** (``data_batch_1.bin`` ... ``test_batch.bin``): records of 1 label byte then
  3072 pixel bytes.

In both, a row of 3072 pixels is the red, green and blue planes of a 32x32 image, each plane row
by row: exactly ``(3, 32, 32)`` in C order, so rows reshape to ``(C, H, W)`` without a copy.
Every failure is a :class:`~spela_hw.errors.DataError` naming the file and the field.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["CIFAR_IMAGE_SHAPE", "read_cifar_python_batch", "read_cifar_binary_batch",
           "restricted_unpickle"]

CIFAR_IMAGE_SHAPE = (3, 32, 32)
_PIXELS = 3 * 32 * 32
_RECORD = 1 + _PIXELS  # binary version: label byte + pixels

# (module, name) a pickled array or dtype refers to -> (module under numpy >= 2, name). Python 2
# and NumPy 1 pickles name numpy.core; NumPy 2 pickles name numpy._core. Nothing else resolves.
_ALLOWED_GLOBALS = {
    **{(f"numpy.{core}.multiarray", n): ("multiarray", n)
       for core in ("core", "_core") for n in ("_reconstruct", "scalar")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): ("numeric", "_frombuffer")
       for core in ("core", "_core")},
    ("numpy", "ndarray"): None,
    ("numpy", "dtype"): None,
    ("_codecs", "encode"): None,  # bytes pickled by Python 3 at protocol 2
}


def _numpy_internal(module: str, name: str):
    """``numpy._core.<module>.<name>`` (``numpy.core`` before NumPy 2), without the warning
    importing ``numpy.core`` gives under NumPy 2."""
    for base in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{base}.{module}"), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy has no {module}.{name}")  # pragma: no cover


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (only NumPy arrays, "
                                         "dicts, lists, strings and numbers are read)")
        target = _ALLOWED_GLOBALS[(module, name)]
        if target is not None:
            return _numpy_internal(*target)
        return super().find_class(module, name)


def restricted_unpickle(path: str | os.PathLike) -> object:
    """Unpickle a data file, building only dicts, lists, strings, numbers and NumPy arrays.

    Python 2 strings are decoded as latin-1 (what NumPy needs for the raw bytes of pickled
    arrays), so Python 2 and Python 3 pickles both load.

    Raises
    ------
    DataError
        Not a pickle, truncated, or referring to anything else (a class or function that could run
        code); the message names the file.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    try:
        return _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{p}: not a readable pickle: {exc}") from None
    # A damaged stream fails inside the opcodes (EOFError, ValueError, even SystemError from the C
    # unpickler) or in NumPy's array/dtype reconstruction: no globals but NumPy's are reachable,
    # so any exception here means a damaged file.
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{p}: not a readable pickle ({type(exc).__name__}: {exc})") from None


def _entry(batch: dict, key: str, path: Path):
    """``batch[key]``, also when the pickle's keys are bytes."""
    for k in (key, key.encode()):
        if k in batch:
            return batch[k]
    keys = ", ".join(repr(k.decode() if isinstance(k, bytes) else k) for k in batch)
    raise DataError(f"{path}: no {key!r} entry in the CIFAR batch (has {keys})")


def read_cifar_python_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch of CIFAR-10's python version.

    Returns
    -------
    images : numpy.ndarray
        uint8, shape ``(n, 3, 32, 32)`` (a view of the batch's ``data``).
    labels : numpy.ndarray
        int64, shape ``(n,)``.

    Raises
    ------
    DataError
        Not a pickle, not a dict, ``data`` or ``labels`` missing or of the wrong type or shape.
    """
    p = Path(path)
    batch = restricted_unpickle(p)
    if not isinstance(batch, dict):
        raise DataError(f"{p}: not a CIFAR batch: the pickle holds a {type(batch).__name__}, "
                        "not a dict")
    data, labels = _entry(batch, "data", p), _entry(batch, "labels", p)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != _PIXELS:
        raise DataError(f"{p}: 'data' must be a uint8 array of shape (n, {_PIXELS}), got "
                        f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    try:
        y = np.asarray(labels)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{p}: 'labels' is not a list of integers: {exc}") from None
    if y.shape != (data.shape[0],) or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise DataError(f"{p}: 'labels' must be {data.shape[0]} integers (one per row of 'data'), "
                        f"got {y.dtype} {y.shape}")
    return data.reshape(-1, *CIFAR_IMAGE_SHAPE), y.astype(np.int64)


def read_cifar_binary_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch of CIFAR-10's binary version (records of 1 label byte + 3072 pixels).

    Returns
    -------
    images : numpy.ndarray
        uint8, shape ``(n, 3, 32, 32)`` (a strided view of the file's bytes).
    labels : numpy.ndarray
        int64, shape ``(n,)``.

    Raises
    ------
    DataError
        Empty, or not a whole number of records (truncated or not a CIFAR-10 binary batch).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    n, rest = divmod(len(raw), _RECORD)
    if n == 0 or rest:
        raise DataError(f"{p}: record: {len(raw)} bytes is not a whole number of {_RECORD}-byte "
                        f"records (1 label byte + {_PIXELS} pixels): truncated, or not a CIFAR-10 "
                        "binary batch")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(n, _RECORD)
    return records[:, 1:].reshape(n, *CIFAR_IMAGE_SHAPE), records[:, 0].astype(np.int64)
