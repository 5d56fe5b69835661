"""Class vectors that firing rates can represent, and the sign policy that decides them.

Rates and traces cannot be negative, while SPELA's default class vectors (a rotated simplex) have
mixed signs. For ``y >= 0`` the best cosine to a signed ``e`` is ``|e+|/|e|``, and the ``e+``
directions of different classes are much closer than the ``e`` themselves, so training towards a
signed target with non-negative outputs loses separability (docs/spiking.md §6). Two policies:

``nonnegative`` (default)
    Every layer gets non-negative unit codes. ``disjoint``: neurons are split, by a seeded
    permutation, into one block per class (sizes ``floor(d/N)`` or ``ceil(d/N)``), entries
    ``1/sqrt(block)``; pairwise cosines are exactly 0, the non-negative counterpart of the simplex.
    Needs ``N <= d``. ``sparse``: each neuron joins each class with probability ``density`` with a
    uniform positive weight (every neuron in at least one class); overlaps are unavoidable when
    ``N > d``. A supplied vector with any negative entry raises :class:`MappingError`.
``on_off_differential``
    Keeps the signed vectors (``spela_hw.classvectors``). Each of the ``d`` units is an ON/OFF pair
    of neurons; the layer's signed output is ``u = y_on - y_off``; the cosine, norm and error are
    formed from ``u``, the ON neuron learns ``+delta_u`` and the OFF neuron ``-delta_u``. Twice the
    neurons and synapses.
"""

from __future__ import annotations

import numpy as np

from spela_hw.classvectors import class_vectors, layer_rng
from spela_hw.errors import ConfigError, MappingError

__all__ = ["disjoint_codes", "sparse_codes", "layer_codes", "check_codes", "pairwise_cosines"]


def disjoint_codes(n_classes: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_classes, dim)`` non-negative unit rows with disjoint supports covering every neuron."""
    if n_classes > dim:
        raise MappingError(f"disjoint codes need n_classes <= width, got {n_classes} classes for "
                           f"a layer of {dim} neurons; use class_codes='sparse'")
    perm = rng.permutation(dim)
    codes = np.zeros((n_classes, dim))
    for c, block in enumerate(np.array_split(perm, n_classes)):
        codes[c, block] = 1.0 / np.sqrt(len(block))
    return codes


def sparse_codes(n_classes: int, dim: int, rng: np.random.Generator, density: float = 0.2) -> np.ndarray:
    """``(n_classes, dim)`` sparse non-negative unit rows; every neuron belongs to some class and
    no two classes share a direction (redrawn up to 100 times)."""
    for _ in range(100):
        codes = _sparse_draw(n_classes, dim, rng, density)
        if pairwise_cosines(codes)[1] < 1 - 1e-9:
            return codes
    raise MappingError(f"could not draw {n_classes} distinct sparse codes in {dim} dimensions")


def _sparse_draw(n_classes: int, dim: int, rng: np.random.Generator, density: float) -> np.ndarray:
    mask = rng.random((n_classes, dim)) < density
    orphans = np.flatnonzero(~mask.any(axis=0))
    mask[rng.integers(0, n_classes, size=len(orphans)), orphans] = True
    for c in np.flatnonzero(~mask.any(axis=1)):  # a class with no neuron gets one
        mask[c, rng.integers(0, dim)] = True
    codes = np.where(mask, rng.uniform(0.5, 1.0, size=mask.shape), 0.0)
    return codes / np.linalg.norm(codes, axis=1, keepdims=True)


def pairwise_cosines(codes: np.ndarray) -> tuple[float, float]:
    """Minimum and maximum cosine between distinct rows (rows are unit vectors)."""
    g = codes @ codes.T
    off = g[~np.eye(len(g), dtype=bool)]
    return float(off.min()), float(off.max())


def layer_codes(n_classes: int, dim: int, seed: int, layer: int, sign_policy: str = "nonnegative",
                kind: str = "disjoint", density: float = 0.2) -> np.ndarray:
    """The class codes of one layer, derived from ``(seed, layer)`` alone.

    Returns ``(n_classes, dim)`` unit rows: non-negative under ``nonnegative``, the signed
    ``spela_hw`` class vectors (simplex when it exists) under ``on_off_differential``.
    """
    if sign_policy == "on_off_differential":
        return class_vectors(n_classes, dim, seed, layer=layer, method="auto")
    if sign_policy != "nonnegative":
        raise ConfigError("plasticity.sign_policy", f"unknown policy {sign_policy!r}")
    rng = layer_rng(seed ^ 0x5A5A, layer)
    if kind == "disjoint":
        return disjoint_codes(n_classes, dim, rng)
    if kind == "sparse":
        return sparse_codes(n_classes, dim, rng, density)
    raise ConfigError("plasticity.class_codes", f"unknown kind {kind!r}")


def check_codes(codes, n_classes: int, dim: int, sign_policy: str, layer: int) -> np.ndarray:
    """Validate user-supplied codes of one layer; return them as float64 unit rows."""
    field = f"class_codes[{layer}]"
    arr = np.asarray(codes, dtype=np.float64)
    if arr.shape != (n_classes, dim):
        raise MappingError(f"{field}: expected shape {(n_classes, dim)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MappingError(f"{field}: contains NaN or infinity")
    if sign_policy == "nonnegative" and (arr < 0).any():
        raise MappingError(f"{field}: has negative entries (min {arr.min():.3g}) but firing rates "
                           f"cannot be negative under sign_policy='nonnegative'; use non-negative "
                           f"codes or sign_policy='on_off_differential'")
    norms = np.linalg.norm(arr, axis=1)
    if (norms == 0).any():
        raise MappingError(f"{field}: class {int(np.argmin(norms))} has a zero vector")
    return arr / norms[:, None]
