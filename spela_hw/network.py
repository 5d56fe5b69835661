"""The mutable state of one network: stored weights, class vectors and the update counter."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .classvectors import class_vectors
from .specs import NetworkSpec, PrecisionSpec

__all__ = ["NetworkState", "init_network", "init_real_params"]


@dataclass
class NetworkState:
    """Parameters as the backend stores them (float32, or integers in the weight format).

    ``vectors[k]`` are layer k's class vectors as stored (float32 unit rows, or integers at the
    power-of-two scale ``vector_scales[k]``), ``vector_norms[k]`` their norms;
    ``unit_vectors[k]`` are the float64 unit vectors they were made from. ``update_step`` counts
    weight updates and keys the stochastic-rounding stream, so a run resumes exactly.
    """

    spec: NetworkSpec
    precision: PrecisionSpec
    weights: list
    biases: list
    unit_vectors: list
    vectors: list
    vector_norms: list
    vector_scales: list
    class_vector_seed: int
    rounding_seed: int
    update_step: int = 0
    extra: dict = field(default_factory=dict)  # rule-specific state (e.g. optimiser moments)


def init_real_params(spec: NetworkSpec, rng: np.random.Generator) -> tuple[list, list]:
    """He-uniform / He-normal weights and PyTorch-default (or zero) biases, float64."""
    ws, bs = [], []
    for m, n in spec.layer_shapes():
        if spec.init == "he_uniform":
            bound = math.sqrt(6.0 / n)
            w = rng.uniform(-bound, bound, size=(m, n))
        else:
            w = rng.normal(0.0, math.sqrt(2.0 / n), size=(m, n))
        if spec.bias_init == "uniform_fan_in":
            b = rng.uniform(-1 / math.sqrt(n), 1 / math.sqrt(n), size=m)
        else:
            b = np.zeros(m)
        ws.append(w)
        bs.append(b)
    return ws, bs


def init_network(spec, precision, ops, class_vector_method, class_vector_seed, rounding_seed,
                 weights=None, biases=None, rng=None) -> NetworkState:
    """Build a state from real-valued parameters (drawn from ``rng`` when not given)."""
    if weights is None:
        weights, biases = init_real_params(spec, rng)
    stored_w, stored_b = [], []
    for k, (w, b) in enumerate(zip(weights, biases)):
        sw, sb, _ = ops.layer(k).store_params(np.asarray(w, np.float64), np.asarray(b, np.float64))
        stored_w.append(sw)
        stored_b.append(sb)
    units, vecs, norms, scales = [], [], [], []
    for k, m in enumerate(spec.dims[1:]):
        v = class_vectors(spec.n_classes, m, class_vector_seed, layer=k, method=class_vector_method)
        vq, vn, s = ops.store_class_vectors(v)
        units.append(v)
        vecs.append(vq)
        norms.append(vn)
        scales.append(s)
    return NetworkState(spec, precision, stored_w, stored_b, units, vecs, norms, scales,
                        int(class_vector_seed), int(rounding_seed))
