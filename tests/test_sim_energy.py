"""Energy = counts x table: golden 1 pJ-per-action totals, closed form vs real runs, early exit."""

import math

import numpy as np
import pytest

from sim import (ActionCosts, BitWidths, Workload, closed_form_counts, design_point, energy_breakdown,
                 hardware_from_dict, load_preset, memory_ledger, vgg8)
from spela_hw import BackpropClassifier, PrecisionSpec, SpelaClassifier
from spela_hw.counts import COUNTERS
from spela_hw.errors import ConfigError
from spela_hw.specs import Adam, Backprop, Spela

GOLD = ActionCosts.uniform(1.0)
BITS = BitWidths(weight=8, activation=8)  # SR on (8 random bits), no master copy
WL = Workload.dense((784, 1024, 10))


def events(e, category=None):
    return sum(i.events for i in e.items if category is None or i.category == category)


def test_golden_spela_on_a_digital_mcu():
    """784-1024-10, batch 50: every counter by hand, per sample."""
    mcu = load_preset("mcu-256kb")
    e = energy_breakdown(closed_form_counts(WL, "spela", 50), WL, mcu, BITS, "spela", costs=GOLD)
    hand = {}
    for n, m in ((784, 1024), (1024, 10)):
        wb = m * n + m
        hand.setdefault("forward_mvm", 0)
        hand["forward_mvm"] += m * n + m                 # digital MACs + bias/activation
        hand.setdefault("buffer", 0)
        hand["buffer"] += wb * (1 + 1 / 50) + 2 * n + 2 * m + m  # weight reads (forward + RMW), act r/w, v_y
        hand.setdefault("weight_write", 0)
        hand["weight_write"] += wb / 50                  # one write of every weight per step
        hand.setdefault("loss_unit", 0)
        hand["loss_unit"] += 2 * m + 4                   # |h|^2 and h.v_y MACs; 3 + 1 (log) scalar ops
        hand.setdefault("update", 0)
        hand["update"] += m * n + 2 * wb / 50            # outer product; accumulate + SR bits per write
    got = e.by_category()
    for cat, v in hand.items():
        assert got[cat] == pytest.approx(v, rel=1e-12), cat
    assert got["adc_dac"] == got["error_path"] == got["dram"] == got["readout"] == 0
    assert e.total_pj == pytest.approx(sum(hand.values()), rel=1e-12)
    # the same total written out once: forward + update MACs, biases, weight reads, activation and
    # class-vector traffic, loss unit, and per write: the write, its accumulate and its random bits
    assert e.total_pj == pytest.approx(2 * 813_056 + 1034 + 814_090 * 1.02 + 2 * (784 + 1024) + 2 * (1024 + 10)
                                       + 1034 + 2 * 1034 + 8 + 3 * 814_090 / 50, rel=1e-12)


def test_golden_spela_and_backprop_on_rram():
    rram = load_preset("rram-22nm")
    sp = energy_breakdown(closed_form_counts(WL, "spela", 50), WL, rram, BITS, "spela", costs=GOLD)
    # Layer 1 on 7 x 64 arrays: 8 input bits x 784 rows x 8192 columns cell reads (activity 1 in golden mode),
    # 8 x 784 x 64 row-driver cycles, 458 752 conversions (+ as many shift-adds); layer 2: 8 x 1024 x 80 cell
    # reads, 8 x 1024 x 1 drivers, 5120 conversions.
    assert events(sp, "adc_dac") == 458_752 + 5120
    fw = 8 * 784 * 8192 + 8 * 784 * 64 + 458_752 + 1024 + 8 * 1024 * 80 + 8 * 1024 + 5120 + 10
    assert events(sp, "forward_mvm") == pytest.approx(fw)
    # writes: every weight's 8 cells get a pulse and a read-before-write once per 50 samples
    assert events(sp, "weight_write") == pytest.approx(2 * 8 * (803_840 + 10_250) / 50)
    rram = rram.with_conventions(bp_gradient="buffered")  # keep a whole-network gradient buffer
    bp = energy_breakdown(closed_form_counts(WL, "backprop", 50), WL, rram, BITS, "backprop",
                          ledger=memory_ledger(WL, "backprop", BITS, 50, hardware=rram), costs=GOLD)
    # error path only for layer 2: transposed cell reads 8 x 1024 x 80, conversions 8 bits x 8 slices x
    # 1024 rows x 1 column tile, as many shift-adds
    assert events(bp, "error_path") == pytest.approx(8 * 1024 * 80 + 2 * 8 * 8 * 1024)
    # the int32 gradient buffer (3.1 MiB) does not fit the 1 MiB SRAM: written and read once per step
    assert events(bp, "dram") == pytest.approx(2 * (814_090 * 4) * 8 / 50)
    assert events(bp, "loss_unit") == 10 + 20  # sum of exps; 10 exps + 10 divisions
    assert bp.latency_ns["dram"] > 0 and bp.latency_ns["error_path"] > 0


