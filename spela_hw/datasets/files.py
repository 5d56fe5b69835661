"""Reading and checking data files: digests, IDX (gzipped or not) and KMNIST's ``.npz``.

Every failure is a :class:`~spela_hw.errors.DataError` whose message names the file and says what is
wrong with it. Parsing never loops in Python: the decompressed bytes are viewed with
``np.frombuffer``.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import threading
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import NPZ_READ_ERRORS
from .registry import FileSpec

__all__ = ["file_digest", "verify_file", "read_idx", "read_npz_array", "IDX_IMAGES_MAGIC",
           "IDX_LABELS_MAGIC", "clear_verification_cache"]

log = logging.getLogger(__name__)

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20

# (resolved path, size, mtime_ns, algorithm) -> hexdigest. A file rewritten in place changes its
# mtime or size, so a stale entry is never used for new content.
_digest_cache: dict[tuple[str, int, int, str], str] = {}
_warned_unknown: set[str] = set()
_lock = threading.Lock()


def clear_verification_cache() -> None:
    """Forget every cached digest (the next verification hashes the files again)."""
    with _lock:
        _digest_cache.clear()
        _warned_unknown.clear()


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, cached in-process per (path, size, mtime).

    Parameters
    ----------
    path : path-like
        File to hash.
    algorithm : str
        Any :func:`hashlib.new` name, e.g. ``"sha256"`` or ``"md5"``.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, algorithm)
    with _lock:
        if key in _digest_cache:
            return _digest_cache[key]
    h = hashlib.new(algorithm)
    try:
        with open(p, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    digest = h.hexdigest()
    with _lock:
        _digest_cache[key] = digest
    return digest


def verify_file(path: str | os.PathLike, spec: FileSpec) -> None:
    """Check a file against every digest (and the size) its :class:`FileSpec` knows.

    A file with no known digest is accepted with one logged warning per path.

    Raises
    ------
    DataError
        Naming the file, the expected and the actual digest (or size).
    """
    p = Path(path)
    if spec.size is not None:
        try:
            size = p.stat().st_size
        except OSError as exc:
            raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from exc
        if size != spec.size:
            raise DataError(f"{p}: size mismatch: expected {spec.size} bytes, got {size} "
                            f"(truncated or not the published file)")
    digests = spec.digests
    if not digests:
        with _lock:
            first = str(p) not in _warned_unknown
            _warned_unknown.add(str(p))
        if first:
            log.warning("%s: no published digest is known for %r; accepted unverified",
                        p, spec.filename)
        return
    for algorithm, expected in digests.items():
        actual = file_digest(p, algorithm)
        if actual != expected.lower():
            raise DataError(f"{p}: {algorithm} digest mismatch: expected {expected}, "
                            f"got {actual}")


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when its name ends in ``.gz``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if path.name.endswith(".gz"):
        if not raw.startswith(_GZIP_MAGIC):
            raise DataError(f"{path}: not a gzip file (bad gzip magic {raw[:2]!r})")
        try:
            return gzip.decompress(raw)
        except EOFError as exc:
            raise DataError(f"{path}: corrupted gzip: truncated compressed stream") from exc
        except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise DataError(f"{path}: corrupted gzip: {exc}") from exc
    return raw


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzipped when the name ends in ``.gz``).

    Parameters
    ----------
    path : path-like
        The file.
    expected_magic : int
        :data:`IDX_IMAGES_MAGIC` (2051, 3 dimensions) or :data:`IDX_LABELS_MAGIC` (2049, 1 dimension).

    Returns
    -------
    numpy.ndarray
        Read-only uint8 array of shape ``(n, rows, cols)`` or ``(n,)``, a view of the
        decompressed bytes (no copy).

    Raises
    ------
    DataError
        Wrong magic, truncated or over-long file, corrupted gzip.
    """
    p = Path(path)
    data = _read_bytes(p)
    if len(data) < 4:
        raise DataError(f"{p}: truncated: {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IDX_IMAGES_MAGIC else "labels"
        raise DataError(f"{p}: wrong IDX magic {magic} (expected {expected_magic} for {kind})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{p}: truncated: {len(data)} bytes, IDX header needs {header}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(dims)  # Python ints: a forged header cannot overflow
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes"
        raise DataError(f"{p}: {what}: header announces shape {dims} = {expected} bytes, "
                        f"file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_npz_array(path: str | os.PathLike, key: str = "arr_0") -> np.ndarray:
    """Read one array from an ``.npz`` file (``allow_pickle=False``: never runs code).

    Raises
    ------
    DataError
        Not a zip / npz file, truncated, or the key is missing.
    """
    p = Path(path)
    try:
        z = np.load(p, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy array, not an archive
            raise DataError(f"{p}: not an npz archive (a single .npy array)")
        with z:
            if key not in z.files:
                raise DataError(f"{p}: no array {key!r} in the npz (has {z.files})")
            arr = z[key]
        if not isinstance(arr, np.ndarray):  # a zip member that is not a .npy array comes back as bytes
            raise DataError(f"{p}: {key!r} in the npz is not a NumPy array")
    except DataError:
        raise
    except NPZ_READ_ERRORS as exc:
        raise DataError(f"{p}: not a readable npz file: {exc}") from exc
    arr.setflags(write=False)
    return arr
