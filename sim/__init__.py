"""Hardware model: crossbars, memory ledger, energy and latency, device effects.

Imports :mod:`spela_hw` only (never :mod:`mappings` or :mod:`reports`).

Public API
----------
Descriptions and data
    :class:`HardwareConfig` (and its sections), :func:`load_preset`, :func:`list_presets`,
    :func:`load_hardware_toml`, :func:`hardware_from_dict`, :class:`Conventions`,
    :func:`load_tables` (the shipped energy tables with provenance).
Workloads and counts
    :class:`Workload`, :class:`LayerShape`, :func:`vgg8`, :func:`conv_workload`,
    :func:`closed_form_counts` (the :class:`~spela_hw.counts.Counts` a learner would fill).
Memory
    :class:`BitWidths`, :func:`memory_ledger` -> :class:`MemoryLedger` (``rows``,
    ``by_class()``, ``by_level()``, ``fits(budget)``, ``to_records()``), :class:`MemoryBudget`,
    :data:`ALGORITHMS`, solvers :func:`widest_network`, :func:`largest_batch`,
    :func:`widest_weight_bits`.
Arrays
    :func:`tile_workload` -> :class:`TilingResult` (``to_records()``, ``summary()``).
Calibrated chip
    :func:`chip_estimate` -> :class:`ChipEstimate` (area, image period, energy, TOPS, TOPS/W of a
    preset with a ``[chip]`` section), :func:`compare_with_published`, :func:`neurosim_table`
    (NeuroSim V1.4 Table VII and the coefficients calibrated on it).
Energy and latency
    :func:`action_events` -> :class:`ActionEvents` (the events table: layer, category, item,
    action, count, bits; and the latency), priced by :func:`price_events` with
    :class:`ActionCosts` (``ActionCosts.uniform(1.0)`` for golden counts) -> :class:`EnergyBreakdown`
    (``by_category()``, ``latency_ns``, ``to_records()``); :func:`energy_breakdown` does both.
One design point
    :func:`design_point` -> :class:`DesignPointResult` (``summary()``, ``tables()``,
    ``to_records(table)``, ``to_dict()``, ``interval(phase)``): ledger + tiling + energy for one
    configuration.
Uncertainty
    :func:`energy_interval` -> :class:`EnergyInterval` (nominal, low, high pJ per sample with every
    placeholder at the ends of its range); :func:`compare_energy` -> :class:`EnergyAdvantage`
    (does one rule stay cheaper than another over the whole range?).
Device effects
    :class:`CrossbarDevice` (implements :class:`spela_hw.device.MatVecDeviceModel`: conductance
    levels, non-linear updates, variation, faults, endurance, and ADC/DAC quantisation of the
    matrix-vector products inside training), :class:`ConverterConfig` (its input encoding and
    ADC, from the preset by default), :class:`LifetimeResult`.

All records are flat dicts of plain numbers and strings, ready for ``pandas.DataFrame``.
Every result carries the conventions it used (``conventions``).

Example
-------
>>> from sim import design_point
>>> r = design_point((784, 1024, 10), "rram-22nm", "spela", weight_bits=8, batch_size=50,
...                  budget="256 KiB")
>>> r.tiling.arrays, r.fit_train.fits  # the SRAM budget: the 794 KiB of weights sit in the arrays
(456, True)
>>> design_point((784, 1024, 10), "rram-22nm", "spela", weight_bits=8, budget="total=256 KiB").fit_train.fits
False
"""

from .config import (BufferLevel, Conventions, CrossbarConfig, DeviceConfig, DramConfig, HardwareConfig,
                     PeripheryConfig, TechnologyConfig, hardware_from_dict)
from .crossbar_device import ConverterConfig, CrossbarDevice, LifetimeResult
from .design import DesignPointResult, compare_energy, design_point, energy_interval, resolve_bits
from .energy import (ActionCosts, ActionEvents, EnergyAdvantage, EnergyBreakdown, EnergyInterval, action_costs,
                     action_events, energy_breakdown, lifetime_days, price_events)
from .ledger import (ALGORITHMS, BitWidths, FitResult, MemoryBudget, MemoryLedger, largest_batch, memory_ledger,
                     widest_network, widest_weight_bits)
from .periphery import ChipEstimate, chip_estimate, compare_with_published, neurosim_table
from .presets import list_presets, load_hardware_toml, load_preset, preset_dict, resolve_hardware
from .tables import load_tables
from .tiling import MatrixTiling, TilingResult, tile_matrix, tile_workload
from .workload import LayerShape, Workload, closed_form_counts, conv_workload, vgg8

__all__ = [
    "ALGORITHMS", "ActionCosts", "ActionEvents", "BitWidths", "ChipEstimate", "chip_estimate", "compare_with_published",
    "neurosim_table", "EnergyAdvantage", "EnergyInterval", "compare_energy",
    "energy_interval", "BufferLevel", "Conventions", "ConverterConfig", "CrossbarConfig",
    "CrossbarDevice",
    "DesignPointResult", "DeviceConfig", "DramConfig", "EnergyBreakdown", "FitResult", "HardwareConfig",
    "LayerShape", "LifetimeResult", "MatrixTiling", "MemoryBudget", "MemoryLedger", "PeripheryConfig",
    "TechnologyConfig", "TilingResult", "Workload", "action_costs", "action_events", "closed_form_counts", "conv_workload",
    "design_point", "energy_breakdown", "hardware_from_dict", "largest_batch", "lifetime_days",
    "list_presets", "load_hardware_toml", "load_preset", "load_tables", "memory_ledger", "preset_dict",
    "price_events",
    "resolve_bits", "resolve_hardware", "tile_matrix", "tile_workload", "vgg8", "widest_network",
    "widest_weight_bits",
]
