"""Private numba kernels. Called only through :class:`spela_hw.backends.numba_ops.NumbaOps`.

Rules for every kernel: validated contiguous arrays and scalars in, no globals read (compile-time
constants aside), never raise (saturation events are counted into a ``sat`` vector and the
wrapper applies the overflow policy), random numbers derived from an explicit key.
"""

from numba import njit

# The one place where numba options live. No fastmath: integer paths must be exact and float
# paths must not be re-associated differently from the reference.
JIT = dict(cache=True, nogil=True)


def jit(fn):
    return njit(**JIT)(fn)
