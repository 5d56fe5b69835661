"""Private numba kernels. Called only through :class:`spela_hw.backends.numba_ops.NumbaOps`
and :mod:`spela_hw.backends.numba_fused`.

Rules for every kernel: validated contiguous arrays and scalars in, no globals read (compile-time
constants aside: the codes of :mod:`spela_hw.codes`), never raise (saturation events are counted
into a ``sat`` vector and the wrapper applies the overflow policy), random numbers derived from an
explicit key.

Cost to keep in mind: every array view numba makes (``a[i]``, ``a[i, j0:j1]``) and every array
passed to a function that is not inlined costs two atomic reference counts. Where a loop makes
one per short row, they can cost more than the row's arithmetic: the conv projection kernels'
loss and Adam took 418 us of a 1.16 ms per-sample step until they indexed ``proj[c, u, t]`` in
place (``conv_float``; with two smaller changes the step became 1.5x faster). In the dense
per-sample trainer they are about a seventh of the samples ``perf`` takes, yet removing the
per-row views there measured within noise.

Every kernel is made by :func:`jit`, whose on-disk cache is safe to share between processes
(sweep and report workers, several ``spela-hw`` commands side by side): see :class:`SharedCache`.

Modules
-------
========================  ========================================================================
``fixed``, ``floating``   per-step kernels of each number type (forward, post-synaptic term, ...)
``activation``            the activation functions and their gates, once
``chunk``                 fused SPELA training over a chunk of samples, on one core or two
``records``               the parameter records (named tuples) the fused kernels take
``sync``                  the two threads' handshake, barrier and split of every layer
``blocks_fixed``,         the block passes: a block of outputs of one layer, its pending update
``blocks_float``          fused with its forward pass
``rounding_lanes``        weights plus rounded update sums, and the lane-width variants below
``sr_unit``               the stochastic-rounding unit's random words, in vector loops
``loss_unit``             SPELA's post-synaptic terms of one sample
``sparse``                non-zero inputs by column, their counts, the rows a pass touches
``buffers``               aligned scratch, block-major weights, the counters the trainers return
``forward``               batched forward pass (inference, ``ops.forward`` on many samples)
``update``                update of row-major weights (``ops.update``, every rule's per-step path)
``conv_fixed``            the fixed-point conv SPELA block (:mod:`spela_hw.conv.fixed_numba`)
``conv_float``            the float32 conv SPELA block's pool, loss and Adam (``conv.float_numba``)
``optim_fixed``           Adam's step of fixed-point weights from exact sums (``rules.optim``'s twin)
========================  ========================================================================

Why the fused trainer is fast
-----------------------------
* **One pass over the weights per step.** The update of step ``t`` is kept *pending* and applied
  row by row during the forward pass of step ``t + 1`` (a row is updated, then immediately read
  for the new dot products while it sits in L1). Every weight is streamed once per step instead
  of read twice and written once. Each weight still receives exactly the same operations in the
  same order as in the per-step path, so results are unchanged.
* **Layout for the access pattern.** Wide layers are held *input-major*, ``wt[j, i] = W[i, j]``:
  row ``j`` holds all fan-out weights of input ``j``, so the update ``wt[j, :] += p * x_j`` and
  the forward ``acc[:] += wt[j, :] * x_j`` are contiguous SIMD loops over output neurons (no float
  reduction whose order the compiler would have to keep). Narrow layers (few outputs, e.g. the
  10-unit output layer) stay *output-major* ``W[i, :]``: their loops run over the long input
  dimension instead of a handful of outputs.
* **Zero skipping.** In input-major layers, rows whose pending and new inputs are all zero are not
  touched at all (about 80 % of MNIST pixels are zero). A zero input never changes a weight, not
  even stochastically, so nothing is lost.
* **Narrow integers.** Fixed-point weights stay in their storage type (``int8`` for 8-bit);
  products that fit 32 bits are formed and summed in 32-bit lanes (flushed to 64 bits before they
  could overflow), post-synaptic terms and inputs are held in ``int32`` when their formats allow.
* **Blocks of output neurons** are independent in the fused pass: two threads each own a block
  of every layer (its weights stored contiguously, :func:`~.buffers.block_view`, and scratch of
  its own), see :mod:`~.chunk`. Every reduction over output neurons (``|h|^2``,
  ``h . v``) covers all outputs in a fixed order and each output sums its inputs in the same
  order whatever the blocks, so results do not depend on the number of threads.

Arithmetic
----------
Fixed point: exactly the pipeline documented in :mod:`spela_hw.backends.reference` (same integer
formulas, same float64 loss-unit expressions, the same stochastic-rounding unit of
:mod:`spela_hw.rng`, drawn as :mod:`~.sr_unit` explains): bit-exact. Float32: the forward pass
sums in float32 (input order in wide layers, eight interleaved partial sums in narrow layers) and
then adds the bias, as ``x @ W.T + b`` does with its own order; a batch of one updates
``W += fl32(p_i x_j)``, bit for bit the reference's update; mini-batch sums ``sum_n p_ni x_nj``
are accumulated in float32 in sample order (BLAS may order them differently: within tolerance).
The loss unit sums ``|h|^2`` and ``h . v`` in float64 in four interleaved partial sums (the
reference sums in order: within tolerance).

Lane-width variants
-------------------
The same operation in narrower SIMD lanes when the formats allow it (checked by the caller; the
results are those of the general loop, bit for bit). Adding rounded updates to a row
(:mod:`~.rounding_lanes`, ``e = shift_w - 16``):

==================  ============================================================================
``fx_apply``        general: any rounding mode, wrap-around, any shift; 64-bit vector lanes
                    when no sum can wrap (``fast``), the reference's scalar formulas otherwise
``fx_apply_px``     ``fx_apply`` for one contribution ``p x`` (a batch of one): product in the loop
``fx_apply_p32``    one contribution, ``|p x| < 2**30``: product and rounding in int32 lanes
``fx_apply_p16``    ``fx_apply_p32`` with increments and weights in int16 lanes (8-bit weights)
``fx_apply_px32``   one contribution, ``|p x| >= 2**30``: ``p = ph 2**e + pl`` split so that every
                    term fits int32 (no 64-bit multiply or shift)
``fx_apply_xp32``   ``fx_apply_px32`` along an output-major row (one ``p``, inputs vary)
``fx_bias_block``   bias of a block: the SR words in one vector loop; ``fx_bias`` one by one
==================  ============================================================================

Elsewhere: accumulators sum ``kflush`` products in int32 lanes before flushing to int64
(``blocks_fixed``, ``forward``); LeakyReLU activation with its slope product in int32
(``blocks_fixed.fx_activate_row``); the fixed loss unit converts through int32 when ``h`` and
``v`` fit (``loss_unit.fx_post_sample``); float32 output-major dot products in eight
interleaved partial sums, two samples at a time (``blocks_float.dot8x2``).
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
