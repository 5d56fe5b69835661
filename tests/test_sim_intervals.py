"""Energy intervals: every placeholder has a range, intervals contain the nominal value, collapse when
low = high, and the SPELA-vs-backprop difference is bounded with shared placeholders."""

import dataclasses

import pytest

from sim import BitWidths, compare_energy, design_point, energy_interval, load_tables, vgg8
from sim.energy import PricedPoint, corner_costs, energy_advantage
from sim.tables import EnergyTables, parse_entry
from spela_hw import PrecisionSpec
from spela_hw.errors import ConfigError

W8A16 = BitWidths.from_precision(PrecisionSpec.fixed(8))


def test_every_placeholder_has_a_range_with_a_reason():
    t = load_tables()
    placeholders = [r for r in t.records.values() if r.kind == "placeholder"]
    assert len(placeholders) >= 9
    for r in placeholders:
        assert r.low is not None and r.low <= r.value <= r.high and r.range_reason, r.name
    assert {"sram_cim_cell_read", "input_bit_activity", "sram_write_to_read"} <= set(t.ranged())


@pytest.mark.parametrize("patch,field", [
    ({}, "t.entries.x.low"),
    ({"low": 1.0, "high": 3.0}, "t.entries.x.range_reason"),
    ({"low": 3.0, "high": 4.0, "range_reason": "r"}, "t.entries.x.low"),
    ({"low": -1.0, "high": 4.0, "range_reason": "r"}, "t.entries.x.low"),
    ({"low": 1.0, "high": 4.0, "range_reason": " "}, "t.entries.x.range_reason"),
])
def test_bad_ranges_name_the_field(patch, field):
    entry = {"value": 2.0, "unit": "pJ", "node": "45 nm", "vdd": "0.9 V", "source": "s", "kind": "placeholder",
             **patch}
    with pytest.raises(ConfigError) as e:
        parse_entry("t", "x", entry)
    assert e.value.field == field


@pytest.mark.parametrize("preset", ["sram-cim-22nm", "rram-22nm", "mcu-256kb"])
@pytest.mark.parametrize("rule", ["spela", "backprop"])
def test_interval_contains_the_nominal_energy(preset, rule):
    dp = design_point((784, 256, 10), preset, rule, bits=W8A16, batch_size=8)
    for phase, e in (("train", dp.energy_train), ("infer", dp.energy_infer)):
        iv = dp.interval(phase)
        assert iv.nominal_pj == pytest.approx(e.total_pj)
        assert iv.low_pj < iv.nominal_pj < iv.high_pj and iv.provenance == "placeholder-dependent"
        assert dp.priced(phase).at("nominal") == pytest.approx(e.total_pj, rel=1e-12)
    s = dp.summary()
    assert s["train_energy_low_pj"] <= s["train_energy_pj"] <= s["train_energy_high_pj"]


def _collapsed(t: EnergyTables) -> EnergyTables:
    recs = {n: dataclasses.replace(r, low=r.value, high=r.value) for n, r in t.records.items()}
    return EnergyTables(recs, t.adc_choices, t.adc_defaults, t.scaling_nodes)


def test_interval_shrinks_to_the_nominal_when_low_equals_high(monkeypatch):
    import sim.energy

    monkeypatch.setattr(sim.energy, "load_tables", lambda: _collapsed(load_tables.__wrapped__()))
    dp = design_point((784, 256, 10), "sram-cim-22nm", "spela", bits=W8A16)
    iv = dp.interval("train")
    assert iv.low_pj == pytest.approx(iv.nominal_pj, rel=1e-12) == pytest.approx(iv.high_pj, rel=1e-12)
    assert iv.placeholders == () and iv.provenance == "modelled"


def test_corners_move_the_placeholder_priced_actions_only():
    hw = design_point((784, 10), "sram-cim-22nm", "spela", bits=W8A16).hardware_config
    lo, nom, hi = (corner_costs(hw, W8A16, c) for c in ("low", "nominal", "high"))
    assert lo["cell_read"].pj == 0.0005 and nom["cell_read"].pj == 0.002 and hi["cell_read"].pj == 0.01
    assert lo["adc_forward"].pj == nom["adc_forward"].pj == hi["adc_forward"].pj  # published
    assert hi["act_write"].pj == pytest.approx(2.0 * nom["act_write"].pj)  # sram_write_to_read 1 -> 2
    assert (lo.input_bit_activity, hi.input_bit_activity) == (0.1, 1.0)
    # a user-set convention is not a placeholder: it stays
    own = dataclasses.replace(hw, conventions=hw.conventions.with_changes(sram_write_to_read=1.5))
    assert corner_costs(own, W8A16, "high")["act_write"].pj == pytest.approx(corner_costs(own, W8A16)["act_write"].pj)


def test_default_design_point_training_advantage_survives_the_shared_placeholder_box():
    """The report's default: SPELA 784-256-34 vs backprop 784-256-10, w8a16, batch 1, sram-cim-22nm."""
    sp = design_point((784, 256, 34), "sram-cim-22nm", "spela", bits=W8A16)
    bp = design_point((784, 256, 10), "sram-cim-22nm", "backprop", bits=W8A16)
    a = compare_energy(sp, bp, "train")
    assert a.rule.low_pj <= a.rule.nominal_pj <= a.rule.high_pj
    assert a.difference_low_pj <= a.difference_nominal_pj <= a.difference_high_pj < 0
    assert a.survives and "cheaper over the whole" in a.verdict
    # the independent bound (SPELA high vs backprop low) is looser than the shared one
    assert a.rule.high_pj - a.baseline.low_pj >= a.difference_high_pj
    assert a.method.startswith("shared placeholders")
    inf = compare_energy(sp, bp, "infer")  # 34 output units cost more to read than 10
    assert not inf.survives and inf.difference_low_pj > 0
    with pytest.raises(ConfigError):
        energy_advantage(sp.priced("train"), bp.priced("infer"))


def test_energy_interval_convenience_matches_the_design_point():
    iv = energy_interval(vgg8(), "sram-cim-22nm", "backprop", "train", weight_bits=8)
    dp = design_point(vgg8(), "sram-cim-22nm", "backprop", weight_bits=8)
    assert iv == dp.interval("train") and iv.network == "vgg8"
    assert isinstance(dp.priced(), PricedPoint)
    with pytest.raises(ConfigError) as e:
        dp.interval("both")
    assert e.value.field == "phase"