def test_closed_form_equals_real_run_dense_counters():
    """The spela_hw training loop counts exactly what the closed form predicts (dense counters)."""
    rng = np.random.default_rng(0)
    X = rng.random((60, 40)).astype(np.float32)
    y = rng.integers(0, 5, 60)
    data_dependent = {"forward_macs_nonzero", "update_macs_nonzero", "update_writes", "saturations",
                      "zero_norm_events"}
    cases = [
        (SpelaClassifier((32, 5), batch_size=7, random_state=0), "spela"),
        (SpelaClassifier((32, 16, 5), rule=Spela(input_norm="every_layer", loss="neg_cos", update_order="recompute"),
                         precision=PrecisionSpec.fixed(8), batch_size=1, random_state=0), "spela"),
        (BackpropClassifier((32, 16, 5), batch_size=10, random_state=0), "backprop"),
        (BackpropClassifier((32, 5), rule=Backprop(Adam()), precision=PrecisionSpec.fixed(8), batch_size=4,
                            random_state=0), "backprop"),
    ]
    for clf, name in cases:
        clf.fit(X, y)
        wl = Workload.dense((40,) + tuple(clf.layer_sizes), n_classes=5)
        cf = closed_form_counts(wl, clf._resolved_rule(), clf.batch_size, samples=60)
        run = clf.train_counts_
        assert (run.samples, run.update_steps) == (cf.samples, cf.update_steps) == (60, math.ceil(60 / clf.batch_size))
        for k in set(COUNTERS) - data_dependent:
            np.testing.assert_array_equal(run[k], cf[k], err_msg=f"{name} {k}")
        for k in ("forward_macs_nonzero", "update_macs_nonzero", "update_writes"):
            assert np.all(run[k] <= cf[k])  # the closed form is the upper bound
        for exit_layer in range(len(clf.layer_sizes)):
            for readout in ("exit", "all"):
                ri = clf.inference_counts(X, exit_layer=exit_layer, readout=readout)
                ci = closed_form_counts(wl, clf._resolved_rule(), phase="infer", samples=60, exit_layer=exit_layer,
                                        readouts=readout)
                for k in set(COUNTERS) - data_dependent:
                    np.testing.assert_array_equal(ri[k], ci[k], err_msg=f"{name} infer {exit_layer} {readout} {k}")
        # energy driven by the run equals energy from the closed form up to the data-dependent counters
        hw = load_preset("rram-22nm")
        bits = BitWidths(weight=8, activation=8)
        e_run = energy_breakdown(run, wl, hw, bits, name)
        e_cf = energy_breakdown(cf, wl, hw, bits, name)
        assert e_run.total_pj == pytest.approx(e_cf.total_pj, rel=1e-12)


def test_ledger_matches_what_the_training_loop_holds():
    """Parameters, class vectors and seeds the estimator allocates = the ledger's rows (values and bits)."""
    rng = np.random.default_rng(1)
    X, y = rng.random((20, 40)).astype(np.float32), rng.integers(0, 5, 20)
    prec = PrecisionSpec.fixed(6)
    clf = SpelaClassifier((32, 16, 5), precision=prec, batch_size=4, random_state=0).fit(X, y)
    led = memory_ledger(Workload.dense((40, 32, 16, 5)), "spela", BitWidths.from_precision(prec), 4)
    rows = {r.tensor_class: r for r in led.rows}
    st = clf.state_
    assert rows["weights"].values == sum(w.size for w in st.weights) and rows["weights"].bits == prec.weight.bits
    assert rows["biases"].values == sum(b.size for b in st.biases)
    assert rows["class_vectors"].values == sum(v.size for v in st.vectors)
    assert rows["class_vectors"].bits == prec.class_vector.bits
    # every stored integer fits the width the ledger charges
    lim = 2 ** (prec.weight.bits - 1)
    assert all(int(np.abs(w).max()) <= lim for w in st.weights)
    # counter-based rounding needs only a key and a step (the loop keeps seeds and update_step)
    assert rows["rng_state"].bytes == 16 and isinstance(st.update_step, int)
    # the working set of one layer step: the batch's inputs and outputs of the widest layer
    widest = max(40 + 32, 32 + 16, 16 + 5)
    assert rows["activations_in_flight"].values == 4 * widest


def test_early_exit_inference_is_cheaper_and_conventions_are_named():
    r_last = design_point((784, 1024, 10), "rram-22nm", "spela", weight_bits=8)
    r_first = design_point((784, 1024, 10), "rram-22nm", "spela", weight_bits=8, exit_layer=0)
    assert r_first.energy_infer.total_pj < r_last.energy_infer.total_pj
    assert r_first.energy_infer.by_category()["readout"] > r_last.energy_infer.by_category()["readout"]
    assert r_last.energy_infer.conventions["adc_energy"] == "p_over_fs"
    d = load_preset("rram-22nm").to_dict()
    d["periphery"]["adc_bits"] = 6
    hw6 = hardware_from_dict(d)
    r_pf = design_point((784, 1024, 10), hw6, "spela", weight_bits=8)
    r_mn = design_point((784, 1024, 10), hw6.with_conventions(adc_energy="mnsim_cycles"), "spela", weight_bits=8)
    assert r_mn.energy_train.by_category()["adc_dac"] == pytest.approx(
        r_pf.energy_train.by_category()["adc_dac"] * 8, rel=1e-9)  # 6-bit: (6 + 2) cycles at full power
    assert r_mn.conventions["adc_energy"] == "mnsim_cycles"


