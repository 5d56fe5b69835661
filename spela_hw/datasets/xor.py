"""Noisy parity (XOR-type) data: the smallest problem no linear classifier can solve.

Used to show that SPELA's hidden layers learn a non-linear separation.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["make_noisy_xor"]


def make_noisy_xor(n_samples: int, n_bits: int = 2, noise: float = 0.1,
                   random_state: int | np.random.Generator | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Noisy Boolean parity data.

    Each sample draws ``n_bits`` independent fair bits ``b`` in {0, 1}; its features are
    ``b + noise * N(0, 1)`` and its label is the parity ``sum(b) mod 2`` (XOR for two bits).

    Parameters
    ----------
    n_samples : int
        Number of samples, >= 1.
    n_bits : int
        Number of input bits, >= 2.
    noise : float
        Standard deviation of the Gaussian noise added to every feature, >= 0.
    random_state : int, numpy.random.Generator or None
        Seed or generator; the same seed gives the same data.

    Returns
    -------
    X : numpy.ndarray
        float32, shape ``(n_samples, n_bits)``.
    y : numpy.ndarray
        int64 labels in {0, 1}, shape ``(n_samples,)``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) \
            or n_samples < 1:
        raise ConfigError("n_samples", f"must be an integer >= 1, got {n_samples!r}")
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 2:
        raise ConfigError("n_bits", f"must be an integer >= 2, got {n_bits!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.floating)) \
            or not np.isfinite(noise) or noise < 0:
        raise ConfigError("noise", f"must be a finite number >= 0, got {noise!r}")
    rng = np.random.default_rng(random_state)
    bits = rng.integers(0, 2, size=(int(n_samples), int(n_bits)), dtype=np.int64)
    y = np.bitwise_xor.reduce(bits, axis=1).astype(np.int64)
    X = (bits + noise * rng.standard_normal(bits.shape)).astype(np.float32)
    return X, y
