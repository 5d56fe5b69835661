"""A spiking SPELA network as a NIR graph (Neuromorphic Intermediate Representation).

NIR is continuous-time (seconds). For layer ``k`` of a :class:`~mappings.brian2.SpikingSpela`
whose Brian2 neurons obey ``dv/dt = (-v + b)/tau_m`` (leaky) or ``dv/dt = b/tau_m`` (integrate and
fire, as conversion makes them), input spikes adding ``w`` to ``v``, threshold 1:

* ``affine{k}``: ``nir.Affine(weight=w, bias=b/tau_m)``; a spike is a unit Dirac impulse, so the
  weight is the membrane jump per spike and the bias a constant current in threshold units per s;
* ``lif{k}``: ``nir.LIF(tau=tau_m, r=tau_m, v_leak=0, v_threshold=1, v_reset=0)``, whose
  ``tau dv/dt = -v + r I`` is the Brian2 equation; or ``if{k}``: ``nir.IF(r=1, v_threshold=1,
  v_reset=0)`` for ``dv/dt = I``;
* ``readout{k}`` -> ``count{k}`` -> ``output`` (last layer) or ``output{k}`` (hidden exits):
  ``nir.Linear`` with the unit class vectors as rows (``[C, -g C]`` on ON/OFF pairs: the signed
  output ``count_on - g count_off``), then ``nir.I(r=1)``, whose state integrates the read-out
  into ``C . counts``. The predicted class is its argmax at the end of the presentation.

SPELA predicts ``argmax_c cos(h, v_c)``. With unit ``v_c`` this is ``argmax_c v_c . h``: the factor
``1/|h|`` is common to every class. NIR has no node for a norm or a division, so the cosine's
*value* (which the learning rule needs) is not in the graph; the prediction is.

What NIR cannot hold is in the graph's ``metadata`` (and docs/spiking.md §17): the input code
(rates ``rate_max_hz * pixel``, Poisson), the presentation window, the reset mode (NIR resets to
``v_reset``; the Brian2 neurons subtract the threshold by default), the refractory period, the
time step the Brian2 run used, and the learning rule, which NIR does not describe at all.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from spela_hw.errors import ConfigError, MappingError, ModelFileError

from ..brian2 import SpikingConfig, SpikingSpela

__all__ = ["EXITS", "network_to_nir", "model_to_nir", "write_nir", "readout_matrices", "require_nir"]

log = logging.getLogger(__name__)

EXITS = ("last", "all")
FORMAT_VERSION = 1


def require_nir():
    """The ``nir`` module, or a :class:`MappingError` that says how to install it."""
    try:
        import nir
    except ImportError:
        raise MappingError("NIR export needs the 'nir' package: pip install 'spela-hw[nir]'") from None
    return nir


def readout_matrices(net: SpikingSpela) -> list[np.ndarray]:
    """Per layer, the ``(n_classes, neurons)`` matrix whose product with the layer's spike counts
    gives the read-out scores (unit class vectors; ``[C, -g C]`` under ON/OFF pairs)."""
    mats = []
    for codes, gain in zip(net.class_codes_, net.off_gains_):
        c = np.asarray(codes, np.float64)
        norms = np.linalg.norm(c, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise MappingError("class codes: a class vector is zero, its cosine is undefined")
        c = c / norms
        mats.append(np.hstack([c, -gain * c]) if net.on_off else c)
    return mats


def _neuron_node(nir, net: SpikingSpela, m: int):
    neu = net.config.neuron
    tau_s = neu.tau_m_ms * 1e-3
    ones = np.ones(m)
    meta = {"reset_mode": neu.reset, "refractory_s": neu.t_ref_ms * 1e-3}
    if neu.leak:
        return nir.LIF(tau=tau_s * ones, r=tau_s * ones, v_leak=np.zeros(m), v_threshold=ones.copy(),
                       v_reset=np.zeros(m), metadata=meta)
    return nir.IF(r=ones, v_threshold=ones.copy(), v_reset=np.zeros(m), metadata=meta)


def network_to_nir(net: SpikingSpela, exits: str = "last", metadata: dict | None = None):
    """The NIR graph of a spiking SPELA network (converted or spike-trained).

    Parameters
    ----------
    net : SpikingSpela
        Its current ``weights_``, ``biases_``, class codes and neuron configuration are exported.
    exits : {"last", "all"}
        ``last``: one output, the last layer's read-out; ``all``: every layer's read-out (SPELA
        makes every layer an exit), hidden ones as outputs ``output1``, ``output2``, ...
    metadata : dict, optional
        Extra graph metadata (numbers and strings), merged over the defaults.

    Returns
    -------
    nir.NIRGraph
    """
    nir = require_nir()
    if not isinstance(net, SpikingSpela):
        raise MappingError(f"network_to_nir: needs a SpikingSpela network, got {type(net).__name__}")
    if exits not in EXITS:
        raise ConfigError("exits", f"must be one of {EXITS}, got {exits!r}")
    if net.config.encoding.code == "ttfs":
        raise MappingError("encoding.code: time-to-first-spike inputs fire once per sample and the "
                           "read-out of such a network is not a spike count; export supports rate codes")
    tau_s = net.config.neuron.tau_m_ms * 1e-3
    kind = "lif" if net.config.neuron.leak else "if"
    n_layers = len(net.weights_)
    nodes = {"input": nir.Input(input_type={"input": np.array([net.spec.dims[0]])})}
    main, side = [], []
    prev = "input"
    readouts = readout_matrices(net)
    for k, (w, b, r) in enumerate(zip(net.weights_, net.biases_, readouts), start=1):
        m = w.shape[0]
        nodes[f"affine{k}"] = nir.Affine(weight=np.array(w, np.float64), bias=np.asarray(b, np.float64) / tau_s)
        nodes[f"{kind}{k}"] = _neuron_node(nir, net, m)
        main += [(prev, f"affine{k}"), (f"affine{k}", f"{kind}{k}")]
        prev = f"{kind}{k}"
        last = k == n_layers
        if last or exits == "all":
            out = "output" if last else f"output{k}"
            nodes[f"readout{k}"] = nir.Linear(weight=r)
            nodes[f"count{k}"] = nir.I(r=np.ones(r.shape[0]))
            nodes[out] = nir.Output(output_type={"output": np.array([r.shape[0]])})
            # the chain input -> ... -> output first: sequential consumers follow the first edge
            (main if last else side).extend([(prev, f"readout{k}"), (f"readout{k}", f"count{k}"),
                                             (f"count{k}", out)])
    enc, neu = net.config.encoding, net.config.neuron
    meta = {
        "producer": "spela-hw", "format_version": FORMAT_VERSION, "time_unit": "s",
        "dims": np.array(net.spec.dims), "neurons": np.array(net.neurons),
        "kind": "spike-trained" if net.learnable else "converted",
        "sign_policy": net.config.plasticity.sign_policy,
        "neuron": kind, "reset_mode": neu.reset, "refractory_s": neu.t_ref_ms * 1e-3,
        "input_code": enc.code, "input_rate_max_hz": enc.rate_max_hz,
        "input_rate": "pixel in [0, 1] times input_rate_max_hz",
        "present_s": enc.present_ms * 1e-3, "rest_s": enc.rest_ms * 1e-3,
        "dt_s": net.config.backend.dt_ms * 1e-3,
        "readout": "argmax over classes of output at the end of present_s (spike counts times unit "
                   "class vectors; equals the argmax of the cosine, whose 1/|h| NIR cannot express)",
        "exits": exits,
        "not_exported": "the learning rule (three-factor plasticity, normaliser, error, gate): NIR "
                        "describes inference only",
    }
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=nodes, edges=main + side, metadata=meta)


def model_to_nir(clf, X_calibration, config: SpikingConfig | None = None, percentile: float = 99.9,
                 signed: bool = True, output_rate_hz: float | None = None, exits: str = "last"):
    """Convert a fitted rate ``spela_hw`` SPELA classifier to spikes (threshold balancing, the same
    conversion as ``spela-hw spike --from-model``) and return ``(graph, net)``.

    Raises
    ------
    MappingError
        The model is not SPELA, or its activation has no spiking counterpart.
    """
    spec = getattr(clf, "network_spec_", None)
    if spec is None:
        raise MappingError(f"model_to_nir: needs a fitted spela_hw classifier, got {type(clf).__name__}")
    rule = getattr(clf, "rule_", None)
    if type(rule).__name__ != "Spela":
        raise MappingError(f"rule: NIR export converts SPELA models (their read-out is the class vectors); "
                           f"this model was trained with {getattr(rule, 'name', type(rule).__name__)!r}")
    if spec.activation != "leaky_relu":
        raise MappingError(f"activation: spiking rates approximate a (leaky) ReLU, got {spec.activation!r}")
    net = SpikingSpela.from_spela_hw(clf, X_calibration, config, percentile=percentile, signed=signed,
                                     output_rate_hz=output_rate_hz)
    meta = {"conversion": "signed" if signed else "relu", "percentile": float(percentile)}
    return network_to_nir(net, exits=exits, metadata=meta), net


def write_nir(graph, path) -> Path:
    """Write ``graph`` to ``path`` atomically (a temporary file renamed over it): a reader never
    sees a half-written file and an interrupted write leaves the old one."""
    nir = require_nir()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot write the NIR file ({exc.strerror or exc})") from None
    try:
        nir.write(tmp, graph)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ModelFileError(f"{path}: cannot write the NIR file ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("wrote %s: %d nodes, %d edges", path, len(graph.nodes), len(graph.edges))
    return path
