"""Mappings of the learning rules onto other substrates (``mappings.brian2``: spiking neurons;
``mappings.nir``: those networks as NIR graphs for other simulators and chips).

Imports :mod:`spela_hw` only (never :mod:`sim` or :mod:`reports`).
"""
