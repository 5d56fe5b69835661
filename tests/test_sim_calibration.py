"""Calibration against NeuroSim V1.4 Table VII and the training-path audit (docs/hardware.md §10.3)."""

import json

import pytest

from reports.cli import main
from sim import (
    design_point,
    hardware_from_dict,
    list_presets,
    load_preset,
    tile_workload,
)
from sim.ledger import BitWidths
from sim.periphery import (
    TOLERANCE,
    calibrate,
    chip_estimate,
    compare_with_published,
    neurosim_table,
    pipeline_duplication,
)
from sim.tiling import tile_matrix
from sim.workload import closed_form_counts, vgg8
from spela_hw.errors import ConfigError

ROWS = neurosim_table()[0]
CALIBRATED = [n for n in list_presets() if load_preset(n).chip is not None]


def test_every_table_vii_row_has_a_calibrated_preset():
    assert len(ROWS) == 6
    assert sorted(load_preset(n).chip.published_row for n in CALIBRATED) == sorted(ROWS)
    assert "neurosim-sram-22nm-64r" in CALIBRATED


@pytest.mark.parametrize("name", CALIBRATED)
def test_calibrated_preset_reproduces_its_row_within_tolerance(name):
    hw = load_preset(name)
    row = ROWS[hw.chip.published_row]
    assert (hw.crossbar.parallel_rows, hw.technology.node_nm, hw.crossbar.device.kind) == (
        row.rows_read_at_once, row.node_nm, row.memory)
    cmp = compare_with_published(chip_estimate(vgg8(), hw), row)
    assert set(cmp) == {"energy_uj", "tops", "tops_per_w", "area_mm2"}
    for metric, v in cmp.items():
        assert abs(v["ratio"] - 1) <= TOLERANCE, (name, metric, v)
        assert v["within_tolerance"]


def test_stored_coefficients_are_the_fit_of_the_published_rows():
    fit = calibrate(vgg8(), lambda row: load_preset(f"neurosim-{row}"))
    stored = neurosim_table()[1]
    assert set(fit) == set(stored)
    for name, values in fit.items():
        c = stored[name]
        assert c.source and c.basis
        for key, v in values.items():
            assert getattr(c, key) == pytest.approx(v, rel=1e-3), (name, key)


def test_predictions_that_were_not_fitted():
    """RRAM's TOPS use SRAM's times, and the 32-row areas use the 64-row periphery area."""
    for name in ("neurosim-rram-22nm-64r", "neurosim-rram-22nm-32r", "neurosim-sram-22nm-32r"):
        hw = load_preset(name)
        cmp = compare_with_published(chip_estimate(vgg8(), hw), ROWS[hw.chip.published_row])
        assert abs(cmp["tops"]["ratio"] - 1) < 0.05 and abs(cmp["area_mm2"]["ratio"] - 1) < 0.05


def test_pipeline_duplicates_early_layers_like_neurosim():
    # speedUpDegree 8 is capped at IFM_max / IFM_min = 32 / 8 = 4: bound 8, copies (IFM / 8)^2
    assert pipeline_duplication(vgg8(), 8) == [16, 16, 4, 4, 1, 1, 1, 1]
    assert pipeline_duplication(vgg8(), 1) == [1] * 8
    est = chip_estimate(vgg8(), load_preset("neurosim-sram-22nm-64r"))
    assert est.arrays == 6344 and est.arrays_duplicated == 8840
    assert est.stage_mvms == 64 and est.stage_reads == 8 * 2 * 8  # bits x phases x columns per ADC


