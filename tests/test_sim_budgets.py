"""Budgets that mean one thing each: units, SRAM vs crossbar cells vs DRAM, a monotone batch table."""

import pytest

from reports.hardware import budget_bytes, budget_tables
from sim import BitWidths, MemoryBudget, load_preset, memory_ledger
from sim.units import format_bytes, parse_quantity
from spela_hw import PrecisionSpec
from spela_hw.errors import ConfigError

KIB = 1024
W8A16 = BitWidths.from_precision(PrecisionSpec.fixed(8))


@pytest.mark.parametrize("text,bytes_", [
    ("256 KiB", 262_144), ("256KiB", 262_144), ("256 KB", 262_144), ("256 kB", 256_000), ("256kB", 256_000),
    ("1 MiB", 1 << 20), ("1 MB", 1 << 20), ("2 GiB", 2 << 30), ("512 B", 512),
])
def test_byte_units_iec_si_and_jedec(text, bytes_):
    assert MemoryBudget.parse(text).sram_bytes == bytes_
    number, _, unit = text.partition(" ")
    if unit:
        assert parse_quantity(text, "bytes", "f") == bytes_


@pytest.mark.parametrize("text,field,needle", [
    ("256 kb", "budget.sram", "unknown unit 'kb'"),
    ("256 Kb", "budget.sram", "KB, MB, GB = 1024-based (JEDEC"),
    ("256 KIB", "budget.sram", "kB = 1000 B (SI)"),
    ("256", "budget.sram", "needs a unit"),
    ("crossbar=1 MiB,flash=1 MiB", "budget.flash", "unknown level"),
    ("dram=1 GiB,dram=2 GiB", "budget.dram", "given twice"),
    ("sram=256 KiB,total=lots", "budget.total", "cannot read"),
])
def test_bad_budgets_are_refused_by_name(text, field, needle):
    with pytest.raises(ConfigError) as e:
        MemoryBudget.parse(text)
    assert e.value.field == field and needle in str(e.value)


def test_a_bare_size_is_the_sram_budget_and_prints_in_kib():
    b = MemoryBudget.parse("256 KB")
    assert b.limits() == {"sram": 262_144} and b.describe() == "sram=256.0 KiB"
    assert MemoryBudget.coerce(1000).sram_bytes == 1000 and MemoryBudget.coerce(None).limits() == {}
    assert MemoryBudget.parse("sram=256KiB, crossbar=1MiB, dram=2GiB").limits() == \
        {"sram": 262_144, "crossbar": 1 << 20, "dram": 2 << 30}
    assert budget_bytes("256 KB") == 262_144 and budget_bytes("total=1 MiB") is None
    assert format_bytes(256_000) == "250.0 KiB"


def test_crossbar_weights_never_count_against_sram():
    """784-1024-10 int8 on sram-cim-22nm: 794 KiB of weights sit in the arrays, the step's SRAM is a
    few KiB, so an SRAM budget of 256 KiB (= the preset's buffer) fits, while crossbar= and total=
    budgets see the weights."""
    hw = load_preset("sram-cim-22nm")
    assert hw.sram.size_bytes == MemoryBudget.parse("256 KB").sram_bytes  # the budget matches the buffer
    led = memory_ledger((784, 1024, 10), "backprop", W8A16, 1, "train", hw)
    assert led.by_level()["crossbar"] == 813_056 and led.by_level()["sram"] < 32 * KIB
    fit = led.fits("256 KB")
    assert fit and fit.used_bytes["sram"] == led.by_level()["sram"]
    assert not led.fits("crossbar=512KiB") and "crossbar cells" in led.fits("crossbar=512KiB").reasons[0]
    assert not led.fits("total=256KiB") and "on-chip total" in led.fits("total=256KiB").reasons[0]
    # on a digital device the weights are in SRAM and do count
    mcu = memory_ledger((784, 1024, 10), "backprop", W8A16, 1, "train", load_preset("mcu-256kb"))
    assert mcu.by_level()["sram"] > 813_056 and not mcu.fits("256 KB")


def test_batch_table_is_monotone():
    """The report's default shape on the default preset: the SRAM demand grows with the batch, the
    verdict goes fits -> fits only by spilling -> does not fit and never back (it used to say batch 32
    does not fit while batch 128 fits by spilling, with on-chip bytes falling)."""
    order = {"fits": 0, "fits only by spilling to DRAM": 1, "does not fit": 2}
    t = budget_tables((784, 256, 34), ("spela", "backprop"), ("fp32", 8), "sram-cim-22nm", "256 KB", 10)
    mvb = t["memory_vs_batch"]
    assert {"sram_demand_bytes", "sram_bytes", "dram_bytes", "crossbar_bytes", "verdict"} <= set(mvb.columns)
    for _, g in mvb.groupby(["rule", "precision"]):
        g = g.sort_values("batch_size")
        assert g["sram_demand_bytes"].is_monotonic_increasing
        assert g["verdict"].map(order).is_monotonic_increasing, g[["batch_size", "verdict"]]
        assert (g["sram_bytes"] <= 256 * KIB).all()
        assert (g["sram_bytes"] + g["dram_bytes"] == g["sram_demand_bytes"]).all()
    row = mvb[(mvb["rule"] == "spela") & (mvb["precision"] == "int8")].set_index("batch_size")
    assert row.loc[32, "verdict"] == "fits" and row.loc[128, "verdict"] == "fits only by spilling to DRAM"
