"""Estimator behaviour: reproducibility, counts, save/load, resume, bad input, real MNIST."""

import json

import numpy as np
import pytest

from spela_hw import (BackpropClassifier, ConfigError, DataError, ModelFileError, PrecisionSpec, Sgd, Spela,
                      SpelaClassifier, SpelaError, make_noisy_xor)
from spela_hw.io import load_model


def toy(n=40, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d)).astype(np.float32)
    y = np.arange(n) % classes
    return X, y


@pytest.mark.parametrize("precision", [None, PrecisionSpec.fixed(8)])
def test_same_seed_gives_identical_weights(precision):
    X, y = toy()
    a = SpelaClassifier((5, 4), precision=precision, epochs=2, random_state=3).fit(X, y)
    b = SpelaClassifier((5, 4), precision=precision, epochs=2, random_state=3).fit(X, y)
    c = SpelaClassifier((5, 4), precision=precision, epochs=2, random_state=4).fit(X, y)
    for wa, wb, wc in zip(a.state_.weights, b.state_.weights, c.state_.weights):
        np.testing.assert_array_equal(wa, wb)
        assert not np.array_equal(wa, wc)


def test_hand_counts_tiny_network():
    """784-style bookkeeping on 4-3-2, batch 1, 2 samples, float32, log(2 - cos) loss."""
    X = np.array([[1, 0, 0.5, 0], [0.25, 0.25, 0, 1]], np.float32)
    y = np.array([0, 1])
    clf = SpelaClassifier((3, 2), epochs=1, shuffle=False, random_state=0,
                          rule=Spela(optimizer=Sgd(0.1))).fit(X, y)
    c = clf.train_counts_
    assert c.samples == 2 and c.update_steps == 2
    d = c.data
    # layer 0: n=4, m=3; layer 1: n=3, m=2
    assert d["forward_macs"].tolist() == [2 * 12, 2 * 6]
    assert d["forward_macs_nonzero"][0] == 3 * (2 + 3)  # 2 and 3 non-zero pixels
    assert d["loss_macs"].tolist() == [2 * 2 * 3, 2 * 2 * 2]
    assert d["update_macs"].tolist() == [24, 12]
    assert d["weight_reads"].tolist() == [2 * 15 + 2 * 15, 2 * 8 + 2 * 8]
    assert d["weight_writes"].tolist() == [2 * 15, 2 * 8]
    assert d["act_reads"].tolist() == [2 * 2 * 4, 2 * 2 * 3]
    assert d["act_writes"].tolist() == [2 * 2 * 3, 2 * 2 * 2]
    assert d["class_vector_reads"].tolist() == [2 * 3, 2 * 2]
    assert d["loss_unit_ops"].tolist() == [2 * 4, 2 * 4]
    assert d["readout_macs"].tolist() == [0, 0] and d["error_macs"].tolist() == [0, 0]
    assert (d["update_writes"] <= d["weight_writes"]).all()
    inf = clf.inference_counts(X, exit_layer=0)
    assert inf.data["forward_macs"].tolist() == [24, 0]
    assert inf.data["readout_macs"].tolist() == [2 * 2 * 3, 0]
    inf_all = clf.inference_counts(X, exit_layer=-1, readout="all")
    assert inf_all.data["readout_macs"].tolist() == [12, 8]


