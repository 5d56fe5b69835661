"""Private numba kernels. Called only through :class:`spela_hw.backends.numba_ops.NumbaOps`.

Rules for every kernel: validated contiguous arrays and scalars in, no globals read (compile-time
constants aside), never raise (saturation events are counted into a ``sat`` vector and the
wrapper applies the overflow policy), random numbers derived from an explicit key.

Every kernel is made by :func:`jit`, whose on-disk cache is safe to share between processes
(sweep and report workers, several ``spela-hw`` commands side by side): see :class:`SharedCache`.
"""

import contextlib
import functools
import hashlib
import logging
import os
from pathlib import Path

from numba import config, njit
from numba.core.caching import FunctionCache

try:
    import fcntl
except ImportError:  # not POSIX: no lock (numba's own cache, with its races, as before)
    fcntl = None

log = logging.getLogger(__name__)

# The one place where numba options live. No fastmath: integer paths must be exact and float
# paths must not be re-associated differently from the reference.
JIT = dict(cache=True, nogil=True)

_STAMP = "kernel-sources.sha256"
_LOCK = "spela-hw-cache.lock"
# Cache directory -> digest of the sources this process compiles from (see drop_stale_cache).
_expected_stamps: dict[Path, str] = {}


@contextlib.contextmanager
def cache_lock(cache_dir: Path, exclusive: bool):
    """Hold a lock on numba's cache directory ``cache_dir`` (shared by readers, exclusive for
    writers) across processes; a no-op where locks are not available."""
    if fcntl is None:
        yield
        return
    fd = os.open(cache_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_stamp(cache_dir: Path) -> str | None:
    try:
        return (cache_dir / _STAMP).read_text()
    except OSError:
        return None


class SharedCache(FunctionCache):
    """numba's per-function cache, made safe for processes that share it.

    numba saves a new overload by reading the function's index, taking the first free data-file
    number and writing index and data file, without a lock: two processes compiling different
    signatures of one kernel at once both take ``.1.nbc`` and the index can end up naming the
    other signature's machine code (wrong results or a crash in every later process that loads
    it; numba issues #4807, #10128). Here saves hold an exclusive lock on the cache directory and
    loads a shared one. Neither is used, and the process compiles for itself, when another
    process has meanwhile changed the directory's stamp of kernel sources (its sources differ
    from ours). The index key also records numba's bounds checking, which numba leaves out,
    so that a ``NUMBA_BOUNDSCHECK=1`` build and a normal build never load each other.
    """

    def _current(self) -> bool:
        cache_dir = Path(self.cache_path)
        expected = _expected_stamps.get(cache_dir)
        return expected is None or _read_stamp(cache_dir) == expected

    def load_overload(self, sig, target_context):
        with cache_lock(Path(self.cache_path), exclusive=False):
            return super().load_overload(sig, target_context) if self._current() else None

    def save_overload(self, sig, data):
        with cache_lock(Path(self.cache_path), exclusive=True):
            if self._current():
                super().save_overload(sig, data)
            else:
                log.debug("kernel sources changed on disk: %s not cached", self._name)

    def _index_key(self, sig, codegen):
        return (*super()._index_key(sig, codegen), ("boundscheck", bool(config.BOUNDSCHECK)))


def jit(fn=None, **options):
    """``numba.njit`` with the package's options (:data:`JIT`) and a :class:`SharedCache`.

    Use as ``@jit`` or ``@jit(parallel=True)``.
    """
    if fn is None:
        return functools.partial(jit, **options)
    disp = njit(**JIT, **options)(fn)
    if hasattr(disp, "enable_caching"):  # not under NUMBA_DISABLE_JIT (disp is then fn itself)
        disp._cache = SharedCache(disp.py_func)
    return disp


def kernel_cache_dir() -> Path | None:
    """The directory numba caches this package's kernels in (``NUMBA_CACHE_DIR`` aware), or
    ``None`` when there is no writable one."""
    try:
        return Path(FunctionCache(kernel_cache_dir).cache_path)
    except RuntimeError:  # numba found no writable place
        return None


def drop_stale_cache(src_dir: Path, cache_dir: Path | None = None) -> bool:
    """Delete numba's cache files in ``cache_dir`` (default ``src_dir/__pycache__``) when any
    ``*.py`` of ``src_dir`` changed since the last call; returns whether it did.

    numba keys a cached function on its own source file only (numba issue #8396): a kernel that
    calls a changed function of another file would load stale machine code (wrong results, or
    a crash when arguments changed meaning). Our kernels call across files, so any change
    recompiles them all. Runs under the cache directory's exclusive lock, so that concurrent
    imports drop once and never delete what another process has just compiled from the same
    sources. Silently does nothing where the cache directory is not writable."""
    sources = sorted(src_dir.glob("*.py"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sources))
    digest = digest.hexdigest()
    cache = cache_dir or src_dir / "__pycache__"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with cache_lock(cache, exclusive=True):
            _expected_stamps[cache] = digest
            if _read_stamp(cache) == digest:
                return False
            for f in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
                f.unlink(missing_ok=True)
            tmp = cache / f"{_STAMP}.{os.getpid()}.tmp"
            tmp.write_text(digest)
            os.replace(tmp, cache / _STAMP)  # atomic: a reader without the lock sees old or new
    except OSError:
        return False
    return True


_cache_dir = kernel_cache_dir()
if _cache_dir is not None:
    drop_stale_cache(Path(__file__).resolve().parent, _cache_dir)
