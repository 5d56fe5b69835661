"""Backends execute the primitives that every learning rule is built from.

A rule (:mod:`spela_hw.rules`) is backend-agnostic Python orchestration; all arithmetic on arrays
goes through an *ops* object with the same methods in every backend:

* :class:`~spela_hw.backends.reference.ReferenceOps`: pure NumPy, the executable specification
  (slow, obviously correct);
* :class:`~spela_hw.backends.numba_ops.NumbaOps`: numba-JIT kernels that equal the reference bit
  for bit on every fixed-point path and within float tolerance on float32 paths.

The fixed-point pipeline both implement is documented in :mod:`spela_hw.backends.reference`.
"""

from __future__ import annotations

from ..errors import ConfigError

BACKENDS = ("numba", "reference")


def make_ops(backend: str, precision, network_spec):
    """The ops object of ``backend`` for a precision and network spec."""
    if backend == "reference":
        from .reference import ReferenceOps

        return ReferenceOps(precision, network_spec)
    if backend == "numba":
        from .numba_ops import NumbaOps

        return NumbaOps(precision, network_spec)
    raise ConfigError("backend", f"must be one of {BACKENDS}, got {backend!r}")