@pytest.mark.parametrize("precision", [None, PrecisionSpec.fixed(6)])
def test_save_load_round_trip_and_exact_resume(tmp_path, precision):
    X, y = toy(60)
    full = SpelaClassifier((7, 5), precision=precision, epochs=3, random_state=1).fit(X, y)
    half = SpelaClassifier((7, 5), precision=precision, epochs=1, random_state=1).fit(X, y)
    path = half.save(tmp_path / "m.npz")
    back = load_model(path)
    np.testing.assert_array_equal(back.predict_layers(X), half.predict_layers(X))
    back.set_params(epochs=3)
    back.continue_fit(X, y)
    for w1, w2 in zip(back.state_.weights, full.state_.weights):
        np.testing.assert_array_equal(w1, w2)
    assert back.epochs_done_ == 3 and back.train_counts_.samples == full.train_counts_.samples
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_and_incompatible_model_files(tmp_path):
    X, y = toy()
    path = SpelaClassifier((4, 3), random_state=0).fit(X, y).save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="no such"):
        load_model(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="bad.npz"):
        load_model(bad)
    z = dict(np.load(path))
    meta = json.loads(str(z["meta"]))
    meta["version"] = 99
    z["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "v99.npz", **z)
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(tmp_path / "v99.npz")
    meta["version"] = 1
    z["meta"] = np.array(json.dumps(meta))
    z["weight_0"] = z["weight_0"][:, :2]
    np.savez(tmp_path / "shape.npz", **z)
    with pytest.raises(ModelFileError, match="shape"):
        load_model(tmp_path / "shape.npz")


def test_bad_inputs_are_named():
    X, y = toy()
    clf = SpelaClassifier((4, 3))
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        clf.fit(Xn, y)
    with pytest.raises(DataError, match="2-D"):
        clf.fit(X[0], y)
    with pytest.raises(DataError, match="one label per row"):
        clf.fit(X, y[:-1])
    with pytest.raises(ConfigError, match="batch_size"):
        SpelaClassifier((4, 3), batch_size=0).fit(X, y)
    with pytest.raises(ConfigError, match="backend"):
        SpelaClassifier((4, 3), backend="gpu").fit(X, y)
    with pytest.raises(ConfigError, match=r"dims\[1\]"):
        SpelaClassifier((0, 3)).fit(X, y)
    with pytest.raises(SpelaError, match="not fitted"):
        SpelaClassifier().predict(X)
    fitted = SpelaClassifier((4, 3), random_state=0).fit(X, y)
    with pytest.raises(DataError, match="features"):
        fitted.predict(X[:, :3])
    with pytest.raises(ConfigError, match="layer"):
        fitted.predict(X, layer=5)
    with pytest.raises(DataError, match="label 7"):
        fitted.partial_fit(X[:2], np.array([7, 0]))


def test_every_layer_is_an_exit_and_ties_go_to_lowest_index():
    X, y = toy()
    clf = SpelaClassifier((5, 4), random_state=0).fit(X, y)
    per_layer = clf.predict_layers(X)
    for k in range(2):
        np.testing.assert_array_equal(per_layer[k], clf.predict(X, layer=k))
    # an all-zero output scores every class 0: argmax is class index 0, counted as zero norm
    st = clf.state_
    st.weights[0][...] = 0
    st.biases[0][...] = 0
    assert (clf.predict(X, layer=0) == clf.classes_[0]).all()
    assert clf.inference_counts(X, exit_layer=0).data["zero_norm_events"][0] == len(X)


def test_spela_separates_noisy_xor():
    X, y = make_noisy_xor(2000, n_bits=2, noise=0.1, random_state=0)
    Xt, yt = make_noisy_xor(500, n_bits=2, noise=0.1, random_state=1)
    clf = SpelaClassifier((64, 16), activation="leaky_relu", epochs=5, random_state=0,
                          rule=Spela(optimizer=Sgd(0.1))).fit(X, y)
    assert max(clf.score_layers(Xt, yt)) > 0.9  # a linear read-out of the raw bits gets ~50%


def test_real_mnist_one_per_sample_epoch(mnist):
    """Per-sample SPELA, float32 and 8-bit, 784-1024-10 on 20,000 real MNIST images."""
    n = 20_000
    X, y = mnist.features("train")[:n], mnist.y_train[:n]
    Xt, yt = mnist.features("test"), mnist.y_test
    accs = {}
    for name, prec in (("fp32", None), ("w8", PrecisionSpec.fixed(8))):
        clf = SpelaClassifier((1024, 10), precision=prec, batch_size=1, epochs=1, random_state=0,
                              rule=Spela(optimizer=Sgd(0.05)))
        accs[name] = clf.fit(X, y).score_layers(Xt, yt)
    assert accs["fp32"][0] >= 0.85, accs
    assert accs["w8"][0] >= 0.85, accs
    assert abs(accs["fp32"][0] - accs["w8"][0]) <= 0.015, accs
    assert accs["fp32"][1] > 0.3 and accs["w8"][1] > 0.3, accs  # the 10-d output layer lags


def test_fit_with_classes_missing_from_a_subset():
    X, y = toy(30, classes=2)
    clf = SpelaClassifier((4, 3), random_state=0).fit(X, y, classes=[0, 1, 2])
    assert clf.classes_.tolist() == [0, 1, 2] and clf.state_.vectors[0].shape[0] == 3


def test_adam_backprop_resumes_exactly_from_a_model_file(tmp_path):
    from spela_hw import Adam, Backprop, BackpropClassifier

    X, y = toy(60)
    params = dict(layer_sizes=(7, 3), rule=Backprop(optimizer=Adam(0.01)), batch_size=5, random_state=2)
    full = BackpropClassifier(**params, epochs=2).fit(X, y)
    half = BackpropClassifier(**params, epochs=1).fit(X, y)
    back = load_model(half.save(tmp_path / "adam.npz"))
    back.set_params(epochs=2)
    back.continue_fit(X, y)
    for w1, w2 in zip(back.state_.weights, full.state_.weights):
        np.testing.assert_array_equal(w1, w2)


@pytest.mark.parametrize("precision", [None, PrecisionSpec.fixed(8)])
@pytest.mark.parametrize("batch_size", [1, 50])
def test_n_jobs_never_changes_a_result(precision, batch_size):
    """Two kernel threads (the default where the cores exist) give the weights of one, bit for bit."""
    import numba

    rng = np.random.default_rng(1)
    X = (rng.random((600, 784)) * (rng.random((600, 784)) < 0.2)).astype(np.float32)
    y = np.arange(600) % 10
    fits = [SpelaClassifier((256, 34), precision=precision, batch_size=batch_size, random_state=2,
                            n_jobs=n).fit(X, y) for n in (1, -1)]
    assert fits[0]._ops.threads == 1 and fits[1]._ops.threads == numba.get_num_threads()
    for wa, wb in zip(fits[0].state_.weights, fits[1].state_.weights):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2"])
def test_bad_n_jobs_is_named(n_jobs):
    X, y = toy()
    with pytest.raises(ConfigError, match="n_jobs"):
        SpelaClassifier((5, 4), n_jobs=n_jobs).fit(X, y)


@pytest.mark.parametrize("estimator", [BackpropClassifier, SpelaClassifier])
def test_blas_threads_of_the_caller_never_change_a_result(estimator):
    """Float products run on one BLAS thread whatever the caller (a report worker, a user's
    ``OPENBLAS_NUM_THREADS``) set: BLAS splits a product otherwise for another thread count. The
    4-layer network trains SPELA step by step on BLAS at batch 64 (wide hidden layers)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(1)
    X = (rng.random((1000, 784)) * (rng.random((1000, 784)) < 0.2)).astype(np.float32)
    y = np.arange(1000) % 10
    fits = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            clf = estimator((128, 512, 256, 10), batch_size=64, epochs=1, random_state=0).fit(X, y)
            fits.append((clf.state_.weights, clf.decision_function(X[:300])))
    for wa, wb in zip(fits[0][0], fits[1][0]):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(fits[0][1], fits[1][1])
