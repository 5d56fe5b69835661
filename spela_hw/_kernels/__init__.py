"""Private numba kernels. Called only through :class:`spela_hw.backends.numba_ops.NumbaOps`.

Rules for every kernel: validated contiguous arrays and scalars in, no globals read (compile-time
constants aside), never raise (saturation events are counted into a ``sat`` vector and the
wrapper applies the overflow policy), random numbers derived from an explicit key.
"""

import hashlib
import os
from pathlib import Path

from numba import njit

# The one place where numba options live. No fastmath: integer paths must be exact and float
# paths must not be re-associated differently from the reference.
JIT = dict(cache=True, nogil=True)

_STAMP = "kernel-sources.sha256"


def drop_stale_cache(src_dir: Path) -> bool:
    """Delete numba's cache files in ``src_dir/__pycache__`` when any ``*.py`` there changed
    since the last call; returns whether it did.

    numba keys a cached function on its own source file only (numba issue #8396): a kernel that
    calls a changed function of another file would load stale machine code (wrong results, or
    a crash when arguments changed meaning). Our kernels call across files, so any change
    recompiles them all. Silently does nothing where the cache directory is read-only (numba
    then caches elsewhere, under the same limitation)."""
    sources = sorted(src_dir.glob("*.py"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sources))
    digest = digest.hexdigest()
    cache = src_dir / "__pycache__"
    stamp = cache / _STAMP
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for f in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
            f.unlink(missing_ok=True)
        tmp = cache / f"{_STAMP}.{os.getpid()}.tmp"
        tmp.write_text(digest)
        os.replace(tmp, stamp)  # atomic: a concurrent import reads the old or the new stamp
    except OSError:
        return False
    return True


drop_stale_cache(Path(__file__).resolve().parent)


def jit(fn):
    return njit(**JIT)(fn)
