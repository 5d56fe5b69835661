"""reports.crossover: where SPELA pays off (analytic sweeps, crossover points, the report section)."""


import pandas as pd

from reports.config import ReportConfig
from reports.crossover import (COLUMNS, batch_sweep, conv_net_points, conv_net_statements, conv_sweep,
                               crossover_point, crossover_section, crossovers, depth_sweep)
from reports.document import Section

KIB = 1024


def _synthetic(spela, backprop):
    rows = [{"sweep": "s", "x": x, "rule": r, "total_bytes": v} for r, vals in (("spela", spela), ("backprop", backprop))
            for x, v in zip(range(1, len(vals) + 1), vals)]
    return pd.DataFrame(rows)


def test_crossover_point_is_where_spela_starts_to_stay_lower():
    assert crossover_point(_synthetic([3, 3, 1, 3, 1, 1], [2, 2, 2, 2, 2, 2]), "total_bytes") == 5
    assert crossover_point(_synthetic([1, 1, 1], [2, 2, 2]), "total_bytes") == 1
    assert crossover_point(_synthetic([3, 1, 3], [2, 2, 2]), "total_bytes") is None  # wins, then loses
    assert crossover_point(_synthetic([2, 2], [2, 2]), "total_bytes") is None  # a tie is not a win


def test_depth_sweep_columns_and_the_hand_checkable_per_layer_step():
    """784-1024xk-10, w8a16: each extra hidden layer adds C*d = 10*1024 class-vector bytes to SPELA
    and B*(1024 16-bit inputs + 1024 mask bits) = B*2176 bytes to backprop, so at batch 1 SPELA never
    needs less memory, and from batch 5 on (5*2176 > 10240) its stored activations outgrow the class
    vectors at every depth."""
    d1 = depth_sweep("sram-cim-22nm", batch_size=1)
    assert list(d1.columns) == list(COLUMNS["crossover_data"])
    assert sorted(d1["x"].unique()) == list(range(1, 10)) and set(d1["rule"]) == {"spela", "backprop"}
    assert set(d1[d1["x"] == 3]["network"]) == {"784-1024-1024-1024-10"}
    piv = d1.pivot_table(index="x", columns="rule", values="total_bytes")
    diff = piv["spela"] - piv["backprop"]
    # from k = 2 SPELA's in-flight rows stop growing (max_k(a_k + o_k) = 2048 values)
    assert all(diff[k + 1] - diff[k] == 10 * 1024 - (2 * 1024 + 1024 // 8) for k in range(2, 9))
    assert crossover_point(d1, "total_bytes") is None
    for b, expected in ((4, None), (5, 1), (8, 1)):
        assert crossover_point(depth_sweep("sram-cim-22nm", depths=range(1, 5), batch_size=b), "total_bytes") \
            == expected, b
    # energy intervals contain the nominal value
    assert (d1["energy_low_pj"] <= d1["energy_pj"]).all() and (d1["energy_pj"] <= d1["energy_high_pj"]).all()


def test_batch_and_conv_sweeps_and_their_crossovers():
    b = batch_sweep("sram-cim-22nm", (784, 256, 10))
    c = conv_sweep("sram-cim-22nm", batches=(1, 8, 64))
    assert set(c["network"]) == {"vgg8"} and sorted(c["x"].unique()) == [1, 8, 64]
    # memory of a step grows with the batch for both rules; backprop's grows faster
    for df in (b, c):
        for _, g in df.groupby("rule"):
            assert g.sort_values("x")["total_bytes"].is_monotonic_increasing
    assert crossover_point(b, "total_bytes") == 4
    cx = crossovers(pd.concat([b, c]))
    assert list(cx.columns) == list(COLUMNS["crossovers"])
    assert len(cx) == 8 and cx["statement"].str.contains("SPELA").all()
    row = cx[(cx["sweep"] == "batch") & (cx["quantity"] == "training memory, all levels")].iloc[0]
    assert row["crossover"] == 4 and "from batch 4 on" in row["statement"]


def test_crossover_section_is_complete():
    said = []
    s = crossover_section(ReportConfig(), "sram-cim-22nm", progress=said.append)
    assert isinstance(s, Section) and s.status == "ok" and s.title == "Where SPELA pays off"
    assert len(said) == 4 and len(s.figures) == 1 and s.figures[0].png.startswith(b"\x89PNG")
    assert {t.name for t in s.tables} == {"crossovers", "crossover_data", "conv_net"}
    assert any("c32k5p2-c64k5p2-d10 at batch 64: SPELA pays off in memory and energy" in n.text for n in s.notes)
    text = " ".join(s.paragraphs)
    assert "sram-cim-22nm" in text and "placeholder" in text and "modelled" in text
    notes = [n.text for n in s.notes]
    assert any("never needs less training memory" in n for n in notes)  # depth at batch 1
    assert any("at every corner of the placeholder ranges" in n for n in notes)
    bad = crossover_section(ReportConfig(), "no-such-preset")
    assert bad.status == "unavailable" and "no-such-preset" in bad.reason


def test_conv_net_point_answers_does_spela_pay_off_on_my_cnn():
    """The paper's MNIST CNN from its description: the trainable projections are 32*12*12*100 +
    64*4*4*100 stored values (int8: bytes); a fixed projection replaces them by one 8-byte seed."""
    df = conv_net_points("sram-cim-22nm")
    assert list(df.columns) == list(COLUMNS["conv_net"])
    assert set(df["network"]) == {"1x28x28:c32k5p2-c64k5p2-d10"} and sorted(df["batch_size"].unique()) == [1, 64]
    one = df[df["batch_size"] == 1].set_index(["rule", "conv_target"])
    assert one.loc[("spela", "projection"), "projection_bytes"] == 563_200
    assert (one["projection_bytes"].drop(("spela", "projection")) == 0).all()
    assert one.loc[("spela", "projection"), "total_bytes"] - one.loc[("spela", "fixed_projection"), "total_bytes"] \
        == 563_200 - 8
    assert one.loc[("backprop", ""), "memory_vs_backprop"] == 1.0
    # at batch 1 the paper's projections cost SPELA its memory advantage; pooled targets keep it
    assert one.loc[("spela", "projection"), "memory_vs_backprop"] > 1 > one.loc[("spela", "pooled"), "memory_vs_backprop"]
    said = conv_net_statements(df)
    assert len(said) == 2 and "at batch 1: SPELA pays off in memory and energy with pooled;" in said[0]
