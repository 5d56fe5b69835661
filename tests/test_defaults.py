"""The defaults a new user meets: `train` with no options, backprop's read-outs, `spike`'s data."""

import json

import pytest

from reports.cli import main


def _train(capsys, *args):
    code = main(["train", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def test_default_train_reads_out_at_the_output_at_least_as_well_as_at_layer_1(tmp_path, capsys):
    """`spela-hw train` with no options: the bundled data, 784-1024-34, 3 epochs. Its output
    read-out (what `evaluate` calls the model's accuracy) must not fall below layer 1's: the old
    784-1024-10 default read out 77.6 % at the output against 90.0 % at layer 1 (seed 0)."""
    res, err = _train(capsys, "--out", str(tmp_path / "m.npz"))
    assert res["dataset"] == "mnist-bundled" and res["dims"] == [784, 1024, 34] and res["epochs"] == 3
    layer1, output = res["layer_accuracy"]
    assert output >= layer1 > 0.85, res["layer_accuracy"]
    assert res["accuracy"] == output and "L2=" in err


def test_a_checkpoint_of_the_old_default_shape_still_resumes(tmp_path, capsys):
    """The checkpoint fixes the shape: a 784-1024-10 run resumes as 784-1024-10."""
    out = str(tmp_path / "old.npz")
    _train(capsys, "--dims", "784,1024,10", "--epochs", "1", "--limit-train", "200", "--out", out)
    res, _ = _train(capsys, "--epochs", "2", "--limit-train", "200", "--out", out, "--resume")
    assert res["dims"] == [784, 1024, 10] and res["epochs"] == 2


def test_backprop_shows_no_hidden_layer_read_out(tmp_path, capsys):
    """A cosine read-out of a backprop hidden layer measures nothing: not in the progress, the
    JSON (null in its place) or `evaluate`."""
    out = str(tmp_path / "bp.npz")
    res, err = _train(capsys, "--rule", "backprop", "--dims", "784,32,10", "--epochs", "1",
                      "--limit-train", "300", "--out", out)
    assert res["layer_accuracy"][0] is None and res["accuracy"] == res["layer_accuracy"][1] > 0.3
    assert all("layer1_accuracy" not in r and "layer2_accuracy" in r for r in res["history"])
    assert "L1=" not in err and "L2=" in err
    assert main(["evaluate", out, "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["layer_accuracy"] == res["layer_accuracy"]
    assert main(["evaluate", out]) == 0
    text = capsys.readouterr().out
    assert "layer 1 read-out" not in text and "layer 2 read-out" in text


def test_spela_keeps_every_layer_read_out(tmp_path, capsys):
    res, err = _train(capsys, "--dims", "784,32,34", "--epochs", "1", "--limit-train", "300",
                      "--out", str(tmp_path / "s.npz"))
    assert None not in res["layer_accuracy"] and "L1=" in err
    assert all("layer1_accuracy" in r for r in res["history"])


def test_spike_defaults_to_the_bundled_data():
    from reports.cli import build_parser

    args = build_parser().parse_args(["spike"])
    assert args.dataset == "mnist-bundled"


@pytest.mark.parametrize("command", [["spike", "--train-samples", "1", "--test-samples", "1"], ["train"],
                                     ["evaluate", "missing-model.npz"]])
def test_a_missing_dataset_names_the_command_line_remedies(command, tmp_path, monkeypatch, capsys):
    """The error names options of the command line, not the Python API's ``download=True``."""
    monkeypatch.setenv("SPELA_HW_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if command[0] == "evaluate":
        _train(capsys, "--dims", "784,8,10", "--epochs", "0", "--out", str(tmp_path / "e.npz"))
        command = ["evaluate", str(tmp_path / "e.npz")]
    code = main([*command, "--dataset", "kmnist"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "dataset 'kmnist' not found" in err and "download=True" not in err
    assert "--data-dir" in err and "--dataset mnist-bundled" in err


@pytest.mark.slow
def test_the_default_spike_run_learns_the_bundled_data(capfd):
    """`spela-hw spike` with no options (784-100-10 learns all 8,000 bundled training images in
    spikes, 2,000 test images, ``inverse_time`` decay 3,000, 40 ms output trace): >= 80 % at both
    read-outs (measured 90.3-90.7 % over seeds 0-2), progress on stderr from the build on. 55-110 s with a cold C++
    build on 2 cores."""
    pytest.importorskip("brian2")
    from mappings.brian2.network import compiler_available

    if not compiler_available():
        pytest.skip("no C++ compiler: the runtime target would take many minutes")
    assert main(["spike", "--json"]) == 0
    out, err = capfd.readouterr()
    res = json.loads(out)
    assert res["dataset"] == "mnist-bundled" and res["train_samples"] == 8000 and res["test_samples"] == 2000
    assert min(res["layer_accuracy"]) >= 0.80, res["layer_accuracy"]
    assert "building the C++ simulation" in err and "simulating 10000 samples" in err


def test_protocol_records_hold_no_backprop_hidden_read_out():
    from spela_hw import load_dataset
    from spela_hw.estimator import BackpropClassifier
    from spela_hw.protocols import few_shot

    make = {"backprop": lambda seed: BackpropClassifier((16, 10), epochs=1, random_state=seed)}
    rec, = few_shot(load_dataset("mnist-bundled"), test_fractions=(0.99,), trials=1, competitors=make)
    assert "layer1_accuracy" not in rec and rec["layer2_accuracy"] == rec["accuracy"]
