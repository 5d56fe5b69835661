"""aihwkit analog tiles as the training device (``sim.aihwkit_device``; optional extra ``aihwkit``)."""

import numpy as np
import pytest

from spela_hw.errors import ConfigError

pytest.importorskip("aihwkit")

from sim.aihwkit_device import AIHWKIT_DEVICES, AihwkitDevice, MatchedDevice
from spela_hw import BackpropClassifier, SpelaClassifier, load_dataset
from spela_hw.device import MatVecDeviceModel
from spela_hw.specs import Backprop, Sgd, Spela

CLEAN = dict(dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)


def constant_step(**kw):
    """A constant-step tile without variation: 2 / 0.05 = 40 steps across [-1, 1]."""
    return AihwkitDevice("constant_step", dw_min=0.05, w_max=1.0, w_min=-1.0, **{**CLEAN, **kw})


def test_protocol_program_read_and_ideal_products():
    dev = constant_step(weight_range=0.5, program_levels=41)
    assert isinstance(dev, MatVecDeviceModel)
    rng = np.random.default_rng(0)
    w, b = rng.uniform(-0.6, 0.6, (12, 20)), rng.normal(size=12)
    wq, bq = dev.program(0, w, b)
    grid = np.linspace(-0.5, 0.5, 41)  # the levels over [-r, r]
    assert np.all(np.min(np.abs(wq[..., None] - grid), axis=-1) < 1e-6)
    np.testing.assert_array_equal(bq, b.astype(np.float32))  # biases stay digital
    r, _ = dev.read(0, wq, bq)
    np.testing.assert_array_equal(r, wq)
    x, p = rng.normal(size=(5, 20)), rng.normal(size=(5, 12))
    np.testing.assert_allclose(dev.mvm(0, x, r, bq), x @ r.T + bq, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dev.mvm_transposed(0, p, r), p @ r, rtol=1e-5, atol=1e-5)


def test_one_update_moves_whole_pulses_of_the_device_step():
    """Columns path (a mini-batch sum): each cell moves by whole steps, on average by dW."""
    dev = constant_step()
    w0, b0 = dev.program(0, np.zeros((200, 50)), np.zeros(200))
    # exactly 3 steps everywhere: update management makes the trains 3 pulses long, all firing
    w1, _ = dev.update(0, w0, b0, np.full((200, 50), 0.15), np.zeros(200))
    np.testing.assert_allclose(w1, 0.15, atol=1e-6)
    rng = np.random.default_rng(1)
    dw = rng.uniform(-0.3, 0.3, (200, 50))  # up to 6 steps, mixed signs, not rank 1
    w2, _ = dev.update(0, w1, b0, dw, np.zeros(200))
    steps = (w2 - w1) / 0.05
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)  # the device's granularity
    assert np.abs(steps).max() <= 31  # at most desired_bl pulses
    assert np.mean(steps - dw / 0.05) == pytest.approx(0.0, abs=0.1)  # unbiased
    assert np.corrcoef(steps.ravel(), dw.ravel())[0, 1] > 0.8


def test_a_rank_one_update_is_one_outer_product_of_pulse_trains():
    dev = constant_step(pulse_type="deterministic")
    w0, b0 = dev.program(0, np.zeros((30, 40)), np.zeros(30))
    rng = np.random.default_rng(2)
    post, pre = rng.uniform(-1, 1, 30), rng.uniform(0, 1, 40)
    dw = 0.3 * np.outer(post, pre)  # one sample's update: post-synaptic term times input
    w1, _ = dev.update(0, w0, b0, dw, np.zeros(30))
    steps = (w1 - w0) / 0.05
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(steps - dw / 0.05).max() <= 1.5  # deterministic coincidences: within a step or so
    assert np.sign(steps[np.abs(dw) > 0.1]).tolist() == np.sign(dw[np.abs(dw) > 0.1]).tolist()


