"""Counter-based random numbers shared bit for bit by the reference backend and the kernels.

Stochastic rounding needs one random number per weight update. Drawing them from a sequential
generator would tie results to evaluation order; instead every random number is a pure function
``splitmix64(key + index)`` of a key (derived from the seed, the layer and the update step) and the
index of the synapse. Any backend, serial or parallel, in any order, gets the same numbers, and a
training run can resume from ``(seed, step)`` alone.
"""

from __future__ import annotations

import numpy as np

__all__ = ["splitmix64", "stream_key", "random_bits", "uniform01"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser applied elementwise to uint64 values (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def stream_key(seed: int, stream: int, step: int) -> int:
    """Key of the random stream for ``(seed, stream, step)``, e.g. stream = layer index."""
    k = splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    k = splitmix64(k ^ np.uint64(stream & 0xFFFFFFFFFFFFFFFF))
    k = splitmix64(k ^ np.uint64(step & 0xFFFFFFFFFFFFFFFF))
    return int(k[0])


def random_bits(key: int, index: np.ndarray, shift: int) -> np.ndarray:
    """Uniform integers in ``[0, 2**shift)`` (1 <= shift <= 63) for each ``index`` under ``key``."""
    with np.errstate(over="ignore"):
        z = splitmix64(np.uint64(key) + np.asarray(index, dtype=np.uint64))
    return (z >> np.uint64(64 - shift)).astype(np.int64)


def uniform01(key: int, index: np.ndarray) -> np.ndarray:
    """Uniform float64 numbers in ``[0, 1)`` for each ``index`` under ``key`` (53 random bits)."""
    with np.errstate(over="ignore"):
        z = splitmix64(np.uint64(key) + np.asarray(index, dtype=np.uint64))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
