"""Hardware descriptions: presets cite sources; bad configs raise ConfigError naming the field."""

import pytest

from sim import hardware_from_dict, list_presets, load_hardware_toml, load_preset, preset_dict
from sim.config import Conventions
from sim.units import format_bytes, parse_quantity
from spela_hw.errors import ConfigError


def test_three_presets_each_cite_sources():
    names = list_presets()
    assert {"rram-22nm", "sram-cim-22nm", "mcu-256kb"} <= set(names)
    for n in names:
        hw = load_preset(n)
        assert hw.name == n and hw.sources and all(len(s) > 20 for s in hw.sources)
        assert hardware_from_dict(hw.to_dict()) == hw  # round trip through the TOML form


def test_preset_contents_follow_their_sources():
    rram = load_preset("rram-22nm")
    assert (rram.crossbar.rows, rram.crossbar.cols, rram.crossbar.cell_bits) == (128, 128, 1)
    assert rram.periphery.columns_per_adc == 8 and rram.periphery.input_encoding == "bit_serial"
    assert rram.crossbar.device.r_on_ohm == 100e3 and rram.crossbar.device.on_off_ratio == 10
    assert rram.crossbar.device.levels == 32 and rram.technology.node_nm == 22
    sram = load_preset("sram-cim-22nm")
    assert sram.crossbar.device.kind == "sram" and sram.crossbar.rows_read_at_once == 64
    assert sram.periphery.adc_bits == 4 and sram.crossbar.device.cell_area_f2 == 360
    mcu = load_preset("mcu-256kb")
    assert mcu.crossbar is None and not mcu.dram.present
    assert mcu.sram.size_bytes == 256 * 1024 and mcu.nvm.size_bytes == 1024 * 1024 and mcu.nvm.kind == "flash"


def test_units():
    assert parse_quantity("256 KB", "bytes", "f") == 262144
    assert parse_quantity("256KB", "bytes", "f") == 262144
    assert parse_quantity("1 kB", "bytes", "f") == 1000
    assert parse_quantity("22 nm", "length", "f") == pytest.approx(22e-9)
    assert parse_quantity("1 GS/s", "rate", "f") == 1e9
    assert format_bytes(813056) == "794.0 KiB"
    with pytest.raises(ConfigError, match="needs a unit"):
        parse_quantity(22, "length", "technology.node")
    with pytest.raises(ConfigError, match="expected voltage"):
        parse_quantity("0.9 nm", "voltage", "technology.vdd")


def _bad(path, value):
    d = preset_dict("rram-22nm")
    section, key = path.split(".")
    d[section][key] = value
    return d


@pytest.mark.parametrize("path,value,field", [
    ("technology.node", 22, "technology.node"),                 # missing unit
    ("technology.node", "22 V", "technology.node"),             # wrong unit
    ("technology.vdd", "9 V", "technology.vdd"),                # out of range
    ("technology.nodes", "22 nm", "technology.nodes"),          # unknown key
    ("crossbar.rows", 1, "crossbar.rows"),                      # out of range
    ("crossbar.cell_bits", 2.5, "crossbar.cell_bits"),          # not an integer
    ("crossbar.rows_read_at_once", 256, "crossbar.rows_read_at_once"),
    ("periphery.adc_bits", 40, "periphery.adc_bits"),
    ("periphery.input_encoding", "pwm", "periphery.input_encoding"),
    ("periphery.columns_per_adc", 512, "periphery.columns_per_adc"),
    ("device.stuck_at_hrs_rate", 1.5, "device.stuck_at_hrs_rate"),
    ("device.read_pulse", "10", "device.read_pulse"),
    ("conventions.adc_energy", "survey", "conventions.adc_energy"),
    ("conventions.colour", "red", "conventions.colour"),
    ("dram.bandwidth", "12 GB", "dram.bandwidth"),
])
def test_bad_configs_name_the_field(path, value, field):
    with pytest.raises(ConfigError) as e:
        hardware_from_dict(_bad(path, value))
    assert e.value.field == field


def test_structural_errors():
    d = preset_dict("rram-22nm")
    d["flavour"] = "x"
    with pytest.raises(ConfigError) as e:
        hardware_from_dict(d)
    assert e.value.field == "flavour"
    d = preset_dict("rram-22nm")
    del d["periphery"]
    with pytest.raises(ConfigError, match="go together"):
        hardware_from_dict(d)
    d = preset_dict("mcu-256kb")
    d["sources"] = []
    with pytest.raises(ConfigError) as e:
        hardware_from_dict(d)
    assert e.value.field == "sources"
    d = preset_dict("mcu-256kb")
    d["buffers"][0]["bank"] = "1 MB"
    with pytest.raises(ConfigError, match="bank"):
        hardware_from_dict(d)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_dict("tpu-v9")


def test_user_toml_inherits_from_a_preset(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('base = "rram-22nm"\nname = "mine"\nsources = ["my lab notebook"]\n'
                 '[periphery]\nadc_bits = 6\n[conventions]\nadc_energy = "mnsim_cycles"\n')
    hw = load_hardware_toml(f)
    assert hw.name == "mine" and hw.periphery.adc_bits == 6 and hw.periphery.columns_per_adc == 8
    assert hw.conventions.adc_energy == "mnsim_cycles"
    f.write_text('base = "rram-22nm"\n[periphery]\nadc_bitz = 6\n')
    with pytest.raises(ConfigError) as e:
        load_hardware_toml(f)
    assert e.value.field == "periphery.adc_bitz"
    f.write_text('base = "rram-22nm"\n[technology]\nclock = 1e9\n')
    with pytest.raises(ConfigError, match="needs a unit") as e:
        load_hardware_toml(f)
    assert e.value.field == "technology.clock"
    with pytest.raises(ConfigError, match="no such file"):
        load_hardware_toml(tmp_path / "missing.toml")


def test_conventions_are_named_and_validated():
    c = Conventions()
    d = c.describe()
    assert d["adc_energy"] == "p_over_fs" and d["sram_law"] == "size_law" and d["sram_write_to_read"] == "1.0"
    assert d["scaling"] == "stillmaker_baas" and d["signed_weights"] == "offset"
    with pytest.raises(ConfigError) as e:
        c.with_changes(sram_law="cacti")
    assert e.value.field == "conventions.sram_law"
    with pytest.raises(ConfigError) as e:
        c.with_changes(adc="x")
    assert e.value.field == "conventions.adc"
