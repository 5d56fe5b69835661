"""Hardware descriptions: presets cite sources; bad configs raise ConfigError naming the field."""

import ast
import dataclasses
import math
from pathlib import Path

import pytest

import sim.config as sim_config
from sim import hardware_from_dict, list_presets, load_hardware_toml, load_preset, preset_dict
from sim.config import (BufferLevel, ChipConfig, Conventions, CrossbarConfig, DeviceConfig, DramConfig,
                        PeripheryConfig, TechnologyConfig)
from sim.presets import resolve_base
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


@pytest.mark.parametrize("build,field", [
    (lambda: TechnologyConfig(node_nm=-5, vdd_v=0, clock_hz=0), "technology.node"),
    (lambda: TechnologyConfig(node_nm=22, vdd_v=0.8, clock_hz=0), "technology.clock"),
    (lambda: TechnologyConfig(22, 0.8, 1e9, digital_macs_per_cycle=2.5), "technology.digital_macs_per_cycle"),
    (lambda: DeviceConfig("rram", "x", 4.0, r_on_ohm=1e5, on_off_ratio=10, levels=1), "device.levels"),
    (lambda: DeviceConfig("memristor", "x", 4.0), "device.kind"),
    (lambda: DeviceConfig("rram", "x", 4.0, r_on_ohm=1e5, on_off_ratio=10, c2c_sigma=math.nan), "device.c2c_sigma"),
    (lambda: CrossbarConfig(1, 128, 1, load_preset("rram-22nm").crossbar.device), "crossbar.rows"),
    (lambda: PeripheryConfig("dac", 8, 8, 0.0, dac_bits=4), "periphery.adc_rate"),
    (lambda: BufferLevel("sram", "sram", -1.0, 1.0), "buffers.sram.size"),
    (lambda: DramConfig(present="yes"), "dram.present"),
    (lambda: ChipConfig("neurosim_v14", 3, "row"), "chip.calibration"),
    (lambda: Conventions(sram_write_to_read=0), "conventions.sram_write_to_read"),
])
def test_sections_refuse_bad_values_on_construction(build, field):
    """Ranges live in the fields' metadata and are checked by ``__post_init__``, not only by the
    TOML reader: a description built in Python is refused like a file, naming the field."""
    with pytest.raises(ConfigError) as e:
        build()
    assert e.value.field == field


def test_the_schema_is_the_fields_metadata():
    tech = TechnologyConfig(node_nm=22, vdd_v=0.8, clock_hz=1e9)
    assert tech.digital_macs_per_cycle == 1
    node = next(f for f in dataclasses.fields(TechnologyConfig) if f.name == "node_nm")
    assert node.metadata["spec"].key == "node" and node.metadata["spec"].kind[3] == "nm"
    for name in list_presets():  # the reader and the writer derive keys and units from it
        hw = load_preset(name)
        assert hardware_from_dict(hw.to_dict()) == hw


def test_presets_resolve_base_and_config_does_not_import_presets():
    """``base =`` is resolved in sim.presets: sim.config no longer imports it (no cycle)."""
    tree = ast.parse((Path(sim_config.__file__)).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "presets" not in imported and "sim.presets" not in imported
    with pytest.raises(ConfigError) as e:
        hardware_from_dict({"base": "rram-22nm", "name": "mine"})
    assert e.value.field == "base" and "resolve_base" in str(e.value)
    d = resolve_base({"base": "rram-22nm", "name": "mine", "periphery": {"adc_bits": 6}})
    hw = hardware_from_dict(d)
    assert hw.name == "mine" and hw.periphery.adc_bits == 6 and hw.periphery.columns_per_adc == 8
