"""The shipped energy tables reproduce the numbers of docs/hardware.md exactly, with provenance."""

import math

import pytest

from sim.tables import KINDS, load_tables, parse_entry
from spela_hw.errors import ConfigError


@pytest.fixture(scope="module")
def t():
    return load_tables()


# docs/hardware.md §1.1, copied by hand
HOROWITZ = {
    "int_add_8": 0.03, "int_add_16": 0.05, "int_add_32": 0.1, "int_mul_8": 0.2, "int_mul_32": 3.1,
    "fp16_add": 0.4, "fp32_add": 0.9, "fp16_mul": 1.1, "fp32_mul": 3.7, "sram_read_64b_8KB": 10.0,
    "sram_read_64b_32KB": 20.0, "sram_read_64b_1MB": 100.0, "dram_access_64b_low": 1300.0,
    "dram_access_64b_high": 2600.0,
}


@pytest.mark.parametrize("name,value", sorted(HOROWITZ.items()))
def test_horowitz_values_reproduced_exactly(t, name, value):
    r = t.record(name)
    assert r.value == value
    assert r.unit == "pJ" and r.node_nm == 45.0
    assert "Horowitz" in r.source and r.kind == "published"
    if not name.startswith("dram"):
        assert r.vdd_v == 0.9


def test_no_horowitz_int16_multiply(t):
    with pytest.raises(ConfigError):
        t.record("int_mul_16")


@pytest.mark.parametrize("b,add,mul", [(4, 0.0125, 0.0521), (6, 0.0188, 0.1141), (8, 0.025, 0.200),
                                       (16, 0.050, 0.783), (24, 0.075, 1.750), (32, 0.100, 3.100)])
def test_fixed_point_fits(t, b, add, mul):
    assert t.add_pj(b) == pytest.approx(add, abs=5e-5)
    assert t.mul_pj(b) == pytest.approx(mul, abs=5e-4)


def test_mixed_width_and_mac(t):
    assert t.mul_pj(8, 4) == pytest.approx(0.102, abs=5e-4)
    assert t.mul_pj(8, 6) == pytest.approx(0.151, abs=5e-4)
    assert t.mul_pj(16, 8) == pytest.approx(0.396, abs=5e-4)
    assert t.mul_pj(8, 8) == t.mul_pj(8)  # reduces to the fit
    assert t.mac_pj(8, 8, 32) == pytest.approx(0.3, abs=1e-9)
    assert t.mac_pj(32, 32, 32, is_float=True) == pytest.approx(3.7 + 0.9)


# docs/hardware.md §2.1 table: size, pJ/bit, pJ per 64-bit word (size law), QKeras polynomial per word
SRAM = [(1, 0.0552, 3.54, 1.56), (2, 0.0781, 5.00, 1.96), (4, 0.1105, 7.07, 2.41), (8, 0.1563, 10.0, 2.90),
        (16, 0.2210, 14.1, 3.45), (32, 0.3125, 20.0, 4.04), (64, 0.4419, 28.3, 4.68), (128, 0.6250, 40.0, 5.37),
        (256, 0.8839, 56.6, 6.12), (512, 1.2500, 80.0, 6.91), (1024, 1.7678, 113.1, 7.74)]


@pytest.mark.parametrize("kib,per_bit,word,poly", SRAM)
def test_sram_laws(t, kib, per_bit, word, poly):
    bits = kib * 1024 * 8
    assert t.sram_pj_per_bit(bits) == pytest.approx(per_bit, abs=5e-5)
    assert 64 * t.sram_pj_per_bit(bits) == pytest.approx(word, abs=0.05)
    assert 64 * t.sram_pj_per_bit(bits, "qkeras_poly", tensor_bits=bits) == pytest.approx(poly, abs=0.01)


def test_dram_per_bit(t):
    assert t.dram_pj_per_bit("low") == 20.3125 == 1300 / 64
    assert t.dram_pj_per_bit("high") == 40.625 == 2600 / 64


