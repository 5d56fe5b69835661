"""Mappings of the learning rules onto other substrates (``mappings.brian2``: spiking neurons).

Imports :mod:`spela_hw` only (never :mod:`sim` or :mod:`reports`).
"""
