"""Neuromorphic energy compares like with like: training and inference are priced from the same
forward events under the same convention per platform, so a training sample never costs less than an
inference; every platform says how it prices synaptic events, neuron updates and learning updates."""

import pytest

from sim.spiking_energy import (LEARNING_EVENTS, SPIKING_CONVENTIONS, load_neuromorphic_table,
                                parse_neuromorphic, price_spiking, price_training_and_inference)
from spela_hw import ConfigError

# Per-sample totals of the report's default spiking run (784-100-10, first 1,000 bundled training
# images, first 300 test images, seed 0): the training images are darker, so the training phase has
# fewer input spikes and synaptic events than the test phase.
TRAIN = {"input_spikes": 2586.9, "synaptic_ops": 241483.2, "plasticity_updates": 193231.4,
         "output_spikes": 243.3, "neuron_updates": 26400.0, "bias_updates": 17600.0,
         "error_evaluations": 26400.0, "normaliser_macs": 52800.0, "normaliser_ops": 1440.0,
         "class_vector_reads": 27500.0, "readout_macs": 1100.0}
TEST = {"input_spikes": 3289.3, "synaptic_ops": 308535.9, "plasticity_updates": 0.0,
        "output_spikes": 282.5, "neuron_updates": 26400.0, "bias_updates": 0.0, "error_evaluations": 0.0,
        "normaliser_macs": 0.0, "normaliser_ops": 0.0, "class_vector_reads": 1100.0, "readout_macs": 1100.0}
PHASES = {"train": TRAIN, "test": TEST}


def test_pricing_each_phase_on_its_own_images_put_truenorth_training_below_inference():
    """What the report did: the symptom of issue 19, kept as the reason for the convention."""
    assert price_spiking(TRAIN, "truenorth_measured").total_pj == pytest.approx(6.28e6, rel=1e-3)
    assert price_spiking(TEST, "truenorth_measured").total_pj == pytest.approx(8.02e6, rel=1e-3)


@pytest.mark.parametrize("convention", SPIKING_CONVENTIONS)
def test_training_costs_at_least_an_inference_on_every_platform(convention):
    e = price_training_and_inference(PHASES, convention)
    assert e.training_pj >= e.inference_pj > 0
    # the same forward events on both sides: the difference is exactly the learning rule
    assert e.training_pj - e.inference_pj == pytest.approx(e.learning.total_pj)
    assert set(e.learning.energy_pj) <= set(LEARNING_EVENTS)
    assert e.inference.energy_pj == price_spiking({k: v for k, v in TEST.items() if k not in LEARNING_EVENTS},
                                                  convention).energy_pj


def test_every_platform_names_synaptic_neuron_and_learning_events_with_sources():
    table = load_neuromorphic_table()
    for conv in SPIKING_CONVENTIONS:
        mapping = table.conventions[conv]
        for count in ("synaptic_ops", "neuron_updates"):
            assert count in mapping, f"{conv} does not say how it prices {count}"
        assert mapping["synaptic_ops"] in table.records, f"{conv}: synaptic events need a figure"
        for name in mapping.values():
            if name in table.records:
                assert table.records[name].source, name
    # a platform that learns prices the learning update; one that cannot says so
    assert table.conventions["loihi_measured"]["plasticity_updates"] == "loihi_synaptic_update"
    assert table.conventions["truenorth_measured"]["plasticity_updates"] == "unsupported"
    assert table.conventions["accumulate_45nm"]["plasticity_updates"] == "mac_fp32_45nm"


def test_golden_numbers_and_lower_bounds():
    tn = price_training_and_inference(PHASES, "truenorth_measured")
    assert tn.inference_pj == pytest.approx(308535.9 * 26.0)
    assert tn.training_pj == tn.inference_pj  # no on-chip learning: nothing priced for it ...
    assert not tn.training_complete  # ... and the result says it is a lower bound, and why
    assert "plasticity_updates" in tn.learning.unsupported
    assert set(tn.inference.included) == {"neuron_updates", "output_spikes"}
    assert tn.forward_while_learning.total_pj == pytest.approx(241483.2 * 26.0)
    sp = price_training_and_inference(PHASES, "spinnaker_measured")
    assert not sp.training_complete and "plasticity_updates" in sp.learning.unpriced
    loihi = price_training_and_inference(PHASES, "loihi_measured")
    assert loihi.learning.total_pj == pytest.approx(193231.4 * 120 + 17600 * 120 + 26400 * 52 + 52800 * 23.6)
    assert loihi.learning.unpriced == ("normaliser_ops",)
    acc = price_training_and_inference(PHASES, "accumulate_45nm")
    assert acc.inference_pj == pytest.approx(308535.9 * 0.9 + 26400 * 4.6 + 1100 * 4.6)
    d = acc.to_dict()
    assert d["training_pj"] == pytest.approx(acc.training_pj) and d["convention"] == "accumulate_45nm"


def test_one_phase_and_bad_input():
    only_test = price_training_and_inference({"test": TEST}, "loihi_measured")
    assert only_test.learning.total_pj == 0 and only_test.forward_while_learning is None
    only_train = price_training_and_inference({"train": TRAIN}, "loihi_measured")
    assert only_train.training_pj > only_train.inference_pj
    with pytest.raises(ConfigError) as exc:
        price_training_and_inference({"validation": TEST})
    assert exc.value.field == "phases"
    with pytest.raises(ConfigError, match="unsupported"):
        parse_neuromorphic({"format_version": 1,
                            "entries": {"a": {"value": 1.0, "unit": "pJ", "node": "1 nm", "vdd": "1 V",
                                              "source": "s", "kind": "published"}},
                            "conventions": {"c": {"synaptic_ops": "a", "neuron_updates": "includd"}}})
