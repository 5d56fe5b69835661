"""Hardware model: crossbars, memory ledger, energy and latency, device effects.

Imports :mod:`spela_hw` only (never :mod:`mappings` or :mod:`reports`).
"""
