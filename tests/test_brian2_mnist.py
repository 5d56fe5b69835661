"""Spiking SPELA learns real MNIST (small: numpy target, short windows, a few hundred samples),
and rate-trained spela_hw weights keep their accuracy when converted to spikes."""

import numpy as np
import pytest

from mappings.brian2 import (BackendConfig, EncodingConfig, PlasticityConfig, SpikingConfig,
                             SpikingSpela)
from sim.spiking_energy import price_spiking
from spela_hw import NetworkSpec, Sgd, Spela, SpelaClassifier, load_dataset

CI_CONFIG = SpikingConfig(
    encoding=EncodingConfig(present_ms=50.0, rest_ms=10.0, gate_start_ms=15.0, gate_stop_ms=50.0),
    plasticity=PlasticityConfig(lr_eff=2.0),
    backend=BackendConfig(target="numpy", dt_ms=1.0, seed=0))


@pytest.fixture(scope="module")
def mnist():
    ds = load_dataset("mnist-bundled")  # ships with the package: 8,000 train / 2,000 test
    return ds.x_train / 255.0, ds.y_train, ds.x_test / 255.0, ds.y_test


@pytest.mark.slow
def test_short_spiking_training_on_mnist_learns_well_above_chance(mnist):
    X, y, Xt, yt = mnist
    net = SpikingSpela(NetworkSpec((784, 64, 10)), Spela(), CI_CONFIG)
    res = net.fit(X[:240], y[:240], X_test=Xt[:100], y_test=yt[:100])
    assert res.layer_accuracy[0] >= 0.5, res.layer_accuracy  # chance is 0.1
    assert res.layer_accuracy[1] >= 0.3, res.layer_accuracy
    assert max(res.silent_fraction) < 0.1
    train = res.counts["train"]["total"]
    assert train["synaptic_ops"] > train["plasticity_updates"] > 0
    energy = price_spiking(train, "loihi_measured")
    assert energy.total_pj == pytest.approx(23.6 * train["synaptic_ops"] + 120.0 * train["plasticity_updates"]
                                            + 52.0 * train["neuron_updates"] + 1.7 * train["output_spikes"]
                                            # the rule's other events as Loihi would run them [derived]
                                            + 120.0 * train["bias_updates"] + 52.0 * train["error_evaluations"]
                                            + 23.6 * train["normaliser_macs"])


@pytest.mark.slow
def test_rate_trained_weights_convert_to_spikes(mnist):
    X, y, Xt, yt = mnist
    clf = SpelaClassifier((64, 10), rule=Spela(optimizer=Sgd(0.3)), epochs=1, random_state=0)
    clf.fit(X[:3000].astype(np.float32), y[:3000])
    rate = clf.score_layers(Xt[:100].astype(np.float32), yt[:100])
    snn = SpikingSpela.from_spela_hw(clf, X[:500], CI_CONFIG)
    res = snn.evaluate(Xt[:100], yt[:100])
    assert rate[0] > 0.7
    assert res.layer_accuracy[0] >= rate[0] - 0.1, (res.layer_accuracy, rate)
    assert res.counts["test"]["total"]["plasticity_updates"] == 0
    with pytest.raises(Exception, match="inference only"):
        snn.fit(X[:2], y[:2])
