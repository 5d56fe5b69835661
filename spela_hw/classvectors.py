"""Fixed class vectors: one unit vector per class at every layer.

* ``simplex``: a randomly rotated regular simplex, the closed-form minimiser of the Coulomb energy
  on the sphere when ``n_classes <= dim + 1`` (every pairwise cosine is ``-1/(N-1)``).
* ``coulomb``: projected gradient descent on the Coulomb energy with restarts, for
  ``n_classes > dim + 1`` where no closed form exists.
* ``gaussian``: normalised N(0, 1) vectors, the random ablation of the paper.
* ``auto``: ``simplex`` when it exists, otherwise ``coulomb``.
* ``aligned``: ``auto``, except in a layer exactly as wide as the number of classes (a 10-unit
  output layer), where the simplex is aligned with the axes: the centred one-hots
  ``e_c - 1/N`` (normalised). A LeakyReLU output is almost non-negative, and a randomly rotated
  simplex in N dimensions leaves some classes almost out of the non-negative orthant's reach
  (``|v_c^+|`` as low as 0.2), so those classes learn late or never (issue 18, bench/RESULTS.md);
  aligned, every class reaches cosine ``sqrt((N-1)/N)`` with a non-negative output, and the
  read-out is the argmax of the output units. Only the rotation differs from ``simplex``.
* ``onehot``: ``auto``, except in a layer exactly N wide, where class ``c``'s vector is unit ``c``
  (the one-hots ``e_c``, pairwise cosine 0). Not a simplex: a deviation from the paper. Two
  non-negative vectors cannot have a negative cosine, so these are as far apart as targets of a
  non-negative output can be, and the output reaches them exactly (cosine 1, where the loss's
  gradient vanishes); aligned targets keep pushing the other units below zero. Same read-out
  as ``aligned``.

Each layer's set is derived from ``(seed, layer)`` alone so that a model may store the seed instead
of the vectors and hardware may regenerate them.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

__all__ = ["CLASS_VECTOR_METHODS", "class_vectors", "simplex_vectors", "aligned_simplex_vectors",
           "coulomb_vectors", "coulomb_energy", "layer_rng", "nonnegative_readout_margins"]

CLASS_VECTOR_METHODS = ("auto", "simplex", "coulomb", "gaussian", "aligned", "onehot")


def layer_rng(seed: int, layer: int) -> np.random.Generator:
    """The generator for layer ``layer``'s class vectors: independent across layers, seed-derived."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xC1A55, int(layer)])


