"""SPELA's update as spiking plasticity, simulated with Brian2.

A network spec plus the SPELA rule become an explicit Brian2 ``Network``: a rate- or time-coded
input layer, LIF neurons per layer, and feed-forward synapses whose plasticity is the SPELA update
in three-factor form (pre-synaptic spike x post-synaptic error built, inside the simulation, from
the label's class code and the layer-wide norm and cosine of the output traces). A whole training
and test schedule runs as one Brian2 ``run()`` driven by ``TimedArray`` s, on ``cpp_standalone``
when a compiler is present and in runtime mode otherwise.

>>> from spela_hw import NetworkSpec, Spela
>>> from mappings.brian2 import SpikingSpela, SpikingConfig
>>> net = SpikingSpela(NetworkSpec((784, 400, 10)), Spela(), SpikingConfig())
>>> result = net.fit(X_train, y_train, epochs=1, X_test=X_test, y_test=y_test)
>>> result.layer_accuracy, result.counts["train"]["total"]["synaptic_ops"]

Brian2 quantities never leave this package: the public API takes floats with unit suffixes and
returns NumPy arrays and plain dicts. Every Brian2 code string is generated in
:mod:`mappings.brian2.codegen`. Design choices and measured effects: ``mappings/brian2/README.md``.
"""

from .codes import disjoint_codes, layer_codes, pairwise_cosines, sparse_codes
from .config import (BackendConfig, EncodingConfig, NeuronConfig, PlasticityConfig, QuantizationConfig,
                     SpikingConfig)
from .model import SpikingSpela, install_class_vectors, rate_spela_with_codes
from .network import compiler_available, resolve_target
from .results import SpikingResult, readout

__all__ = [
    "BackendConfig",
    "EncodingConfig",
    "NeuronConfig",
    "PlasticityConfig",
    "QuantizationConfig",
    "SpikingConfig",
    "SpikingResult",
    "SpikingSpela",
    "compiler_available",
    "disjoint_codes",
    "install_class_vectors",
    "layer_codes",
    "pairwise_cosines",
    "rate_spela_with_codes",
    "readout",
    "resolve_target",
    "sparse_codes",
]
