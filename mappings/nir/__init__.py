"""NIR export of spiking SPELA networks (converted or spike-trained), for other simulators and chips.

>>> from spela_hw.io import load_model
>>> from mappings.nir import model_to_nir, write_nir
>>> graph, net = model_to_nir(load_model("model.npz"), X_calibration)   # doctest: +SKIP
>>> write_nir(graph, "model.nir")                                        # doctest: +SKIP

The graph layout and what does not carry over are in :mod:`mappings.nir.export` and
docs/spiking.md §17. Needs the optional ``nir`` package (``pip install 'spela-hw[nir]'``).
"""

from .export import EXITS, model_to_nir, network_to_nir, readout_matrices, require_nir, write_nir

__all__ = ["EXITS", "model_to_nir", "network_to_nir", "readout_matrices", "require_nir", "write_nir"]
