"""Pricing spiking counts: golden numbers by hand, conventions, table validation."""

import pytest

from sim.spiking_energy import (SPIKING_CONVENTIONS, crossover_spikes_per_input, load_neuromorphic_table,
                                parse_neuromorphic, price_spiking)
from spela_hw import ConfigError


def test_every_record_has_provenance_and_every_convention_resolves():
    table = load_neuromorphic_table()
    assert set(SPIKING_CONVENTIONS) <= set(table.conventions)
    for rec in table.records.values():
        assert rec.unit == "pJ" and rec.value > 0 and rec.source and rec.kind
    assert table.records["loihi_synaptic_op"].value == 23.6
    assert table.records["loihi_synaptic_op"].node_nm == pytest.approx(14)


def test_golden_numbers():
    counts = {"synaptic_ops": 1000.0, "plasticity_updates": 10.0, "neuron_updates": 5.0,
              "output_spikes": 2.0, "normaliser_ops": 3.0, "layer": 1}
    loihi = price_spiking(counts, "loihi_measured")
    assert loihi.energy_pj == {"synaptic_ops": 23600.0, "plasticity_updates": 1200.0,
                               "neuron_updates": 260.0, "output_spikes": 3.4}
    assert loihi.total_pj == pytest.approx(23600 + 1200 + 260 + 3.4)
    assert loihi.unpriced == ("normaliser_ops",)
    tn = price_spiking(counts, "truenorth_measured")
    assert tn.total_pj == pytest.approx(26000.0)
    assert tn.unpriced == ()  # TrueNorth's per-SOP figure includes neurons and spikes; it cannot learn
    assert set(tn.included) == {"neuron_updates", "output_spikes"}
    assert set(tn.unsupported) == {"plasticity_updates", "normaliser_ops"}
    acc = price_spiking({"synaptic_ops": 10.0, "plasticity_updates": 1.0}, "accumulate_45nm")
    assert acc.total_pj == pytest.approx(9.0 + 4.6)
    assert price_spiking({"synaptic_ops": 1.0}, "spinnaker_measured").total_pj == 8000.0


def test_bad_inputs():
    with pytest.raises(ConfigError, match="convention"):
        price_spiking({"synaptic_ops": 1.0}, "loihi")
    with pytest.raises(ConfigError, match="counts.synaptic_ops"):
        price_spiking({"synaptic_ops": -1.0})
    good = {"value": 1.0, "unit": "pJ", "node": "14 nm", "vdd": "unknown", "source": "x", "kind": "published"}
    parse_neuromorphic({"format_version": 1, "entries": {"a": good}, "conventions": {"c": {"synaptic_ops": "a"}}})
    with pytest.raises(ConfigError, match="conventions.c.synaptic_ops"):
        parse_neuromorphic({"format_version": 1, "entries": {"a": good}, "conventions": {"c": {"synaptic_ops": "b"}}})
    with pytest.raises(ConfigError, match="entries.a.source"):
        parse_neuromorphic({"format_version": 1, "entries": {"a": {**good, "source": ""}}})
    with pytest.raises(ConfigError, match="entries.a.unit"):
        parse_neuromorphic({"format_version": 1, "entries": {"a": {**good, "unit": "pJ/bit"}}})
    with pytest.raises(ConfigError, match="format_version"):
        parse_neuromorphic({"format_version": 2, "entries": {"a": good}})


def test_crossover():
    assert crossover_spikes_per_input(4.6, 0.9) == pytest.approx(5.111, abs=1e-3)
    assert crossover_spikes_per_input(4.6, 23.6) == pytest.approx(0.195, abs=1e-3)
    with pytest.raises(ConfigError):
        crossover_spikes_per_input(4.6, 0.0)
