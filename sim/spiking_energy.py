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

A count the convention does not price is listed in ``unpriced``, never silently counted as zero; a
count a platform's figure already contains is ``included``; one the platform cannot execute (no
on-chip learning) is ``unsupported``.

Training against inference (:func:`price_training_and_inference`): SPELA is forward-only, so a
training sample is one inference pass plus the learning-rule events. Both are priced from the same
forward events (those of the inference phase, on the test images with the trained weights) and the
training sample adds the learning events measured while learning. Pricing each phase's own forward
events instead compares different images and weights: the report's 1,000 bundled training images
are 22 % darker than its 300 test images (fewer input spikes), which made TrueNorth, whose table
prices synaptic events only, price a training sample (6.28 uJ) below an inference (8.02 uJ).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

from spela_hw.errors import ConfigError

from .tables import ParamRecord, parse_entry
from .tomlfile import read_toml

__all__ = ["SPIKING_CONVENTIONS", "LEARNING_EVENTS", "SpikingEnergyBreakdown", "TrainingInferenceEnergy",
           "load_neuromorphic_table", "price_spiking", "price_training_and_inference",
           "crossover_spikes_per_input"]

SPIKING_CONVENTIONS = ("loihi_measured", "truenorth_measured", "spinnaker_measured", "accumulate_45nm")
#: Counts that only a training sample has (the learning rule); every other count is a forward event.
LEARNING_EVENTS = ("plasticity_updates", "bias_updates", "error_evaluations", "normaliser_macs", "normaliser_ops")
#: Markers a convention may use instead of a record name (see ``neuromorphic.toml``).
INCLUDED, UNSUPPORTED = "included", "unsupported"
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
            if rec not in records and rec not in (INCLUDED, UNSUPPORTED):
                raise ConfigError(f"{table}.conventions.{conv}.{count}",
                                  f"no entry named {rec!r} (nor {INCLUDED!r} or {UNSUPPORTED!r})")
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
    included : tuple of str
        Counts present whose energy another figure of the platform already contains.
    unsupported : tuple of str
        Counts present that the platform cannot execute (e.g. learning on TrueNorth).
    """

    convention: str
    energy_pj: dict
    total_pj: float
    unpriced: tuple
    records: dict = field(default_factory=dict)
    included: tuple = ()
    unsupported: tuple = ()

    def to_dict(self) -> dict:
        return {"convention": self.convention, "energy_pj": dict(self.energy_pj),
                "total_pj": self.total_pj, "unpriced": list(self.unpriced),
                "included": list(self.included), "unsupported": list(self.unsupported),
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
    energy, used, unpriced, included, unsupported = {}, {}, [], [], []
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if value < 0:
            raise ConfigError(f"counts.{name}", f"a count cannot be negative, got {value}")
        how = mapping.get(name)
        if how in table.records:
            rec = table.records[how]
            energy[name] = float(value) * rec.value
            used[how] = rec
        elif not value or name in ("layer", "fan_in", "fan_out", "input_spikes"):
            continue
        elif how == INCLUDED:
            included.append(name)
        elif how == UNSUPPORTED:
            unsupported.append(name)
        else:
            unpriced.append(name)
    return SpikingEnergyBreakdown(convention, energy, float(sum(energy.values())), tuple(unpriced), used,
                                  tuple(included), tuple(unsupported))


@dataclass(frozen=True)
class TrainingInferenceEnergy:
    """Energy per sample of inference and of training under one convention, like with like.

    Attributes
    ----------
    convention : str
    inference : SpikingEnergyBreakdown
        The forward events of one sample (inference phase).
    learning : SpikingEnergyBreakdown
        The learning-rule events of one training sample (:data:`LEARNING_EVENTS`).
    forward_while_learning : SpikingEnergyBreakdown or None
        The forward events measured during training (other images, weights still learning), for
        the record; not part of ``training_pj``.
    """

    convention: str
    inference: SpikingEnergyBreakdown
    learning: SpikingEnergyBreakdown
    forward_while_learning: SpikingEnergyBreakdown | None = None

    @property
    def inference_pj(self) -> float:
        return self.inference.total_pj

    @property
    def training_pj(self) -> float:
        """One inference pass plus the learning events: ``>= inference_pj`` by construction."""
        return self.inference.total_pj + self.learning.total_pj

    @property
    def training_complete(self) -> bool:
        """Whether every learning event was priced; otherwise ``training_pj`` is a lower bound
        (the learning events are unpriced, or unsupported: the platform cannot learn on chip)."""
        return not (self.learning.unpriced or self.learning.unsupported)

    def to_dict(self) -> dict:
        return {"convention": self.convention, "inference_pj": self.inference_pj,
                "training_pj": self.training_pj, "learning_pj": self.learning.total_pj,
                "training_complete": self.training_complete,
                "learning_unsupported": list(self.learning.unsupported),
                "learning_unpriced": list(self.learning.unpriced),
                "forward_while_learning_pj": None if self.forward_while_learning is None
                else self.forward_while_learning.total_pj}


def _split(counts: dict) -> tuple[dict, dict]:
    forward = {k: v for k, v in counts.items() if k not in LEARNING_EVENTS}
    return forward, {k: counts[k] for k in LEARNING_EVENTS if k in counts}


def price_training_and_inference(phases: dict, convention: str = "loihi_measured",
                                 table: NeuromorphicTable | None = None) -> TrainingInferenceEnergy:
    """Price a training sample and an inference under the same events of one convention.

    Parameters
    ----------
    phases : dict
        Per-sample counts by phase, ``{"train": counts, "test": counts}``, each ``counts`` a flat
        dict (such as ``result.counts[phase]["total"]`` of a spiking run); either phase may be
        missing. The forward events come from ``test`` (else ``train``), the learning events
        from ``train`` (else none).
    convention : str

    Returns
    -------
    TrainingInferenceEnergy
        ``training_pj = inference_pj + learning events``: a training sample is one forward pass
        plus the rule's updates, so it is never priced below an inference.
    """
    if not isinstance(phases, dict) or not ({"train", "test"} & set(phases)):
        raise ConfigError("phases", "needs per-sample counts of a 'train' and/or a 'test' phase")
    train, test = phases.get("train"), phases.get("test")
    forward, _ = _split(test if test is not None else train)
    learning = _split(train)[1] if train is not None else {}
    measured = price_spiking(_split(train)[0], convention, table) if train is not None and test is not None else None
    return TrainingInferenceEnergy(convention, price_spiking(forward, convention, table),
                                   price_spiking(learning, convention, table), measured)


def crossover_spikes_per_input(e_mac_pj: float, e_sop_pj: float) -> float:
    """Spikes per input neuron per sample below which spiking costs less than one dense MAC
    pass (``SOPs = s * n * m`` vs ``MACs = n * m``, so ``s* = E_MAC / E_SOP``)."""
    if e_sop_pj <= 0 or e_mac_pj < 0:
        raise ConfigError("e_sop_pj", "energies must be positive")
    return e_mac_pj / e_sop_pj
