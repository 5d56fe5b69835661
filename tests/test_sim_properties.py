"""Property tests of the hardware model (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import (ActionCosts, BitWidths, Workload, closed_form_counts, energy_breakdown, load_preset, memory_ledger,
                 tile_matrix)

dims = st.lists(st.integers(1, 600), min_size=2, max_size=4).map(tuple)
rules = st.sampled_from(["spela", "backprop"])


@settings(deadline=None, max_examples=30)
@given(n=st.integers(1, 3000), m=st.integers(1, 3000), wb=st.integers(1, 16), xb=st.integers(1, 16),
       preset=st.sampled_from(["rram-22nm", "sram-cim-22nm"]), diff=st.booleans())
def test_tiling_invariants(n, m, wb, xb, preset, diff):
    hw = load_preset(preset)
    if diff:
        hw = hw.with_conventions(signed_weights="differential")
    t = tile_matrix("L", n, m, hw, wb, xb)
    R, C = hw.crossbar.rows, hw.crossbar.cols
    assert t.cells_used == n * m * t.slices * t.signed_factor
    assert t.cells_used <= t.arrays * R * C < t.cells_used + (t.row_tiles + t.col_tiles) * R * C
    assert 0 < t.utilisation <= 1
    assert t.conversions_per_mvm % xb == 0 or hw.periphery.input_encoding == "dac"


@settings(deadline=None, max_examples=20)
@given(d=dims, rule=rules, b=st.integers(1, 64))
def test_ledger_grows_with_batch_and_is_the_sum_of_its_rows(d, rule, b):
    wl = Workload.dense((d[0], *d[1:-1], max(d[-1], 2)))
    small = memory_ledger(wl, rule, BitWidths(), b)
    big = memory_ledger(wl, rule, BitWidths(), b + 1)
    assert big.peak_bytes > small.peak_bytes
    assert small.peak_bytes == sum(small.by_class().values()) == sum(small.by_level().values())
    persistent = lambda led: sum(r.bytes for r in led.rows if r.persistent)  # noqa: E731
    assert persistent(big) == persistent(small)  # only batch state grows


@settings(deadline=None, max_examples=30)
@given(d=dims, rule=rules, b=st.integers(1, 16), k=st.integers(1, 4))
def test_per_sample_energy_does_not_depend_on_how_many_batches_were_counted(d, rule, b, k):
    wl = Workload.dense((d[0], *d[1:-1], max(d[-1], 2)))
    hw = load_preset("rram-22nm")
    one = energy_breakdown(closed_form_counts(wl, rule, b), wl, hw, BitWidths(), rule, costs=ActionCosts.uniform())
    many = energy_breakdown(closed_form_counts(wl, rule, b, samples=k * b), wl, hw, BitWidths(), rule,
                            costs=ActionCosts.uniform())
    assert np.isclose(one.total_pj, many.total_pj, rtol=1e-12)
    assert one.total_pj > 0
