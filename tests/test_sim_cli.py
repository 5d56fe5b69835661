"""``spela-hw size`` and ``spela-hw presets``."""

import json

import pytest

from reports.cli import main

SIZE = ["size", "--dims", "784,1024,10", "--preset", "rram-22nm", "--weight-bits", "8", "--rule", "spela,backprop",
        "--batch-size", "50", "--budget", "256KB"]


def test_size_prints_ledger_tiling_energy_and_conventions(capsys):
    assert main(SIZE) == 0
    out = capsys.readouterr().out
    for needle in ("Memory ledger", "Crossbar tiling (456 arrays", "Energy per training sample",
                   "Energy per inference", "conventions: adc_energy=p_over_fs", "sram_law=size_law",
                   "signed_weights=offset", "794.0 KiB @ crossbar", "B * sum_l a_l = 50 * 1808",
                   "Budget sram=256.0 KiB", "spela training: fits", "placeholder numbers used",
                   "lifetime (days)"):
        assert needle in out, needle
    lines = out.splitlines()
    l1 = [x for x in lines if x.startswith("L1 ") and "weights" in x][0]
    assert "448" in l1 and "458752" in l1


def test_size_json_is_tidy(capsys):
    assert main(SIZE + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    pts = doc["design_points"]
    assert [p["algorithm"] for p in pts] == ["spela", "backprop"]
    sp = pts[0]
    # the budget is SRAM: the 794 KiB of weights in crossbar cells do not count against it
    assert sp["conventions"]["adc_energy"] == "p_over_fs" and sp["fit_train"]["fits"] is True
    assert sp["summary"][0]["arrays"] == 456
    assert {r["tensor_class"] for r in sp["ledger"]} >= {"weights", "class_vectors", "activations_in_flight"}
    assert all("energy_pj" in r and "kind" in r for r in sp["energy"])


def test_size_on_chip_total_budget_counts_the_crossbar_cells(capsys):
    assert main(SIZE[:-1] + ["total=256KB", "--rule", "spela"]) == 0
    out = capsys.readouterr().out
    assert "spela training: does NOT fit" in out and "on-chip total" in out and "weights 794.0 KiB" in out


def test_size_vgg8_mcu_overrides_and_presets(capsys, tmp_path):
    assert main(["size", "--network", "vgg8", "--preset", "sram-cim-22nm", "--rule", "spela", "--exit-layer", "3",
                 "--set", "conventions.adc_energy=mnsim_cycles"]) == 0
    out = capsys.readouterr().out
    assert "adc_energy=mnsim_cycles" in out and "exit at layer 3" in out and "6344 arrays" in out
    assert main(["size", "--preset", "mcu-256kb", "--dims", "784,128,10", "--rule", "spela,drtp",
                 "--budget", "sram=256KB,nvm=1MB"]) == 0
    out = capsys.readouterr().out
    assert "Crossbar tiling: none (digital device)" in out and "n/a" in out
    f = tmp_path / "hw.toml"
    f.write_text('base = "rram-22nm"\nname = "mine"\nsources = ["notes"]\n[periphery]\nadc_bits = 6\n')
    assert main(["size", "--hardware", str(f), "--rule", "spela"]) == 0
    assert "on mine" in capsys.readouterr().out
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "rram-22nm" in out and "sram-cim-22nm" in out and "mcu-256kb" in out and "source: J. Lin" in out
    assert main(["presets", "mcu-256kb", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["presets"][0]["config"]["buffers"][0]["size"] == "262144 B"


@pytest.mark.parametrize("argv,needle", [
    (["size", "--preset", "tpu"], "unknown preset"),
    (["size", "--rule", "hebbian"], "rule"),
    (["size", "--budget", "256"], "needs a unit"),
    (["size", "--budget", "256 kb"], "unknown unit 'kb'"),
    (["size", "--budget", "256 KIB"], "kB = 1000 B (SI)"),
    (["size", "--budget", "sram=1MB,sram=2MB"], "budget.sram"),
    (["size", "--set", "periphery.adc_bitz=4"], "periphery.adc_bitz"),
    (["size", "--set", "technology.node=22"], "technology.node"),
    (["size", "--weight-bits", "0"], "weight_bits"),
    (["size", "--dims", "784,x"], "--dims"),
])
def test_bad_arguments_exit_2_with_the_field(capsys, argv, needle):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
