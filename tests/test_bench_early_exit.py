"""`python -m bench.early_exit`: the per-layer early-exit table over seeds from train checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from bench.early_exit import main
from reports.cli import main as cli
from spela_hw.io import load_model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three seeds of a 3-layer network, 3, 2 and 2 epochs on 100 bundled samples."""
    root = tmp_path_factory.mktemp("deep")
    paths = []
    for seed, epochs in ((0, 3), (1, 2), (2, 2)):
        path = root / f"s{seed}.npz"
        assert cli(["train", "--dims", "784,16,16,10", "--limit-train", "100", "--epochs", str(epochs),
                    "--seed", str(seed), "--out", str(path)]) == 0
        paths.append(path)
    return paths


def test_the_table_gives_mean_and_std_over_the_runs_at_the_common_epochs(runs, tmp_path, capsys):
    png = tmp_path / "curve.png"
    assert main([*map(str, runs), "--epochs", "1,2,3", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "3 runs (s0.npz, s1.npz, s2.npz), every run at least 2 epochs" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [r.split(" | ")[0] for r in rows] == ["| 1", "| 2"]  # epoch 3 is not common to all runs
    acc = np.array([[100 * load_model(p).history_[1][f"layer{k}_accuracy"] for k in (1, 2, 3)] for p in runs])
    cells = rows[1].strip("| ").split(" | ")[1:]
    assert cells == [f"{m:.2f} ± {s:.2f}" for m, s in zip(acc.mean(axis=0), acc.std(axis=0, ddof=1))]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob("*.tmp.png"))


def test_exported_histories_give_the_checkpoints_table(runs, tmp_path, capsys):
    out_dir = tmp_path / "runs"
    assert main([*map(str, runs), "--export", str(out_dir)]) == 0
    exported = sorted(out_dir.glob("*.json"))
    assert [p.name for p in exported] == ["s0.json", "s1.json", "s2.json"] and not list(out_dir.glob("*.tmp"))
    capsys.readouterr()
    assert main([*map(str, runs), "--epochs", "1,2"]) == 0
    from_checkpoints = capsys.readouterr().out
    assert main([*map(str, exported), "--epochs", "1,2"]) == 0
    assert capsys.readouterr().out == from_checkpoints.replace(".npz", ".json")


def test_one_run_shows_its_values_without_a_spread(runs, capsys):
    assert main([str(runs[0]), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    acc = [100 * load_model(runs[0]).history_[0][f"layer{k}_accuracy"] for k in (1, 2, 3)]
    assert "1 run (s0.npz), every run at least 3 epochs; test accuracy in %\n" in out and "±" not in out
    assert "| 1 | " + " | ".join(f"{a:.2f}" for a in acc) + " |" in out


@pytest.mark.parametrize("args, message", [
    (["missing.npz"], "missing.npz: no such model file"),
    (["{run}", "--epochs", "1,x"], "--epochs must be comma-separated integers, got '1,x'"),
    (["missing.json"], "missing.json: no such history file"),
    (["bad.json"], "bad.json: not a history file from --export (field 'history'"),
])
def test_bad_input_is_refused_by_name(runs, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text('{"epochs": []}')
    with pytest.raises(SystemExit) as exc:
        main([a.format(run=runs[0]) for a in args])
    assert exc.value.code == 2 and message in capsys.readouterr().err
