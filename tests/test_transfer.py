"""On-device transfer learning: frozen conv extractor, SPELA and backprop heads, float32 and 8 bits."""

import json

import numpy as np
import pytest

from reports.cli import main
from spela_hw import ConfigError, load_dataset
from spela_hw.transfer import HEAD_WEIGHT_RANGES, default_heads, extract_features, train_extractor, transfer, transfer_split

NET = "c4k5p4"  # one small block: 4 x 6 x 6 = 144 features


@pytest.fixture(scope="module")
def data():
    return load_dataset("mnist-bundled")


def test_class_split_separates_the_classes(data):
    (xs, ys), (xt, yt), (xe, ye) = transfer_split(data)
    assert set(ys) == {0, 1, 2, 3, 4} and set(yt) == set(ye) == {5, 6, 7, 8, 9}
    assert len(ys) + len(yt) == len(data.y_train)
    (xs, ys), (xt, yt), (xe, ye) = transfer_split(data, "half")
    assert len(ys) == len(data.y_train) // 2 and len(ye) == len(data.y_test)
    other = load_dataset("mnist-bundled")  # stands in for another data set (e.g. Fashion-MNIST)
    (xs, ys), (xt, yt), (xe, ye) = transfer_split(data, "dataset", other)
    assert len(ys) == len(yt) == len(data.y_train) and len(ye) == len(other.y_test)


def test_transfer_records_and_the_heads_learn(data):
    recs = transfer(data, net=NET, head_epochs=2, limit_source=600, limit_target=600)
    assert [(r["head"], r["precision"]) for r in recs] == [
        ("spela", "fp32"), ("spela", "w8a16"), ("backprop", "fp32"), ("backprop", "w8a16")]
    for r in recs:
        assert r["protocol"] == "transfer" and r["split"] == "classes" and r["n_train"] == 600
        assert r["dims"][0] == 144 and r["extractor"] == "c4k5p4-d5"
        assert r["trainable_parameters"] == 144 * r["dims"][1] + r["dims"][1]
        assert r["accuracy"] > 0.5, r  # 5 target classes: chance is 0.2
        assert r["weight_range"] == (None if r["precision"] == "fp32" else HEAD_WEIGHT_RANGES[r["head"]])
    assert json.loads(json.dumps(recs))  # tidy: plain JSON values


def test_features_are_8_bit_codes_with_the_source_scale(data):
    x, y = data.features("train")[:300], data.y_train[:300]
    ex = train_extractor(x, y, NET)
    codes, scale = extract_features(ex, x)
    assert codes.dtype == np.uint8 and codes.max() == 255 and scale > 0
    other, same = extract_features(ex, x[:10] * 0.5, scale)
    assert same == scale and other.max() < 255


def test_8_bit_head_is_bit_exact_between_backends(data):
    (xs, ys), (xt, yt), _ = transfer_split(data)
    ex = train_extractor(xs[:300], ys[:300], NET)
    f, _ = extract_features(ex, xt[:40])
    models = {}
    for backend in ("numba", "reference"):
        for name, make in default_heads(1, backend=backend).items():
            models[name, backend] = make(3, 8, 5).fit(f, yt[:40])
    for name in ("spela", "backprop"):
        a, b = models[name, "numba"].state_, models[name, "reference"].state_
        for wa, wb in zip(a.weights, b.weights):
            np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("kwargs, field", [
    ({"split": "nope"}, "split"),
    ({"split": "dataset"}, "target_dataset"),
    ({"net": "d10"}, "net"),
    ({"net": "c4k5p4-x3"}, "net[1]"),
    ({"head_epochs": 0}, "head_epochs"),
    ({"trials": 0}, "trials"),
    ({"limit_source": 0}, "limit_source"),
])
def test_bad_options_are_refused(data, kwargs, field):
    with pytest.raises(ConfigError) as exc:
        transfer(data, **kwargs)
    assert exc.value.field == field


def test_cli_transfer_prints_records_with_memory(capsys):
    argv = ["train", "--protocol", "transfer", "--net", NET, "--limit-train", "400", "--epochs", "1",
            "--rule", "backprop", "--json"]
    assert main(argv) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "classes" and out["budget"] == "256KiB"
    assert [r["precision"] for r in out["records"]] == ["fp32", "w8a16"]
    fp32, w8 = out["records"]
    assert w8["memory_bytes"] < fp32["memory_bytes"] and w8["fits_budget"]
    assert w8["memory_by_class"]["weights"] == 144 * 5  # one byte per 8-bit weight
    assert w8["weight_range"] == HEAD_WEIGHT_RANGES["backprop"] and fp32["weight_range"] is None
    spela = main(argv[:-3] + ["--rule", "spela", "--json"])
    assert spela == 0
    s8 = json.loads(capsys.readouterr().out)["records"][1]
    assert s8["memory_by_class"]["class_vectors"] == 5 * 34  # the target's 5 classes, 8 bits each


@pytest.mark.parametrize("extra, option", [
    (["--out", "m.npz"], "out"),
    (["--dims", "144,10"], "dims"),
    (["--lr", "0.1"], "lr"),
    (["--conv-target", "pooled"], "conv-target"),
    (["--rule", "sigprop"], "rule"),
    (["--split", "dataset"], "target-dataset"),
    (["--budget", "lots"], "budget"),
    (["--test-fraction", "0.9"], "test-fraction"),
    (["--epochs", "0"], "epochs"),
    (["--extractor-epochs", "0"], "extractor-epochs"),
    (["--jobs", "1"], "jobs"),
    (["--weight-range", "0.5"], "weight-range"),
])
def test_cli_refuses_options_that_do_not_apply(capsys, extra, option):
    assert main(["train", "--protocol", "transfer", "--net", NET] + extra) == 2
    assert f"error: {option}" in capsys.readouterr().err


def test_cli_weight_options_set_the_fixed_head(capsys):
    argv = ["train", "--protocol", "transfer", "--net", NET, "--limit-train", "200", "--epochs", "1",
            "--rule", "backprop", "--json"]
    assert main(argv + ["--weight-bits", "6"]) == 0
    assert json.loads(capsys.readouterr().out)["records"][1]["precision"] == "w6a16"
    assert main(argv + ["--weight-bits", "8", "--weight-range", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["records"][1]["weight_range"] == 0.5


@pytest.mark.parametrize("extra", [["--split", "half"], ["--extractor-epochs", "2"], ["--budget", "1MiB"]])
def test_transfer_options_are_refused_by_other_protocols(capsys, extra):
    assert main(["train", "--epochs", "0"] + extra) == 2
    assert f"error: {extra[0].lstrip('-')}" in capsys.readouterr().err
