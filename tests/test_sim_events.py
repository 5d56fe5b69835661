"""Energy as action events x energy tables: the events table, its pricing, the loss unit's cycles from
the tables, and algorithm profiles instead of rule names."""

import dataclasses

import pytest

from sim import (ALGORITHMS, ActionCosts, BitWidths, Workload, action_costs, action_events, closed_form_counts,
                 design_point, energy_breakdown, load_preset, load_tables, memory_ledger, price_events)
from sim.energy import PricedPoint, reprice
from spela_hw import PrecisionSpec
from spela_hw.errors import ConfigError

W8 = BitWidths.from_precision(PrecisionSpec.fixed(8))
POINTS = [("mcu-256kb", "spela"), ("mcu-256kb", "backprop"), ("rram-22nm", "backprop"), ("rram-22nm", "sigprop"),
          ("sram-cim-22nm", "spela"), ("neurosim-sram-22nm-64r", "backprop")]


def _events(preset, rule, phase="train", **kw):
    dp = design_point((784, 128, 10), preset, rule, bits=W8, batch_size=4, **kw)
    return (dp.energy_train if phase == "train" else dp.energy_infer).events, dp


@pytest.mark.parametrize("preset,rule", POINTS)
@pytest.mark.parametrize("phase", ["train", "infer"])
def test_events_priced_at_one_pj_are_the_event_counts(preset, rule, phase):
    ev, _ = _events(preset, rule, phase, exit_layer=0 if phase == "infer" else None)
    b = price_events(ev, ActionCosts.uniform(1.0))
    assert [i.energy_pj for i in b.items] == [r.count for r in ev.rows]
    assert b.total_pj == pytest.approx(sum(r.count for r in ev.rows), rel=1e-15)
    assert ev.by_action() == {a: sum(r.count for r in ev.rows if r.action == a) for a in {r.action for r in ev.rows}}


@pytest.mark.parametrize("preset,rule", POINTS)
def test_the_priced_events_sum_to_the_breakdown_total(preset, rule):
    ev, dp = _events(preset, rule)
    e = dp.energy_train
    costs = action_costs(dp.hardware_config, W8)
    assert reprice(ev, costs) == e.total_pj
    assert sum(i.energy_pj for i in price_events(ev, costs).items) == e.total_pj
    assert dp.priced().at("nominal") == e.total_pj  # re-pricing reads the same events table
    # cell reads are counted per (cell, input cycle); the price charges the active fraction
    reads = [r for r in ev.rows if r.action == "cell_read"]
    items = [i for i in e.items if i.action == "cell_read"]
    assert [i.events for i in items] == [r.count * costs.input_bit_activity for r in reads]


def test_the_events_table_is_tidy_and_carries_widths():
    ev, dp = _events("rram-22nm", "spela")
    recs = ev.to_records()
    assert recs and set(recs[0]) == {"phase", "algorithm", "hardware", "network", "layer", "category", "item",
                                     "action", "count", "bits"}
    widths = {r.action: r.bits for r in ev.rows}
    assert widths["act_read"] == W8.activation and widths["cell_read"] == dp.hardware_config.crossbar.cell_bits
    assert widths["update_mul"] == W8.update and widths["sr_random"] == W8.sr_random_bits
    assert ev.latency_ns == dp.energy_train.latency_ns and ev.notes == dp.energy_train.notes
    with pytest.raises(ConfigError, match="events"):
        PricedPoint(dataclasses.replace(dp.energy_train, events=None), dp.hardware_config, W8)


def test_loss_unit_cycles_come_from_the_tables():
    """The digital unit's latency counts a loss-unit operation as its Newton-Raphson multiplies
    (iterations x multiplies per iteration), the numbers its energy is priced with."""
    hw, wl = load_preset("mcu-256kb"), (784, 128, 10)
    counts = closed_form_counts(wl, "spela", 1)
    ps = {k: float(v.sum()) for k, v in counts.per_sample().items()}
    t = load_tables()
    per_second = hw.technology.digital_macs_per_cycle * hw.technology.clock_hz
    for corner in ("low", "nominal", "high"):
        tc = t.at_corner(corner)
        n = tc.value("rsqrt_newton_iterations") * tc.value("rsqrt_multiplies_per_iteration")
        assert tc.rsqrt_multiplies() == n
        ev = action_events(counts, Workload.dense(wl), hw, W8, "spela", tables=tc)
        macs = ("forward_macs", "target_macs", "error_macs", "readout_macs", "loss_macs", "update_macs")
        cycles = sum(ps[k] for k in macs) + n * ps["loss_unit_ops"]
        assert ev.latency_ns["digital"] == pytest.approx(cycles / per_second * 1e9, rel=1e-12)
    assert load_tables().rsqrt_multiplies() == 9  # 3 iterations x 3 multiplies (docs/hardware.md §1.2)


@pytest.mark.parametrize("like", ["sigprop", "backprop", "spela"])
def test_a_new_algorithm_is_one_profile_row(monkeypatch, like):
    """A renamed copy of a profile gets exactly that rule's ledgers and inference counts: nothing
    tests the rule's name."""
    monkeypatch.setitem(ALGORITHMS, "my_rule", dataclasses.replace(ALGORITHMS[like], name="my_rule"))
    hw = load_preset("rram-22nm")
    for phase, B, exit_layer in (("train", 4, None), ("infer", 1, 0), ("infer", 1, None)):
        mine = memory_ledger((784, 64, 10), "my_rule", W8, B, phase, hw, exit_layer=exit_layer)
        theirs = memory_ledger((784, 64, 10), like, W8, B, phase, hw, exit_layer=exit_layer)
        assert mine.rows == theirs.rows, phase
    for exit_layer in (0, 1):
        mine = closed_form_counts((784, 64, 10), "my_rule", 1, "infer", exit_layer=exit_layer)
        theirs = closed_form_counts((784, 64, 10), like, 1, "infer", exit_layer=exit_layer)
        assert all((mine.data[k] == theirs.data[k]).all() for k in theirs.data)


def test_profile_fields_drive_the_ledger(monkeypatch):
    in_place = memory_ledger((784, 64, 10), "spela", W8, 4)
    monkeypatch.setitem(ALGORITHMS, "spela", dataclasses.replace(ALGORITHMS["spela"], delta_in_place=False))
    kept = memory_ledger((784, 64, 10), "spela", W8, 4)
    values = lambda led: {r.tensor_class: r.values for r in led.rows}["error_buffers"]  # noqa: E731
    assert values(in_place) == 0 and values(kept) == 4 * 64
    with pytest.raises(ConfigError) as e:
        closed_form_counts((784, 10), "nope", phase="infer")
    assert e.value.field == "rule"


def test_energy_breakdown_is_events_priced():
    hw, wl = load_preset("sram-cim-22nm"), Workload.dense((784, 128, 10))
    counts = closed_form_counts(wl, "backprop", 8)
    e = energy_breakdown(counts, wl, hw, W8, "backprop")
    again = price_events(action_events(counts, wl, hw, W8, "backprop"), action_costs(hw, W8))
    assert again == e and again.items == e.items and again.latency_ns == e.latency_ns
