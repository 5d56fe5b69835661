"""The trainers' float products run on one BLAS thread.

BLAS splits a product differently for another thread count, which changes float32 bits: the
same fit gave another model with one BLAS thread than with two (backprop, 784-512-256-10, batch
64, one epoch on 3,000 MNIST images: outputs up to 2.6e-3 apart). Report and sweep workers set the
thread variables to their share of the cores, so without this a model's bits would depend on
where it was trained. BLAS threads also spin-wait for each other: with other work on the 2-core
machine, an 8,000-image conv epoch took 138 s on two BLAS threads against 7 s on one. Kernel
threads (``n_jobs``) are numba's, whose results never depend on their number.
"""

from __future__ import annotations

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_controller = None


def one_blas_thread():
    """Context manager: every loaded BLAS library limited to one thread inside it (14 µs; a new
    ``threadpool_limits`` rescans the loaded libraries: 190 µs)."""
    global _controller
    if _controller is None:  # numpy's BLAS is loaded with numpy, before this runs
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