def simplex_vectors(n_classes: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(dim, n_classes)`` matrix of unit columns with pairwise cosine ``-1/(N-1)``."""
    n, d = n_classes, dim
    if not 2 <= n <= d + 1:
        raise ConfigError("n_classes", f"a regular simplex of {n} vertices needs 2 <= N <= dim + 1 = {d + 1}")
    # Helmert basis: rows are the vertices of a regular simplex centred at the origin in R^(N-1).
    h = np.zeros((n, n - 1))
    for j in range(1, n):
        h[:j, j - 1] = 1.0 / np.sqrt(j * (j + 1))
        h[j, j - 1] = -j / np.sqrt(j * (j + 1))
    # Haar-random isometric embedding of R^(N-1) into R^d (sign-fixed QR of a Gaussian matrix).
    q, r = np.linalg.qr(rng.standard_normal((d, n - 1)))
    q = q * np.sign(np.diag(r))
    v = q @ h.T
    return v / np.linalg.norm(v, axis=0)


def aligned_simplex_vectors(n_classes: int) -> np.ndarray:
    """The ``(N, N)`` regular simplex aligned with the axes: rows ``e_c - 1/N``, normalised
    (pairwise cosine ``-1/(N-1)``; the positive part of row ``c`` is unit ``c`` alone)."""
    if n_classes < 2:
        raise ConfigError("n_classes", f"need at least 2 classes, got {n_classes}")
    v = np.eye(n_classes) - 1.0 / n_classes
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def nonnegative_readout_margins(vectors: np.ndarray) -> np.ndarray:
    """How well a non-negative output can stand for each class: per class ``c``, the cosine
    margin ``cos(p, v_c) - max_{o != c} cos(p, v_o)`` of ``p = max(v_c, 0)``, the non-negative
    output closest to ``v_c`` (unit rows ``vectors``, ``(N, d)``). A margin <= 0 means that
    the best a ReLU-like output can do for class ``c`` is read out as another class (-inf when
    ``v_c`` has no positive entry)."""
    v = np.asarray(vectors, np.float64)
    p = np.maximum(v, 0.0)
    norms = np.linalg.norm(p, axis=1)
    cos = (p @ v.T) / np.where(norms > 0, norms, 1.0)[:, None]
    own = np.diag(cos).copy()
    np.fill_diagonal(cos, -np.inf)
    return np.where(norms > 0, own - cos.max(axis=1), -np.inf)


def coulomb_energy(points: np.ndarray) -> float:
    """Coulomb energy sum_{i<j} 1/|p_i - p_j| of the rows of ``points``."""
    diff = points[:, None, :] - points[None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    iu = np.triu_indices(len(points), 1)
    return float((1.0 / np.maximum(dist[iu], 1e-300)).sum())


def coulomb_vectors(
    n_classes: int, dim: int, rng: np.random.Generator, steps: int = 10_000, restarts: int = 4
) -> np.ndarray:
    """``(dim, n_classes)`` unit columns relaxed to a low Coulomb energy (best of ``restarts``)."""
    if dim < 1 or n_classes < 2:
        raise ConfigError("n_classes", "need at least 2 classes and dimension >= 1")
    best, best_e = None, np.inf
    for _ in range(restarts):
        p = rng.standard_normal((n_classes, dim))
        p /= np.linalg.norm(p, axis=1, keepdims=True)
        e, s = coulomb_energy(p), 1e-2
        for _ in range(steps):
            diff = p[:, None, :] - p[None, :, :]
            dist3 = np.sqrt((diff**2).sum(-1)) ** 3
            np.fill_diagonal(dist3, np.inf)
            f = (diff / np.maximum(dist3, 1e-300)[..., None]).sum(1)
            f -= (f * p).sum(1, keepdims=True) * p  # tangent component only
            trial = p + s * f
            trial /= np.linalg.norm(trial, axis=1, keepdims=True)
            e_trial = coulomb_energy(trial)
            if e_trial <= e:
                p, e, s = trial, e_trial, 2 * s
            else:
                s /= 2
                if s < 1e-20:
                    break
        if e < best_e:
            best, best_e = p, e
    return best.T.copy()


def class_vectors(
    n_classes: int, dim: int, seed: int, layer: int = 0, method: str = "auto", steps: int = 10_000
) -> np.ndarray:
    """Class vectors of one layer as a float64 ``(n_classes, dim)`` matrix with unit rows.

    Rows (not columns) are the vectors so that ``V[y]`` is the target of label ``y``.
    """
    if method not in CLASS_VECTOR_METHODS:
        raise ConfigError("class_vectors", f"must be one of {CLASS_VECTOR_METHODS}, got {method!r}")
    if n_classes < 2:
        raise ConfigError("n_classes", f"need at least 2 classes, got {n_classes}")
    if dim < 1:
        raise ConfigError("dim", f"layer width must be >= 1, got {dim}")
    if method in ("aligned", "onehot"):
        if dim == n_classes:
            return aligned_simplex_vectors(n_classes) if method == "aligned" else np.eye(n_classes)
        method = "auto"
    rng = layer_rng(seed, layer)
    if method == "auto":
        method = "simplex" if n_classes <= dim + 1 else "coulomb"
    if method == "simplex":
        v = simplex_vectors(n_classes, dim, rng)
    elif method == "coulomb":
        v = coulomb_vectors(n_classes, dim, rng, steps=steps)
    else:
        v = rng.standard_normal((dim, n_classes))
        v /= np.linalg.norm(v, axis=0)
    return np.ascontiguousarray(v.T)
