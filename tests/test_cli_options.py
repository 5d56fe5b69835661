"""Issue 13: every option of `spela-hw train/evaluate/size/spike` is used or refused, never ignored.

Also: a diverging run stops with a named error and keeps the last good checkpoint; a bad --out
fails before training; model files are 0644; a closed stderr pipe does not stop training.
"""

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from reports.cli import main
from spela_hw import load_dataset
from spela_hw.errors import ConfigError, DataError, DivergenceError
from spela_hw.estimator import Classifier
from spela_hw.io import load_model, save_model
from spela_hw.specs import Backprop, Sgd

SMALL = ["--dims", "784,16,10", "--limit-train", "100", "--epochs", "1"]


def train(capsys, *args):
    """Run `spela-hw train` in-process: (exit code, stdout, stderr)."""
    rc = main(["train", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A 1-epoch checkpoint: 784-16-10 fp32, seed 3, 100 bundled samples, lr 0.05, batch 1."""
    path = tmp_path_factory.mktemp("ckpt") / "base.npz"
    assert main(["train", *SMALL, "--seed", "3", "--out", str(path)]) == 0
    return path


def copy_of(checkpoint, tmp_path):
    dst = tmp_path / "m.npz"
    dst.write_bytes(checkpoint.read_bytes())
    return dst


# -- --out without .npz ---------------------------------------------------------------------------

def test_out_without_npz_names_one_file_everywhere(tmp_path, capsys):
    stem = tmp_path / "mymodel"
    rc, out, err = train(capsys, *SMALL, "--out", str(stem), "--json")
    assert rc == 0, err
    assert json.loads(out)["model"] == f"{stem}.npz" and f"saved {stem}.npz" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mymodel.npz"]
    assert main(["evaluate", str(stem)]) == 0 and main(["evaluate", f"{stem}.npz"]) == 0
    capsys.readouterr()
    rc, out, err = train(capsys, "--out", str(stem), "--resume", "--epochs", "2", "--json")
    assert rc == 0, err
    assert f"resuming {stem}.npz at epoch 1/2" in err and json.loads(out)["epochs"] == 2


def test_resume_without_a_checkpoint_is_an_error(tmp_path, capsys):
    rc, _, err = train(capsys, *SMALL, "--out", str(tmp_path / "none"), "--resume")
    assert rc == 2 and "resume: no checkpoint at" in err and "none.npz" in err
    assert not list(tmp_path.iterdir())


# -- --resume and the options the checkpoint fixes ----------------------------------------------

@pytest.mark.parametrize("option, mine, theirs", [
    (["--dims", "784,32,10"], "784,32,10", "784,16,10"),
    (["--rule", "backprop"], "backprop", "spela"),
    (["--weight-bits", "8"], "8", "float32"),
    (["--weight-range", "0.5"], "0.5", "float32"),
    (["--sr-bits", "8"], "8", "float32"),
    (["--lr", "0.2"], "0.2", "0.05"),
    (["--lr-step", "2:0.5"], "2:0.5", "none"),
    (["--batch-size", "4"], "4", "1"),
    (["--seed", "4"], "4", "3"),
    (["--limit-train", "50"], "50", "100"),
    (["--backend", "reference"], "reference", "numba"),
    (["--preset", "official-code"], "official-code", "another recipe"),
])
def test_resume_refuses_an_option_that_contradicts_the_checkpoint(option, mine, theirs, checkpoint, tmp_path,
                                                                   capsys):
    path = copy_of(checkpoint, tmp_path)
    before = path.read_bytes()
    rc, _, err = train(capsys, "--out", str(path), "--resume", "--epochs", "2", *option)
    assert rc == 2, err
    assert f"error: {option[0][2:]}: {option[0]} {mine} but the checkpoint has {theirs}" in err
    assert path.read_bytes() == before


def test_resume_refuses_another_dataset(checkpoint, tmp_path, capsys):
    root = os.environ.get("SPELA_HW_DATA")
    try:
        load_dataset("mnist", data_dir=root)
    except (DataError, TypeError):
        pytest.skip("full MNIST not available")
    path = copy_of(checkpoint, tmp_path)
    rc, _, err = train(capsys, "--out", str(path), "--resume", "--epochs", "2", "--dataset", "mnist")
    assert rc == 2 and "--dataset mnist but the checkpoint has mnist-bundled" in err


def test_resume_takes_the_checkpoint_values_and_reports_them(checkpoint, tmp_path, capsys):
    path = copy_of(checkpoint, tmp_path)
    rc, out, err = train(capsys, "--out", str(path), "--resume", "--epochs", "2", "--json", "--seed", "3")
    assert rc == 0, err
    res = json.loads(out)
    assert res["config"]["seed"] == 3 and res["config"]["limit_train"] == 100
    assert res["samples"] == 200 and res["dims"] == [784, 16, 10] and res["dataset"] == "mnist-bundled"
    rc, out, err = train(capsys, "--out", str(path), "--resume", "--epochs", "1")
    assert rc == 2 and "--epochs 1 but the checkpoint" in err and "already has 2 epochs" in err


# -- --data-dir -----------------------------------------------------------------------------------

def test_an_explicit_data_dir_is_used_or_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SPELA_HW_DATA", str(tmp_path / "elsewhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="not found in data_dir"):
        load_dataset("mnist-bundled", data_dir=empty)  # not replaced by the bundled copy
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    rc, _, err = train(capsys, *SMALL, "--data-dir", str(incomplete), "--out", str(tmp_path / "m"))
    assert rc == 2 and "not found in data_dir" in err and str(incomplete) in err


# -- numbers out of range -------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["train", "--limit-train", "0"], "limit-train: must be a positive number of samples, got 0"),
    (["train", "--limit-train", "-5"], "limit-train: must be a positive number of samples, got -5"),
    (["train", "--jobs", "0"], "jobs: must be -1 (all cores) or a positive integer, got 0"),
    (["train", "--jobs", "-2"], "jobs: must be -1 (all cores) or a positive integer, got -2"),
    (["train", "--lr-step", "0:0.5"], "argument --lr-step: lr-step needs a positive number of epochs"),
    (["train", "--lr-step", "10:1.5"], "argument --lr-step: lr-step needs a positive number of epochs"),
    (["train", "--lr-step", "ten"], "argument --lr-step: lr-step must be EPOCHS:FACTOR like 10:0.1"),
    (["train", "--rule", "sigprop", "--preset", "sigprop-adam", "--lr-step", "2:0.5"],
     "lr-step: steps an SGD learning rate; --rule sigprop here trains with Adam"),
    (["train", "--protocol", "few-shot", "--lr-step", "2:0.5"], "lr-step: the default pair uses each rule"),
    (["train", "--weight-bits", "0"], "weight_bits: must be an integer from 2 to 16, got 0"),
    (["train", "--weight-range", "0.5"], "weight-range: sets the range of fixed-point weights"),
    (["train", "--seed", "-1"], "seed: must be a non-negative integer, got -1"),
    (["train", "--batch-size", "1000000000"], "batch_size: 1000000000 is larger than the 100 training samples"),
    (["train", "--trials", "3"], "trials: applies to --protocol few-shot or one-epoch only"),
    (["train", "--test-fraction", "0.5"], "test-fraction: applies to --protocol few-shot"),
    (["train", "--protocol", "few-shot", "--trials", "-1"], "trials: must be a positive integer, got -1"),
    (["train", "--protocol", "few-shot", "--test-fraction", "1.5"], "test_fraction: must lie in (0, 1)"),
    (["train", "--protocol", "few-shot", "--lr", "0.1"], "lr: the default pair uses each rule's own recipe"),
    (["train", "--protocol", "few-shot", "--batch-size", "4"], "batch-size: the default pair uses each rule"),
    (["train", "--protocol", "one-epoch", "--epochs", "3"], "epochs: --protocol one-epoch trains exactly 1"),
    (["train", "--protocol", "few-shot", "--out", "x.npz"], "out: does not apply to --protocol few-shot"),
    (["train", "--protocol", "few-shot", "--resume"], "resume: does not apply to --protocol few-shot"),
    (["train", "--protocol", "one-epoch", "--limit-train", "10"], "limit-train: does not apply"),
    (["size", "--exit-layer", "0"], "exit-layer: must be a layer from 1 to 2 (1-based), got 0"),
    (["size", "--classes", "0"], "classes: must be an integer >= 2, got 0"),
    (["size", "--samples-per-day", "-1"], "samples-per-day: must be a positive finite number"),
    (["spike", "--dataset", "mnist-bundled", "--weight-bits", "0"], "weight_bits: must be an integer from 2"),
    (["spike", "--dataset", "mnist-bundled", "--percentile", "200"], "percentile: must lie in (0, 100]"),
    (["spike", "--dataset", "mnist-bundled", "--chunk-samples", "0"], "chunk-samples: must be a positive"),
    (["spike", "--from-model", "m.npz", "--compare-rate"], "compare-rate: applies to training in spikes"),
    (["spike", "--from-model", "m.npz", "--tau-y-ms", "40"], "tau-y-ms: applies to training in spikes"),
])
def test_numbers_out_of_range_are_refused_by_name(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if args[0] == "train" and "--protocol" not in args:
        args = [*args, *[a for a in SMALL if a not in args]] if "--limit-train" not in args else \
            [*args, "--dims", "784,16,10", "--epochs", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


def test_the_estimator_refuses_bad_seeds_and_batches():
    x, y = np.zeros((20, 4), np.float32), np.arange(20) % 2
    with pytest.raises(ConfigError, match="random_state"):
        Classifier((3, 2), random_state=-1).fit(x, y)
    with pytest.raises(ConfigError, match="class_vector_seed"):
        Classifier((3, 2), class_vector_seed=1.5).fit(x, y)
    with pytest.raises(ConfigError, match="batch_size: 21 is larger than the 20 training samples"):
        Classifier((3, 2), batch_size=21).fit(x, y)
    Classifier((3, 2), batch_size=10**9).partial_fit(x, y)  # one pass: the batch is the whole pass


def test_lr_step_schedules_the_sgd_learning_rate(tmp_path, capsys):
    rc, out, err = train(capsys, "--dims", "784,16,10", "--limit-train", "100", "--epochs", "3", "--lr", "0.2",
                         "--lr-step", "2:0.25", "--out", str(tmp_path / "m"), "--json")
    assert rc == 0, err
    assert [r["lr"] for r in json.loads(out)["history"]] == [0.2, 0.2, 0.05]
    rc, _, err = train(capsys, "--out", str(tmp_path / "m"), "--resume", "--epochs", "4", "--lr-step", "1:0.5")
    assert rc == 2 and "--lr-step 1:0.5 but the checkpoint has 2:0.25" in err
    rc, out, err = train(capsys, "--out", str(tmp_path / "m"), "--resume", "--epochs", "4", "--lr-step", "2:0.25",
                         "--json")
    assert rc == 0, err
    assert [r["lr"] for r in json.loads(out)["history"]] == [0.2, 0.2, 0.05, 0.05]


# -- protocols honour the network options ---------------------------------------------------------

def test_protocols_pass_the_network_options_to_both_rules(capsys):
    base = ["--protocol", "few-shot", "--test-fraction", "0.99", "--trials", "1", "--epochs", "1", "--json"]
    rc, out, err = train(capsys, *base, "--dims", "784,16,10", "--weight-bits", "8")
    assert rc == 0, err
    records = json.loads(out)["records"]
    assert {r["rule"] for r in records} == {"spela", "backprop"}
    assert all(r["dims"] == [784, 16, 10] and r["precision"] == "w8a16" for r in records)
    rc, out, err = train(capsys, *base, "--rule", "backprop", "--dims", "784,16,10", "--lr", "0.1")
    assert rc == 0, err
    records = json.loads(out)["records"]
    assert [(r["rule"], r["dims"], r["precision"]) for r in records] == [("backprop", [784, 16, 10], "fp32")]


# -- divergence -----------------------------------------------------------------------------------

def bundled(n):
    data = load_dataset("mnist-bundled")
    return data.features("train")[:n], data.y_train[:n]


def test_a_diverging_fit_raises_divergence_error():
    x, y = bundled(500)
    clf = Classifier((64, 10), rule=Backprop(optimizer=Sgd(1000.0)), epochs=1, random_state=0)
    with pytest.raises(DivergenceError, match="diverged by sample 500 of epoch 1: layer"):
        clf.fit(x, y)


def test_a_diverging_run_exits_2_and_keeps_the_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "bp.npz"
    common = ["--rule", "backprop", "--dims", "784,64,10", "--limit-train", "500", "--out", str(out)]
    assert train(capsys, *common, "--epochs", "1")[0] == 0
    good = out.read_bytes()
    rc, _, err = train(capsys, *common, "--epochs", "2", "--lr", "1000")
    assert rc == 2 and "error: training diverged" in err
    assert out.read_bytes() == good
    clf = load_model(out)  # still a good model
    for w in clf.state_.weights:
        w[...] = np.nan
    with pytest.raises(DivergenceError, match="not saved"):
        save_model(clf, out)
    assert out.read_bytes() == good


# -- --out checked before training; file permissions ----------------------------------------------

@pytest.mark.parametrize("where, message", [("dir", "is a directory"), ("file/m.npz", "cannot write there")])
def test_a_bad_out_fails_before_training(where, message, tmp_path, capsys):
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "file").write_text("")
    rc, _, err = train(capsys, *SMALL, "--out", str(tmp_path / where))
    assert rc == 2 and message in err and "epoch" not in err


def test_model_files_are_0644_like_report_files(checkpoint):
    assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o644


# -- a closed stderr pipe -------------------------------------------------------------------------

def test_a_closed_stderr_pipe_does_not_stop_training(tmp_path):
    """`spela-hw train ... 2>&1 | head -1`: the reader goes after one line; training goes on."""
    out = tmp_path / "m.npz"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from reports.cli import main; sys.exit(main())", "train",
         "--dims", "784,16,10", "--limit-train", "300", "--epochs", "3", "--out", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout.readline().startswith(b"training spela")
    proc.stdout.close()  # as `head -1` does
    assert proc.wait(timeout=300) == 141  # 128 + SIGPIPE once the JSON meets the closed pipe
    assert load_model(out).epochs_done_ == 3