@pytest.mark.parametrize("bits,e,kind", [(4, 0.70, "published"), (5, 0.94, "derived"), (6, 1.26, "published"),
                                         (7, 1.59, "derived"), (8, 2.00, "published"), (9, 3.04, "derived"),
                                         (10, 4.61, "published")])
def test_adc_defaults_p_over_fs(t, bits, e, kind):
    got, k = t.adc_pj(bits)
    assert got == pytest.approx(e, abs=0.006)
    assert k == kind


def test_adc_conventions_differ_as_published(t):
    assert t.adc_pj(8, "mnsim_cycles")[0] == pytest.approx(20.0)  # ISAAC: 20 pJ vs 2 pJ
    assert t.adc_pj(4, "mnsim_cycles")[0] == pytest.approx(4.2)
    assert t.adc_pj(10, "mnsim_cycles")[0] == pytest.approx(55.4, abs=0.05)
    with pytest.raises(ConfigError, match="adc_energy"):
        t.adc_pj(8, "survey_bound")
    with pytest.raises(ConfigError, match="adc_bits"):
        t.adc_pj(0)


@pytest.mark.parametrize("node,vdd,factor", [(65, 1.0, 1.58), (32, 0.9, 0.64), (20, 0.8, 0.18), (16, 0.8, 0.14),
                                             (14, 0.8, 0.11), (10, 0.75, 0.083), (7, 0.7, 0.057), (45, 0.9, 1.0)])
def test_stillmaker_baas_factors(t, node, vdd, factor):
    # docs/hardware.md §3.1 prints two significant digits
    assert t.energy_factor(node, vdd) == pytest.approx(factor, rel=0.04)


def test_scaling_interpolates_22nm_and_rejects_out_of_range(t):
    f22 = t.energy_factor(22, 0.8)
    assert t.energy_factor(20, 0.8) < f22 < t.energy_factor(32, 0.8)
    assert t.energy_factor(22, 0.8, "none") == 1.0
    with pytest.raises(ConfigError, match="technology.node"):
        t.energy_factor(3, 0.7)
    assert t.area_factor(32) == 0.46 and t.area_factor(7) == 0.059


def test_every_record_has_provenance(t):
    rows = t.to_records()
    assert len(rows) > 30
    for r in rows:
        assert r["kind"] in KINDS
        assert r["source"] and r["unit"]
        assert "node_nm" in r and "vdd_v" in r  # may be None (explicitly unknown)


def test_placeholders_are_labelled(t):
    for name in ("rsqrt_newton_iterations", "rng_add_equivalent_per_bit", "flash_read_pj_per_bit"):
        assert t.record(name).kind == "placeholder"
    assert t.record("flash_read_pj_per_bit").node_nm is None  # unknown stays unknown


@pytest.mark.parametrize("entry,field", [
    ({"value": 1.0, "node": "45 nm", "vdd": "0.9 V", "source": "s", "kind": "fit"}, "x.entries.e.unit"),
    ({"value": 1.0, "unit": "pJ", "node": "45 nm", "vdd": "0.9 V", "source": "s", "kind": "guess"}, "x.entries.e.kind"),
    ({"value": 1.0, "unit": "pJ", "node": 45, "vdd": "0.9 V", "source": "s", "kind": "fit"}, "x.entries.e.node"),
    ({"value": 1.0, "unit": "furlong", "node": "45 nm", "vdd": "0.9 V", "source": "s", "kind": "fit"}, "x.entries.e.unit"),
    ({"value": 1.0, "unit": "pJ", "node": "45 nm", "vdd": "0.9 V", "source": "s", "kind": "fit", "colour": 1}, "x.entries.e.colour"),
    ({"value": math.inf, "unit": "pJ", "node": "45 nm", "vdd": "0.9 V", "source": "s", "kind": "fit"}, "x.entries.e.value"),
    ({"value": 1.0, "unit": "pJ", "node": "45 nm", "vdd": "0.9 V", "source": " ", "kind": "fit"}, "x.entries.e.source"),
])
def test_bad_table_entries_name_the_field(entry, field):
    with pytest.raises(ConfigError) as e:
        parse_entry("x", "e", entry)
    assert e.value.field == field
