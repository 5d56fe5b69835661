"""``spela-hw train --net`` and ``spela-hw size --net / --model``: one conv description for both."""

import json

import numpy as np
import pytest

from reports.cli import main
from sim import design_point
from spela_hw import ConvNetSpec, ConvSpelaClassifier
from spela_hw.io import load_model

NET = "c4k5p4-d10"
SIZE = ["size", "--preset", "sram-cim-22nm", "--batch-size", "8", "--json"]


def size_json(capsys, *argv):
    assert main(SIZE + list(argv)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_size_net_takes_the_shape_from_the_dataset_or_the_option(capsys):
    by_shape = size_json(capsys, "--net", "c32k5p2-c64k5p2-d10", "--input-shape", "1,28,28")
    by_data = size_json(capsys, "--net", "c32k5p2-c64k5p2-d10", "--dataset", "fashion-mnist")
    assert by_shape == by_data
    sp, bp = by_shape["design_points"]
    assert sp["network"] == "1x28x28:c32k5p2-c64k5p2-d10"
    proj = [r for r in sp["ledger"] if r["tensor_class"] == "projections" and r["phase"] == "train"]
    assert proj[0]["values"] == 32 * 12 * 12 * 100 + 64 * 4 * 4 * 100
    assert not [r for r in bp["ledger"] if r["tensor_class"] == "projections"]
    fixed = size_json(capsys, "--net", "c32k5p2-c64k5p2-d10", "--input-shape", "1,28,28",
                      "--conv-target", "fixed_projection", "--norm", "none", "--rule", "spela")
    rows = {r["tensor_class"]: r for r in fixed["design_points"][0]["ledger"] if r["phase"] == "train"}
    assert rows["projections"]["level"] == "register" and rows["projections"]["values"] == 1
    assert "norm_params" not in rows


def _tiny_model(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((48, 2 * 8 * 8), dtype=np.float32), np.arange(48) % 3
    clf = ConvSpelaClassifier("c3k3p2-d5", input_shape=(2, 8, 8), projection_dim=4, batch_size=16,
                              random_state=0).fit(x, y)
    return clf, clf.save(tmp_path / "tiny")


def test_size_model_sizes_the_description_the_model_file_stores(capsys, tmp_path):
    clf, path = _tiny_model(tmp_path)
    by_model = size_json(capsys, "--model", str(path), "--optimizer", "sgd")
    by_net = size_json(capsys, "--net", "c3k3p2-d5", "--input-shape", "2,8,8", "--projection-dim", "4",
                       "--classes", "3")
    assert by_model == by_net
    # the trained model prices through design_point from its own description (the conv estimator
    # keeps no run counts yet: closed-form counts of exactly that network)
    dp = design_point(load_model(path).spec_, "sram-cim-22nm", "spela", weight_bits=8, batch_size=8)
    assert dp.summary()["train_energy_pj"] == by_model["design_points"][0]["summary"][0]["train_energy_pj"]
    assert dp.ledger_train.bytes_of("projections") == 3 * 3 * 3 * 4
    # without --optimizer: the model's (its conv blocks step with Adam)
    doc = size_json(capsys, "--model", str(path), "--rule", "spela")
    assert doc["design_points"][0]["conventions"]["optimizer"] == "adam"


@pytest.mark.slow
def test_train_net_saves_resumes_and_sizes(capsys, tmp_path):
    out = tmp_path / "cnn"
    base = ["train", "--net", NET, "--limit-train", "64", "--batch-size", "32", "--out", str(out)]
    assert main(base + ["--epochs", "1"]) == 0
    clf = load_model(out.with_suffix(".npz"))
    assert clf.spec_ == ConvNetSpec.parse(NET, (1, 28, 28)) and clf.epochs_done_ == 1
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--epochs", "2", "--limit-train", "64", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["epochs"] == 2 and len(doc["history"]) == 2 and doc["net"] == NET
    assert doc["network"] == ConvNetSpec.parse(NET, (1, 28, 28)).to_dict()
    assert len(doc["layer_accuracy"]) == 2
    assert main(["train", "--resume", "--out", str(out), "--norm", "none"]) == 2
    assert "--norm none but the checkpoint has batch" in capsys.readouterr().err
    assert size_json(capsys, "--model", str(out))["design_points"][0]["network"] == f"1x28x28:{NET}"


@pytest.mark.parametrize("argv,needle", [
    (["train", "--net", "c8k5p2-dX"], "error: net[1]: 'dx' is neither"),
    (["train", "--net", ""], "error: net: must be a non-empty spec string"),
    (["train", "--net", "c8k5p2-d10", "--dims", "784,10"], "error: dims: --dims with --net"),
    (["train", "--net", "c8k5p2-d10", "--rule", "sigprop"], "error: rule: --rule sigprop with --net"),
    (["train", "--net", "c8k5p2-d10", "--preset", "paper-v2"], "error: preset: --preset with --net"),
    (["train", "--net", "c8k5p2-d10", "--rule", "backprop", "--jobs", "2"], "error: jobs: --jobs 2 with --rule backprop"),
    (["train", "--net", "c8k5p2-d10", "--protocol", "few-shot"], "error: net: --protocol few-shot"),
    (["train", "--net", "c8k5p2-d10", "--input-shape", "1,28,27"], "error: input-shape: 1,28,27 holds 756"),
    (["train", "--net", "c8k29-d10"], "a 29x29 kernel does not fit its 28x28 input"),
    (["train", "--conv-target", "pooled"], "error: conv-target: describes a conv network: give --net too"),
    (["train", "--conv-epochs", "1"], "error: conv-epochs: freezes the conv blocks of a conv network"),
    (["train", "--net", "c8k5p2-d10", "--conv-epochs", "-1"], "error: conv-epochs: must be a non-negative"),
    (["train", "--net", "c8k5p2-d10", "--rule", "backprop", "--conv-epochs", "1"],
     "error: conv-epochs: --rule backprop trains every layer in every epoch"),
    (["train", "--protocol", "transfer", "--conv-epochs", "1"], "error: conv-epochs: --protocol transfer"),
    (["size", "--net", "c8k5p2-dX", "--input-shape", "1,28,28"], "error: net[1]:"),
    (["size", "--net", "c8k5p2-d10"], "error: input-shape: --net needs the input shape"),
    (["size", "--net", "c8k5p2-d10", "--input-shape", "1,28"], "error: input-shape: must be three"),
    (["size", "--net", "c8k5p2-d10", "--dataset", "imagenet"], "error: dataset: unknown dataset"),
    (["size", "--net", "c8k5p2-d10", "--dataset", "mnist", "--input-shape", "3,32,32"], "error: input-shape:"),
    (["size", "--net", "c8k5p2-d10", "--dims", "784,10"], "--dims: not allowed with argument --net"),
    (["size", "--projection-dim", "10"], "error: projection-dim: describes a conv network: give --net too"),
    (["size", "--dataset", "mnist"], "error: dataset: gives the input shape of a conv network"),
    (["size", "--model", "no-such-model.npz"], "no-such-model.npz: no such model file"),
])
def test_bad_conv_input_exits_2_naming_the_field(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


def test_train_net_conv_epochs_freezes_the_blocks_and_resume_keeps_it(capsys, tmp_path):
    out = tmp_path / "frozen"
    argv = ["train", "--net", NET, "--limit-train", "64", "--batch-size", "32", "--epochs", "2",
            "--conv-epochs", "1", "--out", str(out), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["conv_epochs"] == 1 and [r["lr"] for r in doc["history"]] == [0.01, 0.0]
    assert main(["train", "--resume", "--out", str(out), "--conv-epochs", "2", "--limit-train", "64"]) == 2
    assert "--conv-epochs 2 but the checkpoint has 1" in capsys.readouterr().err


def test_train_net_lr_step_schedules_the_dense_layers(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--net", NET, "--limit-train", "64", "--batch-size", "32", "--epochs", "3", "--lr", "5",
            "--lr-step", "2:0.1", "--out", str(tmp_path / "m"), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    history = json.loads(captured.out)["history"]
    assert [r["lr"] for r in history] == [0.01] * 3  # the conv blocks' Adam
    assert [r["dense_lr"] for r in history] == pytest.approx([5.0, 5.0, 0.5])
    assert "epoch 3/3 lr=0.01 dense lr=0.5 " in captured.err
    assert main(["train", "--resume", "--out", str(tmp_path / "m"), "--lr-step", "3:0.1", "--epochs", "4",
                 "--limit-train", "64"]) == 2
    assert "--lr-step 3:0.1 but the checkpoint has 2:0.1" in capsys.readouterr().err
    assert main(["train", "--net", NET, "--rule", "backprop", "--lr-step", "2:0.1", "--limit-train", "64"]) == 2
    assert "lr-step: steps an SGD learning rate; --rule backprop here trains with Adam" in capsys.readouterr().err