def test_real_costs_are_consistent():
    mcu = load_preset("mcu-256kb")
    e = energy_breakdown(closed_form_counts(WL, "spela", 1), WL, mcu, BITS, "spela")
    f = 3.804294529390167  # Stillmaker-Baas 45 nm / 0.9 V -> 90 nm / 1.2 V
    macs = [i for i in e.items if i.action == "digital_mac_forward"]
    assert macs[0].pj_per_event == pytest.approx(0.3 * f, rel=1e-6)  # int8 x int8 into int32
    assert "loss_op" in e.placeholders and "sr_random" in e.placeholders
    assert e.latency_ns["total"] > 0 and e.lifetime_days is None
    with pytest.raises(ConfigError, match="fixed-point"):
        energy_breakdown(closed_form_counts(WL, "spela", 1), WL, load_preset("rram-22nm"),
                         BitWidths.from_precision(None), "spela")
    with pytest.raises(ConfigError, match="layers"):
        energy_breakdown(closed_form_counts((784, 10), "spela", 1), WL, mcu, BITS, "spela")


def test_lifetime_scales_with_batch():
    r1 = design_point((784, 1024, 10), "rram-22nm", "spela", weight_bits=8, batch_size=1, samples_per_day=1000)
    r50 = design_point((784, 1024, 10), "rram-22nm", "spela", weight_bits=8, batch_size=50, samples_per_day=1000)
    # endurance 1e6 cycles; every cell is written once per update step
    assert r1.energy_train.lifetime_days == pytest.approx(1e6 / 1000)
    assert r50.energy_train.lifetime_days == pytest.approx(50 * 1e6 / 1000)


def test_design_point_records_and_vgg8():
    r = design_point(vgg8(), "sram-cim-22nm", "backprop", weight_bits=8, batch_size=200, budget="256KB")
    tabs = r.tables()
    assert set(tabs) == {"summary", "ledger", "tiling", "energy", "latency", "conventions"}
    assert all(isinstance(v, (int, float, str, bool, type(None))) for row in tabs["energy"] for v in row.values())
    assert r.summary()["arrays"] == 6344 and r.fit_train is not None and not r.fit_train.fits
    assert {row["table"] for row in r.to_records()} == set(tabs)
    assert r.to_records("tiling") == tabs["tiling"]
    with pytest.raises(ConfigError):
        r.to_records("nope")
    sp = design_point(vgg8(), "sram-cim-22nm", "spela", weight_bits=8, batch_size=200)
    assert sp.energy_train.total_pj < r.energy_train.total_pj
    assert sp.ledger_train.peak_bytes < r.ledger_train.peak_bytes
    an = design_point((784, 256, 10), "mcu-256kb", "drtp", weight_bits=8)
    assert an.energy_train is None and an.ledger_train.peak_bytes > 0


def test_conv_weight_read_convention_on_a_digital_device():
    mcu = load_preset("mcu-256kb")
    wl = vgg8()
    counts = closed_form_counts(wl, "spela", 1, phase="infer")
    once = energy_breakdown(counts, wl, mcu, BITS, "spela", costs=GOLD)
    per = energy_breakdown(counts, wl, mcu.with_conventions(conv_weight_reads="per_position"), BITS, "spela",
                           costs=GOLD)
    reads = lambda e: sum(i.events for i in e.items if i.action == "weight_read_digital")  # noqa: E731
    assert reads(once) == sum(L.weights + L.biases for L in wl.layers)
    assert reads(per) == sum((L.weights + L.biases) * L.positions for L in wl.layers)
    assert per.conventions["conv_weight_reads"] == "per_position"


def test_design_point_driven_by_a_real_run():
    rng = np.random.default_rng(2)
    X, y = rng.random((30, 40)).astype(np.float32), rng.integers(0, 5, 30)
    clf = SpelaClassifier((32, 5), batch_size=5, random_state=0).fit(X, y)
    run = design_point(clf.network_spec_, "sram-cim-22nm", clf.rule_, weight_bits=8, batch_size=5,
                       counts=clf.train_counts_, infer_counts=clf.inference_counts(X))
    cf = design_point((40, 32, 5), "sram-cim-22nm", "spela", weight_bits=8, batch_size=5, n_classes=5)
    assert run.counts_source == "run" and cf.counts_source == "closed_form"
    assert run.energy_train.total_pj == pytest.approx(cf.energy_train.total_pj, rel=1e-12)
    assert run.energy_infer.total_pj == pytest.approx(cf.energy_infer.total_pj, rel=1e-12)
    with pytest.raises(ConfigError, match="training counts"):
        design_point(clf.network_spec_, "sram-cim-22nm", "spela", weight_bits=8, counts=clf.inference_counts(X))
