"""Application layer: experiments, sweeps, figures, reports and the ``spela-hw`` command line.

Imports the public API of :mod:`spela_hw`, :mod:`sim` and :mod:`mappings`; nothing imports it.
"""
