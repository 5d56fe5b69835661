"""Class vectors: closed-form simplex, Coulomb relaxation, seeds."""

import json

import numpy as np
import pytest

from spela_hw import ConfigError, class_vectors
from spela_hw.classvectors import coulomb_energy


@pytest.mark.parametrize("n, d", [(2, 1), (10, 10), (10, 34), (10, 1024), (100, 1024)])
def test_simplex_properties(n, d):
    v = class_vectors(n, d, seed=3, layer=1)
    assert v.shape == (n, d)
    g = v @ v.T
    np.testing.assert_allclose(np.diag(g), 1.0, atol=1e-12)
    off = g[~np.eye(n, dtype=bool)]
    np.testing.assert_allclose(off, -1 / (n - 1), atol=1e-12)
    np.testing.assert_allclose(v.sum(axis=0), 0.0, atol=1e-12)


def test_simplex_is_dense_not_axis_aligned():
    v = class_vectors(10, 1024, seed=0)
    assert np.count_nonzero(np.abs(v) > 1e-6) > 0.99 * v.size


def test_seed_and_layer_reproducibility():
    a = class_vectors(10, 50, seed=5, layer=0)
    np.testing.assert_array_equal(a, class_vectors(10, 50, seed=5, layer=0))
    assert not np.allclose(a, class_vectors(10, 50, seed=5, layer=1))
    assert not np.allclose(a, class_vectors(10, 50, seed=6, layer=0))


def test_coulomb_finds_known_optima():
    cross = class_vectors(6, 3, seed=0, method="coulomb", steps=3000)  # N = 2d: cross-polytope
    cos = np.round(cross @ cross.T, 3)
    assert set(np.unique(cos)) <= {-1.0, 0.0, 1.0}
    pent = class_vectors(5, 2, seed=0, method="coulomb", steps=3000)  # regular pentagon
    c = np.sort(np.round((pent @ pent.T)[~np.eye(5, dtype=bool)], 3))
    assert set(np.unique(c)) == {-0.809, 0.309}
    ico = class_vectors(12, 3, seed=1, method="auto", steps=3000)  # auto -> coulomb: icosahedron
    c = set(np.unique(np.round(ico @ ico.T, 2)))
    assert c == {-1.0, -0.45, 0.45, 1.0}
    assert coulomb_energy(ico) < coulomb_energy(np.random.default_rng(0).normal(size=(12, 3)) /
                                                np.sqrt(3))


def test_gaussian_ablation_is_unit_but_not_simplex():
    v = class_vectors(10, 10, seed=0, method="gaussian")
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)
    assert np.abs(v @ v.T - (np.eye(10) * 10 / 9 - 1 / 9)).max() > 0.1


@pytest.mark.parametrize("kw", [dict(n_classes=1, dim=4), dict(n_classes=3, dim=0),
                                dict(n_classes=3, dim=4, method="mds")])
def test_bad_arguments(kw):
    with pytest.raises(ConfigError):
        class_vectors(seed=0, **kw)


@pytest.mark.parametrize("n", [2, 3, 10])
def test_aligned_is_the_axis_simplex_in_a_layer_as_wide_as_the_classes(n):
    v = class_vectors(n, n, seed=7, layer=1, method="aligned")
    np.testing.assert_allclose(v @ v.T, np.eye(n) * n / (n - 1) - 1 / (n - 1), atol=1e-12)
    # every class is reachable by a non-negative output: the positive part of v_c is unit c
    np.testing.assert_array_equal(np.argmax(v, axis=1), np.arange(n))
    np.testing.assert_allclose(np.linalg.norm(np.maximum(v, 0), axis=1), np.sqrt((n - 1) / n))
    np.testing.assert_array_equal(v, class_vectors(n, n, seed=8, layer=0, method="aligned"))


def test_onehot_in_a_layer_as_wide_as_the_classes():
    np.testing.assert_array_equal(class_vectors(10, 10, seed=7, layer=1, method="onehot"), np.eye(10))


@pytest.mark.parametrize("method", ["aligned", "onehot"])
@pytest.mark.parametrize("n, d", [(10, 9), (10, 34), (10, 1024)])
def test_aligned_and_onehot_keep_the_rotated_simplex_in_other_widths(method, n, d):
    np.testing.assert_array_equal(class_vectors(n, d, seed=3, layer=1, method=method),
                                  class_vectors(n, d, seed=3, layer=1, method="auto"))


def test_aligned_output_layer_in_the_estimator_and_its_model_file(tmp_path):
    from spela_hw import Spela, SpelaClassifier
    from spela_hw.io import load_model

    rng = np.random.default_rng(0)
    X, y = rng.random((40, 12)).astype(np.float32), np.arange(40) % 4
    clf = SpelaClassifier((16, 4), rule=Spela(class_vectors="aligned"), random_state=2).fit(X, y)
    hidden, out = clf.class_vectors_
    np.testing.assert_array_equal(out, class_vectors(4, 4, seed=0, method="aligned"))
    np.testing.assert_array_equal(hidden, class_vectors(4, 16, clf.class_vector_seed_, layer=0))
    back = load_model(clf.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.class_vectors_[1], out)
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))


def test_nonnegative_readout_margins():
    from spela_hw.classvectors import nonnegative_readout_margins

    n = 10
    np.testing.assert_allclose(nonnegative_readout_margins(class_vectors(n, n, 0, method="aligned")),
                               np.sqrt(n / (n - 1)))
    m = nonnegative_readout_margins(np.array([[1.0, 0.0], [-1.0, 0.0]]))
    assert m[0] == 2.0 and m[1] == -np.inf  # no positive entry: no non-negative output stands for it
    # official-code, random_state=2 (MNIST output 86.95 % after 200 epochs): class 5's best
    # non-negative output is read out as another class, and only class 5's
    cv_seed = int(np.random.SeedSequence(2).generate_state(4)[1])
    m = nonnegative_readout_margins(class_vectors(n, n, cv_seed, layer=1))
    assert np.flatnonzero(m <= 0).tolist() == [5]


@pytest.mark.slow
def test_output_spread_bench_runs(capsys):
    from bench.output_spread import main

    main(["--rotations", "2"])
    out = capsys.readouterr().out
    assert "| 10 |" in out and "random_state=2:" in out and "aligned: +1.054" in out
    main(["--train", "mnist-bundled", "--epochs", "1", "--init", "0", "--vectors", "2", "--order", "1",
          "--method", "onehot"])
    run = json.loads(capsys.readouterr().out)
    assert (run["init"], run["vectors"], run["order"], run["method"]) == (0, 2, 1, "onehot")
    assert len(run["output"]) == 1 and len(run["recall"]) == 10
