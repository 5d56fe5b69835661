"""Crossbar tiling equals hand computation (docs/hardware.md §4 rules)."""

import math

import pytest

from sim import Workload, load_preset, tile_matrix, tile_workload, vgg8
from spela_hw.errors import ConfigError


@pytest.fixture(scope="module")
def rram():
    return load_preset("rram-22nm")  # 128 x 128, 1 bit per cell, offset mapping, fully parallel


def test_784_1024_10_by_hand(rram):
    t = tile_workload(Workload.dense((784, 1024, 10)), rram, weight_bits=8, input_bits=8)
    l1, l2 = t.matrices
    # Layer 1: 8-bit weights in 1-bit cells -> 8 slices; 1024 * 8 = 8192 columns;
    # ceil(784/128) = 7 row tiles x 8192/128 = 64 column tiles = 448 arrays;
    # 784 * 8192 used of 448 * 16384 cells = 87.5 %;
    # conversions = 8 input bits * 7 row tiles * 8192 columns * 1 read phase = 458 752;
    # ADC slots = 8 bits * 8 columns per ADC = 64 per MVM.
    assert (l1.slices, l1.columns, l1.row_tiles, l1.col_tiles, l1.arrays) == (8, 8192, 7, 64, 448)
    assert l1.utilisation == pytest.approx(0.875)
    assert l1.conversions_per_mvm == 458_752 and l1.adc_slots_per_mvm == 64
    assert l1.reference_columns == 448  # one per array (offset mapping)
    # Layer 2: 10 * 8 = 80 columns -> ceil(1024/128) = 8 x 1 = 8 arrays, 1024*80/(8*16384) = 62.5 %;
    # conversions = 8 * 8 * 80 = 5120.
    assert (l2.columns, l2.arrays, l2.conversions_per_mvm) == (80, 8, 5120)
    assert l2.utilisation == pytest.approx(0.625)
    assert t.arrays == 456
    assert t.utilisation == pytest.approx((784 * 8192 + 1024 * 80) / (456 * 16384))
    # array cell area: 456 * 16384 cells * 16 F^2 * (22 nm)^2
    assert t.array_area_mm2 == pytest.approx(456 * 16384 * 16 * (22e-9) ** 2 * 1e6)


def test_worked_example_adc_energies():
    # 458 752 conversions: 0.32 uJ at 0.7 pJ, 0.58 uJ at 1.26 pJ, 1.93 uJ at 4.2 pJ ((b+2) cycles, 4 bits)
    n = 458_752
    assert n * 0.7e-12 == pytest.approx(0.32e-6, abs=0.005e-6)
    assert n * 1.26e-12 == pytest.approx(0.58e-6, abs=0.005e-6)
    assert n * 4.2e-12 == pytest.approx(1.93e-6, abs=0.005e-6)


def test_vgg8_on_128x128_by_hand(rram):
    wl = vgg8()
    t = tile_workload(wl, rram, weight_bits=8, input_bits=8)
    # columns = c_out * 8 slices; arrays = ceil(k*k*c_in / 128) * ceil(columns / 128)
    hand = [
        ("C1", 27, 128, 1 * 8),        # 3*3*3 = 27 rows -> 1 row tile; 1024 columns -> 8
        ("C2", 1152, 128, 9 * 8),      # 3*3*128 = 1152 -> 9
        ("C3", 1152, 256, 9 * 16),     # 2048 columns -> 16
        ("C4", 2304, 256, 18 * 16),    # 3*3*256 = 2304 -> 18
        ("C5", 2304, 512, 18 * 32),    # 4096 columns -> 32
        ("C6", 4608, 512, 36 * 32),    # 3*3*512 = 4608 -> 36
        ("FC7", 8192, 1024, 64 * 64),  # 8192 rows -> 64; 8192 columns -> 64
        ("FC8", 1024, 10, 8 * 1),      # 80 columns -> 1
    ]
    for m, (name, n, c_out, arrays) in zip(t.matrices, hand):
        assert (m.layer, m.fan_in, m.fan_out, m.arrays) == (name, n, c_out, arrays)
    assert t.arrays == 8 + 72 + 144 + 288 + 576 + 1152 + 4096 + 8 == 6344
    assert wl.weights == 12_973_440 and t.cells_used == 12_973_440 * 8
    # im2col: output pixels per sample
    assert [m.positions for m in t.matrices] == [1024, 1024, 256, 256, 64, 64, 1, 1]
    assert wl.macs == 615_917_568  # ~616 M MACs per image
    c2 = t.matrices[1]
    assert c2.conversions_per_mvm == 8 * 9 * 1024  # 8 bits * 9 row tiles * 1024 columns
    assert c2.conversions_per_sample == 8 * 9 * 1024 * 1024


def test_differential_partial_parallel_and_dac(rram):
    diff = rram.with_conventions(signed_weights="differential")
    t = tile_matrix("L1", 784, 1024, diff, 8, 8)
    assert t.columns == 16384 and t.arrays == 7 * 128 and t.reference_columns == 0
    sram = load_preset("sram-cim-22nm")  # 64 rows read at once
    t = tile_matrix("L1", 784, 1024, sram, 8, 8)
    assert t.read_phases == 2
    assert t.conversions_per_mvm == 8 * 7 * 8192 * 2 and t.adc_slots_per_mvm == 8 * 8 * 2
    t = tile_matrix("C1", 27, 128, sram, 8, 8)
    assert t.read_phases == 1  # 27 rows fit in one 64-row phase
    # transposed read: 8 error bits * 8 slices * 784 rows * 64 column tiles * ceil(16/64): one
    # slice's 16 columns of an array are driven per read, one phase (was ceil(128/64) = 2)
    t = tile_matrix("L1", 784, 1024, sram, 8, 8, 8)
    assert t.conversions_t_per_mvm == 8 * 8 * 784 * 64 * 1 and t.adc_slots_t_per_mvm == 8 * 8 * 8 * 1
    d = load_preset("rram-22nm").to_dict()
    d["periphery"].update(input_encoding="dac", dac_bits=7)
    from sim import hardware_from_dict

    t = tile_matrix("L1", 784, 1024, hardware_from_dict(d), 8, 8)
    assert t.input_cycles == 1 and t.conversions_per_mvm == 7 * 8192
    assert math.ceil(8 / 3) == tile_matrix("x", 10, 10, hardware_from_dict({**d, "crossbar": {**d["crossbar"], "cell_bits": 3}}), 8, 8).slices


def test_class_vectors_on_arrays_and_digital_devices(rram):
    hw = rram.with_conventions(class_vector_storage="crossbar")
    t = tile_workload(Workload.dense((784, 1024, 10)), hw, 8, 8, class_vector_bits=8)
    cv = [m for m in t.matrices if m.matrix == "class_vectors"]
    # V_1: 10 x 1024 -> 8 row tiles x ceil(80/128) = 8 arrays; V_2: 10 x 10 -> 1 array
    assert [(m.fan_in, m.fan_out, m.arrays) for m in cv] == [(1024, 10, 8), (10, 10, 1)]
    assert tile_workload(Workload.dense((784, 10)), load_preset("mcu-256kb"), 8, 8).arrays == 0
    with pytest.raises(ConfigError, match="crossbar"):
        tile_matrix("L1", 4, 4, load_preset("mcu-256kb"), 8, 8)
    with pytest.raises(ConfigError, match="weight_bits"):
        tile_matrix("L1", 4, 4, rram, 0, 8)