@pytest.mark.parametrize("kind,nonlinearity", [("constant_step", 0.0), ("soft_bounds", 3.0)])
def test_matched_devices_take_the_same_step(kind, nonlinearity):
    """One pulse from each level: the crossbar's law and aihwkit's tile agree step for step."""
    m = MatchedDevice(kind, levels=33, weight_range=0.5, nonlinearity=nonlinearity)
    grid = np.linspace(-0.5, 0.5, 33)[:-1]
    w = np.tile(grid, (4, 1))
    dw_min = 2 * 0.5 / 32
    for direction in (1.0, -1.0):
        moved = []
        for dev in (m.crossbar(seed=0), m.aihwkit(seed=0)):
            wq, b = dev.program(0, w if direction > 0 else -w, np.zeros(4))
            w1, _ = dev.update(0, wq, b, np.full(w.shape, direction * dw_min), np.zeros(4))
            moved.append(w1 - wq)
        np.testing.assert_allclose(moved[1], moved[0], atol=2e-5)
        if kind == "soft_bounds":  # steps shrink towards the bound they approach
            assert abs(moved[0][0, -1]) < abs(moved[0][0, 0])


def test_training_through_aihwkit_learns():
    """SPELA (mini-batch and per-sample updates) and backprop learn on matched tiles; fast."""
    d = load_dataset("mnist-bundled")
    X, y = d.features("test"), d.y_test
    Xtr, ytr, Xte, yte = X[:1500], y[:1500], X[1500:], y[1500:]
    dev = MatchedDevice("constant_step", levels=64, weight_range=0.5, d2d_sigma=0.3, c2c_sigma=0.3).aihwkit(seed=0)
    spela = SpelaClassifier((64, 10), rule=Spela(loss="log_2_minus_cos", optimizer=Sgd(2.5)), batch_size=50,
                            epochs=2, random_state=0, device=dev).fit(Xtr, ytr)
    assert spela.score(Xte, yte, layer=0) > 0.6  # chance is 0.1
    assert spela.device_.update_calls == 2 * 30 * 2 and dev.tiles == {}  # fit trained a copy
    one = SpelaClassifier((32, 10), rule=Spela(loss="log_2_minus_cos", optimizer=Sgd(0.5)), batch_size=1,
                          epochs=1, random_state=0, device=dev).fit(Xtr[:600], ytr[:600])
    assert one.score(Xte, yte, layer=0) > 0.3  # rank-1 updates, 600 samples (0.40-0.62 over runs)
    bp = BackpropClassifier((64, 10), rule=Backprop(Sgd(0.1)), batch_size=50, epochs=2, random_state=0,
                            device=MatchedDevice("constant_step", levels=64, weight_range=0.25).aihwkit(seed=0))
    assert bp.fit(Xtr, ytr).score(Xte, yte) > 0.6


def test_bad_names_and_fields_are_config_errors():
    with pytest.raises(ConfigError, match="nope") as e:
        AihwkitDevice("nope")
    assert e.value.field == "device"
    with pytest.raises(ConfigError) as e:
        AihwkitDevice("soft_bounds", bogus=1.0)
    assert e.value.field == "device.bogus"
    for kwargs, field in [(dict(io="noisy"), "io"), (dict(pulse_type="x"), "pulse_type"),
                          (dict(weight_range=-1.0), "weight_range"), (dict(program_levels=1), "program_levels"),
                          (dict(device=3), "device")]:
        with pytest.raises(ConfigError) as e:
            AihwkitDevice(**kwargs)
        assert e.value.field == field
    for kwargs, field in [(dict(kind="pcm"), "kind"), (dict(kind="soft_bounds"), "nonlinearity"),
                          (dict(levels=1), "levels"), (dict(d2d_sigma=-1), "d2d_sigma")]:
        with pytest.raises(ConfigError) as e:
            MatchedDevice(**kwargs)
        assert e.value.field == field
    dev = constant_step()
    with pytest.raises(ConfigError) as e:
        dev.read(3, np.zeros((2, 2)), np.zeros(2))
    assert e.value.field == "layer"


@pytest.mark.parametrize("name", sorted(AIHWKIT_DEVICES))
def test_every_named_device_builds_a_tile_and_updates(name):
    dev = AihwkitDevice(name, weight_range=0.5)
    w, b = dev.program(0, np.zeros((4, 6)), np.zeros(4))
    w1, _ = dev.update(0, w, b, np.full((4, 6), 0.05), np.zeros(4))
    assert w1.shape == (4, 6) and np.all(np.isfinite(w1))
