"""`spela-hw train` and `spela-hw evaluate` end to end on the bundled data."""

import json
import subprocess
import sys

import pytest

from reports.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-c", "import sys; from reports.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, timeout=600)


def test_train_json_then_evaluate(tmp_path):
    out = tmp_path / "m.npz"
    r = run_cli("train", "--epochs", "2", "--limit-train", "600", "--dims", "784,64,10",
                "--weight-bits", "8", "--weight-range", "0.25,2", "--seed", "3", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)  # exactly one JSON object on stdout
    assert res["epochs"] == 2 and res["samples"] == 1200 and res["precision"] == "w8a16"
    assert len(res["layer_accuracy"]) == 2 and res["layer_accuracy"][0] > 0.5
    assert res["config"]["seed"] == 3 and res["config"]["precision"]["weight"]["bits"] == 8
    assert res["config"]["precision"]["weight"]["frac_bits"] == 9  # [-0.25, 0.25) in 8 bits
    assert res["config"]["precision"]["weight_exponents"] == [0, 3]  # the output layer holds [-2, 2)
    assert "epoch 2/2" in r.stderr and out.exists()
    e = run_cli("evaluate", str(out), "--json")
    assert e.returncode == 0, e.stderr
    ev = json.loads(e.stdout)
    assert ev["layer_accuracy"] == res["layer_accuracy"]
    assert ev["inference_counts_per_sample"]["forward_macs"] == 784 * 64 + 64 * 10


def test_a_sigprop_preset_trains_from_the_cli(tmp_path):
    r = run_cli("train", "--rule", "sigprop", "--preset", "sigprop-sgd", "--epochs", "1", "--limit-train", "640",
                "--dims", "784,64,10", "--out", str(tmp_path / "s.npz"), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["config"]["rule"]["rule"] == "sigprop" and res["layer_accuracy"][0] > 0.4  # chance 0.1


def test_resume_continues_to_the_same_model(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    common = ["train", "--limit-train", "300", "--dims", "784,32,10", "--seed", "1", "--json"]
    full = json.loads(run_cli(*common, "--epochs", "2", "--out", str(a)).stdout)
    assert run_cli(*common, "--epochs", "1", "--out", str(b)).returncode == 0
    resumed = json.loads(run_cli(*common, "--epochs", "2", "--out", str(b), "--resume").stdout)
    assert resumed["layer_accuracy"] == full["layer_accuracy"]
    assert resumed["epochs"] == 2


@pytest.mark.parametrize("args, message", [
    (["train", "--dims", "100,10"], "dims: input width 100"),
    (["train", "--dims", "784,x"], "dims"),
    (["train", "--weight-bits", "40"], "weight_bits"),
    (["train", "--weight-bits", "8", "--weight-range", "0"], "weight_range"),
    (["train", "--rule", "backprop", "--preset", "official-code"], "preset"),
    (["train", "--preset", "sigprop-sgd"], "use --rule sigprop"),
    (["train", "--dataset", "nope"], "nope"),
    (["evaluate", "/nonexistent/model.npz"], "no such model file"),
])
def test_bad_arguments_exit_2_with_named_error(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err
