"""Report and sweep configs: validation names the field; TOML and CLI give the same settings."""

import argparse

import pytest

from reports.cli.cmd_report import config_from_args, register
from reports.config import ReportConfig, parse_bits, parse_dims
from reports.sweep import SweepConfig, expand_points, plan_groups, point_id
from spela_hw.errors import ConfigError


def _parse(argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["report", *argv])


@pytest.mark.parametrize("changes, field", [
    ({"bits": "fp32,3x"}, "bits"),
    ({"bits": [8, 1]}, "bits"),
    ({"bits": "8,8"}, "bits"),
    ({"dims": "784"}, "dims"),
    ({"dims": "784,0,10"}, "dims[1]"),
    ({"rules": "spela,hebb"}, "rules"),
    ({"epochs": 0}, "epochs"),
    ({"seeds": "0,-1"}, "seeds"),
    ({"exit_thresholds": "0.2,1.5"}, "exit_thresholds"),
    ({"few_shot_test_fractions": "1.0"}, "few_shot_test_fractions"),
    ({"spiking": "maybe"}, "spiking"),
    ({"transfer": "yes"}, "transfer"),
    ({"class_vectors": "rotated"}, "class_vectors"),
    ({"budget": "lots"}, "budget"),
    ({"workers": -1}, "workers"),
])
def test_bad_report_settings_name_the_field(changes, field):
    with pytest.raises(ConfigError) as e:
        ReportConfig(**changes)
    assert e.value.field == field


def test_unknown_key_in_a_report_toml_is_named(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('epochs = 2\nepoch = 3\n')
    with pytest.raises(ConfigError) as e:
        ReportConfig.from_toml(p)
    assert e.value.field == "epoch"
    p.write_text('[report]\nbogus = 1\n')
    with pytest.raises(ConfigError) as e:
        ReportConfig.from_toml(p)
    assert e.value.field == "report.bogus"
    p.write_text('epochs = [\n')
    with pytest.raises(ConfigError) as e:
        ReportConfig.from_toml(p)
    assert "not valid TOML" in str(e.value)


def test_toml_round_trip_and_cli_overrides(tmp_path):
    cfg = ReportConfig(dims=(784, 64, 34), bits=("fp32", 6), seeds=(1, 2), budget=None, epochs=4)
    p = tmp_path / "c.toml"
    p.write_text(cfg.to_toml())
    assert ReportConfig.from_toml(p) == cfg
    args = _parse(["--config", str(p), "--epochs", "2", "--bits", "fp32,8,4", "--out", str(tmp_path / "o")])
    got = config_from_args(args)
    assert got.epochs == 2 and got.bits == ("fp32", 8, 4)
    assert got.dims == (784, 64, 34) and got.seeds == (1, 2) and got.budget is None
    with pytest.raises(ConfigError) as e:
        config_from_args(_parse(["--dims", "784,x,10"]))
    assert e.value.field == "dims"


def test_value_parsers():
    assert parse_bits("FP32, int8 ,4") == ("fp32", 8, 4)
    assert parse_bits([32, 6]) == ("fp32", 6)
    assert parse_dims("784, 128,10") == (784, 128, 10)


def _sweep(grid=None, sweep=None):
    return SweepConfig.from_dict({"sweep": {"train_samples": 100, **(sweep or {})}, "grid": grid or {}})


@pytest.mark.parametrize("doc, field", [
    ({"grid": {"bitz": [8]}}, "grid.bitz"),
    ({"grid": {"dataset": ["mnist"]}}, "grid.dataset"),
    ({"sweep": {"foo": 1}}, "sweep.foo"),
    ({"grid": {"bits": [8, 99]}}, "grid.bits"),
    ({"grid": {"dims": [[784, 10], [784, "a"]]}}, "grid.dims[1]"),
    ({"grid": {"rules": ["spela", "nope"]}}, "grid.rules"),
    ({"grid": {"presets": ["no-such-chip"]}}, "grid.presets"),
    ({"grid": {"seeds": [0, -2]}}, "grid.seeds"),
    ({"sweep": {"epochs": [1, 2]}}, "sweep.epochs"),
    ({"sweep": {"budget": "12 parsecs"}}, "sweep.budget"),
    ({"sweep": {"epochs": 1}, "grid": {"epochs": [1, 2]}}, "grid.epochs"),
    ({"grids": {}}, "grids"),
])
def test_bad_sweep_configs_name_the_field(doc, field):
    with pytest.raises(ConfigError) as e:
        SweepConfig.from_dict(doc)
    assert e.value.field == field


def test_grid_expansion_and_groups():
    cfg = _sweep({"dims": [[784, 16, 10], [784, 32, 10]], "bits": ["fp32", 8], "presets": ["sram-cim-22nm", "mcu-256kb"],
                  "rules": ["spela"], "seeds": [0, 1]})
    pts = expand_points(cfg)
    assert len(pts) == cfg.n_points == 16
    assert len({p["point_id"] for p in pts}) == 16
    groups = plan_groups(pts)
    assert len(groups) == 8 and all(len(g["points"]) == 2 for g in groups)
    # Identity depends on content only: the same point from another grid has the same id.
    other = expand_points(_sweep({"dims": [[784, 32, 10]], "bits": [8], "presets": ["mcu-256kb"], "rules": ["spela"],
                                  "seeds": [1]}))
    assert other[0]["point_id"] in {p["point_id"] for p in pts}
    p = dict(pts[0])
    del p["point_id"]
    assert point_id(p) == pts[0]["point_id"]
    assert point_id({**p, "seed": 7}) != pts[0]["point_id"]


def test_shipped_examples_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "reports" / "examples"
    cfg = SweepConfig.from_toml(root / "sweep.toml")
    assert cfg.n_points == 48 and len(plan_groups(expand_points(cfg))) == 24
    rep = ReportConfig.from_toml(root / "report.toml")
    assert rep.seeds == (0, 1, 2) and rep.presets == ("sram-cim-22nm", "mcu-256kb")


def test_spela_runs_get_the_reports_class_vectors():
    from reports.experiments import make_classifier
    from reports.report import plan_tasks

    config = config_from_args(_parse(["--class-vectors", "onehot", "--spiking", "off"]))
    tasks = [t for t in plan_tasks(config, n_classes=10) if t["kind"] in ("train", "few_shot")]
    assert {t.get("class_vectors") for t in tasks if t["rule"] == "spela"} == {"onehot"}
    assert all("class_vectors" not in t for t in tasks if t["rule"] == "backprop")
    assert ReportConfig().class_vectors == "aligned"
    clf = make_classifier("spela", "fp32", (784, 256, 10), 0, 1, class_vectors="onehot")
    assert clf.rule.class_vectors == "onehot"
