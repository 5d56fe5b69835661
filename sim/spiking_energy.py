"""Energy of spiking workloads: per-event counts times a named per-event table.

The counts are plain dicts (per sample) such as the ``counts[phase]["total"]`` of a spiking run
(``synaptic_ops``, ``plasticity_updates``, ``neuron_updates``, ``output_spikes``, ...); this module
never imports the spiking mapping. Tables live in ``sim/tables/neuromorphic.toml`` with the same
record convention as the other tables (value, unit, node, vdd, source, kind).

Conventions (name one next to every figure; they are not comparable with each other):

* ``loihi_measured``: Loihi silicon (14 nm) per synaptic op, learning update, neuron update, spike;
* ``truenorth_measured``: TrueNorth (28 nm) per synaptic event; no on-chip learning;
* ``spinnaker_measured``: SpiNNaker 1 (130 nm, ARM cores) per synaptic event;
* ``accumulate_45nm``: arithmetic only at 45 nm (0.9 pJ add per synaptic op, 4.6 pJ MAC per update).

A count the convention does not price is listed in ``unpriced``, never silently counted as zero.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

from spela_hw.errors import ConfigError

from .tables import ParamRecord, parse_entry
from .tomlfile import read_toml

__all__ = ["SPIKING_CONVENTIONS", "SpikingEnergyBreakdown", "load_neuromorphic_table",
           "price_spiking", "crossover_spikes_per_input"]

SPIKING_CONVENTIONS = ("loihi_measured", "truenorth_measured", "spinnaker_measured", "accumulate_45nm")
_TABLE_FILE = "neuromorphic.toml"


@dataclass(frozen=True)
class NeuromorphicTable:
    records: dict[str, ParamRecord]
    conventions: dict[str, dict[str, str]]


def parse_neuromorphic(doc: dict, table: str = "neuromorphic") -> NeuromorphicTable:
    """Validate a parsed table: every record, and every convention's reference to a record."""
    unknown = set(doc) - {"format_version", "table", "entries", "conventions"}
    if unknown:
        raise ConfigError(f"{table}.{sorted(unknown)[0]}", "unknown key")
    if doc.get("format_version") != 1:
        raise ConfigError(f"{table}.format_version", f"must be 1, got {doc.get('format_version')!r}")
    entries = doc.get("entries")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{table}.entries", "missing or empty")
    records = {name: parse_entry(table, name, d) for name, d in entries.items()}
    for name, rec in records.items():
        if rec.unit != "pJ":
            raise ConfigError(f"{table}.entries.{name}.unit", f"must be pJ (per event), got {rec.unit!r}")
        if rec.value < 0:
            raise ConfigError(f"{table}.entries.{name}.value", "an energy cannot be negative")
    conventions = doc.get("conventions", {})
    if not isinstance(conventions, dict):
        raise ConfigError(f"{table}.conventions", "must be a table")
    for conv, mapping in conventions.items():
        if not isinstance(mapping, dict):
            raise ConfigError(f"{table}.conventions.{conv}", "must map count names to record names")
        for count, rec in mapping.items():
            if rec not in records:
                raise ConfigError(f"{table}.conventions.{conv}.{count}", f"no entry named {rec!r}")
    return NeuromorphicTable(records, {k: dict(v) for k, v in conventions.items()})


@functools.cache
def load_neuromorphic_table() -> NeuromorphicTable:
    """The shipped table, validated (cached)."""
    doc = read_toml(resources.files("sim").joinpath("tables", _TABLE_FILE), "neuromorphic")
    return parse_neuromorphic(doc, doc.get("table", "neuromorphic"))


@dataclass(frozen=True)
class SpikingEnergyBreakdown:
    """Energy per sample of a spiking workload under one convention.

    Attributes
    ----------
    convention : str
    energy_pj : dict of str to float
        Per priced count: count x energy per event.
    total_pj : float
    unpriced : tuple of str
        Counts present (non-zero) that this convention has no figure for.
    records : dict
        The records used, with their provenance.
    """

    convention: str
    energy_pj: dict
    total_pj: float
    unpriced: tuple
    records: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"convention": self.convention, "energy_pj": dict(self.energy_pj),
                "total_pj": self.total_pj, "unpriced": list(self.unpriced),
                "records": {k: v.to_dict() for k, v in self.records.items()}}


def price_spiking(counts: dict, convention: str = "loihi_measured",
                  table: NeuromorphicTable | None = None) -> SpikingEnergyBreakdown:
    """Price per-sample spiking counts.

    Parameters
    ----------
    counts : dict of str to float
        Event counts, e.g. ``{"synaptic_ops": 2.6e6, "plasticity_updates": 2.1e6, ...}``.
        Non-numeric values (such as a layer index) are ignored.
    convention : str
        One of :data:`SPIKING_CONVENTIONS` (or a convention of a user ``table``).
    """
    table = load_neuromorphic_table() if table is None else table
    if convention not in table.conventions:
        raise ConfigError("convention", f"must be one of {tuple(table.conventions)}, got {convention!r}")
    mapping = table.conventions[convention]
    energy, used, unpriced = {}, {}, []
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if value < 0:
            raise ConfigError(f"counts.{name}", f"a count cannot be negative, got {value}")
        if name in mapping:
            rec = table.records[mapping[name]]
            energy[name] = float(value) * rec.value
            used[mapping[name]] = rec
        elif value and name not in ("layer", "fan_in", "fan_out", "input_spikes"):
            unpriced.append(name)
    return SpikingEnergyBreakdown(convention, energy, float(sum(energy.values())), tuple(unpriced), used)


def crossover_spikes_per_input(e_mac_pj: float, e_sop_pj: float) -> float:
    """Spikes per input neuron per sample below which spiking costs less than one dense MAC
    pass (``SOPs = s * n * m`` vs ``MACs = n * m``, so ``s* = E_MAC / E_SOP``)."""
    if e_sop_pj <= 0 or e_mac_pj < 0:
        raise ConfigError("e_sop_pj", "energies must be positive")
    return e_mac_pj / e_sop_pj
