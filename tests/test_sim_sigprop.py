"""sim prices sigprop: closed-form counts equal the real training loop's, and a design point runs."""

import numpy as np
import pytest

import spela_hw
from sim import ActionCosts, BitWidths, Workload, closed_form_counts, design_point, energy_breakdown, load_preset, \
    memory_ledger
from spela_hw.counts import COUNTERS
from spela_hw.errors import ConfigError
from spela_hw.specs import Adam, PrecisionSpec, Sigprop

DATA_DEPENDENT = {"forward_macs_nonzero", "update_macs_nonzero", "update_writes", "saturations", "zero_norm_events"}

# (rule, hidden + output widths, precision, batch): the default, then every option the closed form covers
CASES = [
    (Sigprop(), (16, 5), None, 7),  # default; 60 = 8 * 7 + 4: a partial last batch
    (Sigprop(targets="batch", front="learned_projection"), (16, 5), PrecisionSpec.fixed(8), 8),  # B' = B
    (Sigprop(loss="cosine", front="random_projection", inference="target_matching"), (16, 8), None, 5),
    (Sigprop(loss="l2", hebbian="target_pre"), (16, 12, 5), None, 6),
    (Sigprop(loss="l2", hebbian="input_pre", target_grad=False, optimizer=Adam()), (16, 5), None, 4),
    (Sigprop(target_grad=False, inference="target_matching"), (16, 12), None, 9),
    (Sigprop(loss="l2"), (16, 12, 5), PrecisionSpec.fixed(8), 1),
]


@pytest.mark.parametrize("rule, sizes, precision, batch", CASES)
def test_closed_form_equals_real_sigprop_run(rule, sizes, precision, batch):
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 40)).astype(np.float32), rng.integers(0, 5, 60)
    clf = spela_hw.Classifier(sizes, rule=rule, precision=precision, batch_size=batch, epochs=1, random_state=0,
                              backend="reference").fit(X, y)
    wl = Workload.dense((40,) + sizes, n_classes=5)
    cf = closed_form_counts(wl, clf.rule_, batch, samples=60, precision=precision)
    run = clf.train_counts_
    assert (run.samples, run.update_steps) == (cf.samples, cf.update_steps) == (60, -(-60 // batch))
    assert cf["target_macs"].sum() > 0
    for k in set(COUNTERS) - DATA_DEPENDENT:
        np.testing.assert_array_equal(run[k], cf[k], err_msg=k)
    for k in ("forward_macs_nonzero", "update_macs_nonzero", "update_writes"):
        assert np.all(run[k] <= cf[k])
    for exit_layer in range(len(sizes)):
        for readout in ("exit", "all"):
            ri = clf.inference_counts(X, exit_layer=exit_layer, readout=readout)
            ci = closed_form_counts(wl, clf.rule_, phase="infer", samples=60, exit_layer=exit_layer, readouts=readout)
            for k in set(COUNTERS) - DATA_DEPENDENT:
                np.testing.assert_array_equal(ri[k], ci[k], err_msg=f"infer {exit_layer} {readout} {k}")
    # the name means the spec's defaults
    if rule == Sigprop():
        np.testing.assert_array_equal(closed_form_counts(wl, "sigprop", batch, samples=60)["target_macs"],
                                      cf["target_macs"])


def test_sigprop_energy_prices_the_target_stream():
    wl = Workload.dense((40, 16, 5))
    counts = closed_form_counts(wl, Sigprop(), 4)
    no_target = closed_form_counts(wl, Sigprop(), 4)
    no_target.data["target_macs"][:] = 0
    gold = ActionCosts.uniform(1.0)
    for preset in ("sram-cim-22nm", "mcu-256kb"):
        hw = load_preset(preset)
        with_t = energy_breakdown(counts, wl, hw, BitWidths(), "sigprop", costs=gold)
        without = energy_breakdown(no_target, wl, hw, BitWidths(), "sigprop", costs=gold)
        assert with_t.total_pj > without.total_pj
    # digital: one MAC event per target MAC
    hw = load_preset("mcu-256kb")
    e = energy_breakdown(counts, wl, hw, BitWidths(), "sigprop", costs=gold)
    macs = sum(i.events for i in e.items if i.item == "target stream digital MACs")
    assert macs == pytest.approx(counts["target_macs"].sum() / 4)


def test_design_point_sigprop_end_to_end():
    r = design_point((784, 256, 10), "sram-cim-22nm", "sigprop", weight_bits=8, batch_size=16, budget="256KB")
    assert r.counts_source == "closed_form" and r.energy_train is not None and r.energy_infer is not None
    sp = design_point((784, 256, 10), "sram-cim-22nm", "spela", weight_bits=8, batch_size=16)
    # the second stream costs energy and memory on top of a forward pass
    assert r.energy_train.total_pj > sp.energy_train.total_pj
    rows = {row.tensor_class: row for row in r.ledger_train.rows}
    assert rows["front_projection"].values == 10 * 256                    # concat: C x d_1 label columns
    assert rows["activations_in_flight"].values == (16 + 10) * (784 + 256)  # B + B', B' = C by default
    # the spec's options reach the ledger and the counts
    spec = Sigprop(targets="batch", front="learned_projection")
    rb = design_point((784, 256, 10), "sram-cim-22nm", spec, weight_bits=8, batch_size=16)
    rows = {row.tensor_class: row for row in rb.ledger_train.rows}
    assert rows["front_projection"].values == 784 * 10
    assert rows["activations_in_flight"].values == (16 + 16) * (784 + 256)
    assert rb.energy_train.total_pj != r.energy_train.total_pj
    rand = memory_ledger((784, 256, 10), Sigprop(front="random_projection"), BitWidths(), 1)
    assert {row.tensor_class: row.level for row in rand.rows}["front_projection"] == "register"
    with pytest.raises(ConfigError, match="one unit per class"):
        closed_form_counts((784, 256, 12), "sigprop", 1, n_classes=10)