def test_size_energy_uses_the_calibrated_periphery():
    """`spela-hw size`'s inference energy on a calibrated preset is the chip's, within tolerance."""
    hw = load_preset("neurosim-sram-22nm-64r")
    dp = design_point(vgg8(), hw, "backprop", BitWidths(weight=8, activation=8), 1)
    published = ROWS["sram-22nm-64r"].energy_uj(2 * vgg8().macs)
    assert dp.energy_infer.total_pj / 1e6 == pytest.approx(published, rel=TOLERANCE)
    kinds = {i.action: i.kind for i in dp.energy_infer.items}
    assert kinds["adc_forward"] == "calibrated" and kinds["array_mac"] == "calibrated"
    # uncalibrated presets keep their prices (no array_mac line)
    plain = design_point(vgg8(), load_preset("sram-cim-22nm"), "backprop", BitWidths(weight=8, activation=8), 1)
    assert "array_mac" not in {i.action for i in plain.energy_infer.items}


def test_unknown_calibration_is_refused_naming_the_field():
    d = load_preset("neurosim-sram-22nm-64r").to_dict()
    d["chip"]["calibration"] = "sram-3nm"
    hw = hardware_from_dict(d)
    with pytest.raises(ConfigError, match="chip.calibration"):
        chip_estimate(vgg8(), hw)
    d["chip"]["model"] = "timeloop"
    with pytest.raises(ConfigError, match="chip.model"):
        hardware_from_dict(d)


def test_cli_size_and_presets_show_the_calibration(capsys):
    assert main(["size", "--network", "vgg8", "--preset", "neurosim-sram-22nm-64r", "--weight-bits", "8",
                 "--batch-size", "1", "--json"]) == 0
    chip = json.loads(capsys.readouterr().out)["chip"]
    assert chip["published_row"] == "sram-22nm-64r" and "Table VII" in chip["source"]
    assert all(v["within_tolerance"] for v in chip["comparison"].values())
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in CALIBRATED:
        assert f"calibrated: chip totals within 25 % of {load_preset(name).chip.published_row}" in out
    assert main(["presets", "--json"]) == 0
    doc = {p["name"]: p for p in json.loads(capsys.readouterr().out)["presets"]}
    assert doc["neurosim-rram-22nm-32r"]["calibrated_on"]["row"] == "rram-22nm-32r"
    assert doc["sram-cim-22nm"]["calibrated_on"] is None


# -- training-path audit ---------------------------------------------------------------------------


def test_transposed_read_drives_one_slice_at_a_time():
    """Per array and error bit: slices x R row conversions (the layout's factor), one phase for
    the 16 columns of one slice at 64 rows at once (the counting fix: it was 2 phases)."""
    for name, phases in (("rram-22nm", 1), ("sram-cim-22nm", 1)):
        t = tile_matrix("C6", 4608, 512, load_preset(name), 8, 8, 8, positions=64)
        assert t.conversions_t_per_mvm == 8 * t.slices * 4608 * t.col_tiles * phases
    full = tile_matrix("C6", 4608, 512, load_preset("rram-22nm"), 8, 8, 8, positions=64)
    assert full.conversions_t_per_mvm == full.slices * full.conversions_per_mvm  # R = C: 8x forward
    half = tile_matrix("C6", 4608, 512, load_preset("sram-cim-22nm"), 8, 8, 8, positions=64)
    assert half.conversions_t_per_mvm == 4 * half.conversions_per_mvm  # forward has 2 row phases


def test_training_counts_per_layer_follow_the_audited_formulas():
    wl = vgg8()
    c = closed_form_counts(wl, "backprop", samples=1, batch_size=1)
    for k, L in enumerate(wl.layers):
        assert c.data["forward_macs"][k] == L.positions * L.fan_in * L.fan_out
        assert c.data["error_macs"][k] == (0 if k == 0 else L.positions * L.fan_in * L.fan_out)
        assert c.data["update_macs"][k] == L.positions * L.fan_in * L.fan_out
        assert c.data["weight_writes"][k] == L.fan_in * L.fan_out + L.fan_out
    s = closed_form_counts(wl, "spela", samples=1, batch_size=1)
    assert s.data["error_macs"].sum() == 0 and (s.data["update_macs"] >= c.data["update_macs"]).all()
    t = tile_workload(wl, load_preset("rram-22nm"), 8, 8)
    assert t.arrays == 6344
