"""The functional crossbar device model: levels, non-linear updates, faults, variation, endurance."""

import numpy as np
import pytest

from sim import CrossbarDevice
from spela_hw import DeviceModel, SpelaClassifier
from spela_hw.errors import ConfigError
from spela_hw.specs import Sgd, Spela


def linear(**kw):
    base = dict(nonlinearity_ltp=0.0, nonlinearity_ltd=0.0, d2d_sigma=0.0, c2c_sigma=0.0,
                stuck_at_hrs_rate=0.0, stuck_at_lrs_rate=0.0)
    return CrossbarDevice("rram-22nm", weight_range=1.0, seed=0, **{**base, **kw})


def test_satisfies_the_protocol_and_snaps_to_levels():
    dev = linear()
    assert isinstance(dev, DeviceModel)
    rng = np.random.default_rng(0)
    w, b = rng.uniform(-1.2, 1.2, (20, 30)), rng.normal(size=20)
    wq, bq = dev.program(0, w, b)
    assert wq.dtype == np.float32 and wq.shape == (20, 30)
    grid = (np.arange(32) / 31) * 2 - 1  # 32 levels across [-1, 1]
    assert np.all(np.min(np.abs(wq[..., None] - grid), axis=-1) < 1e-6)
    assert np.all(np.abs(wq - np.clip(w, -1, 1)) <= 1 / 31 + 1e-6)  # nearest level (half a step = 1/31)
    np.testing.assert_array_equal(bq, b.astype(np.float32))  # biases stay digital
    r, _ = dev.read(0, wq, bq)
    np.testing.assert_array_equal(r, wq)


def test_linear_updates_move_whole_pulses_with_stochastic_rounding():
    dev = linear()
    w0 = np.zeros((100, 100))
    wq, b = dev.program(0, w0, np.zeros(100))
    step = dev.dw_min(0)
    assert step == pytest.approx(2 / 31)
    two = CrossbarDevice("rram-22nm", weight_range=(0.5, 2.0))
    assert two.dw_min(1) == 4 * two.dw_min(0) and two.weight_range(1) == 2.0
    w1, _ = dev.update(0, wq, b, np.full((100, 100), 3 * step), np.zeros(100))
    np.testing.assert_allclose(w1, wq + 3 * step, atol=1e-6)
    w2, _ = dev.update(0, w1, b, np.full((100, 100), 0.25 * step), np.zeros(100))
    moved = np.mean(np.abs(w2 - w1) > 1e-6)
    assert 0.2 < moved < 0.3  # a quarter pulse is one pulse a quarter of the time (unbiased)
    w3, _ = dev.update(0, w2, b, np.full((100, 100), 100 * step), np.zeros(100))
    assert np.all(w3 <= 1.0 + 1e-6) and np.max(w3) == pytest.approx(1.0)  # bounded by G_max
    assert dev.pulse_counts[0].max() <= 3 + 1 + 31  # at most max_pulses per update


def test_nonlinear_asymmetric_updates():
    dev = CrossbarDevice("rram-22nm", seed=0, nonlinearity_ltp=4.0, nonlinearity_ltd=1.0)
    w = np.array([[-1.0, 0.0, 0.9]])
    wq, b = dev.program(0, w, np.zeros(1))
    up, _ = dev.update(0, wq, b, np.full((1, 3), dev.dw_min(0)), np.zeros(1))
    steps = up - wq
    assert steps[0, 0] > steps[0, 1] > steps[0, 2] > 0  # potentiation saturates towards G_max
    assert steps[0, 0] > 2 * dev.dw_min(0)                 # first LTP step is larger than nominal
    down, _ = dev.update(0, up, b, np.full((1, 3), -dev.dw_min(0)), np.zeros(1))
    assert np.all(np.abs(down - wq) > 1e-4)             # one up + one down pulse does not return
    sym = CrossbarDevice("rram-22nm", seed=0, nonlinearity_ltp=4.0, nonlinearity_ltd=4.0)
    w_a = 2 * 10 / 31 - 1  # level 10 of 31; its mirror is level 21 (w = -w_a)
    wa, b = sym.program(0, np.array([[w_a]]), np.zeros(1))
    wb, _ = sym.program(1, np.array([[-w_a]]), np.zeros(1))
    d_up = sym.update(0, wa, b, np.array([[sym.dw_min(0)]]), np.zeros(1))[0] - wa
    d_dn = sym.update(1, wb, b, np.array([[-sym.dw_min(0)]]), np.zeros(1))[0] - wb
    assert d_up[0, 0] == pytest.approx(-d_dn[0, 0], rel=1e-5)  # LTD mirrors LTP when the shapes agree


def test_stuck_at_faults():
    dev = CrossbarDevice("rram-22nm", seed=3, stuck_at_hrs_rate=0.09, stuck_at_lrs_rate=0.01)
    n = 200_000
    wq, b = dev.program(0, np.zeros((1, n)), np.zeros(1))
    hrs, lrs = np.mean(dev.stuck[0] == 1), np.mean(dev.stuck[0] == 2)
    assert hrs == pytest.approx(0.09, abs=0.003) and lrs == pytest.approx(0.01, abs=0.001)
    assert np.all(wq[dev.stuck[0] == 1] == -1.0) and np.all(wq[dev.stuck[0] == 2] == 1.0)
    w1, _ = dev.update(0, wq, b, np.full((1, n), 5 * dev.dw_min(0)), np.zeros(1))
    stuck = dev.stuck[0] != 0
    np.testing.assert_array_equal(w1[stuck], wq[stuck])
    assert np.all(w1[~stuck] > wq[~stuck])
    assert np.all(dev.write_counts[0][stuck] == 0)


def test_variation_is_seeded_and_visible():
    def run(seed):
        dev = CrossbarDevice("rram-22nm", seed=seed, d2d_sigma=0.3, c2c_sigma=0.5, read_noise_sigma=0.01)
        wq, b = dev.program(0, np.zeros((50, 50)), np.zeros(50))
        w1, _ = dev.update(0, wq, b, np.full((50, 50), 2 * dev.dw_min(0)), np.zeros(50))
        return w1, dev.read(0, w1, b)[0]
    a, b = run(1), run(1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = run(2)
    assert not np.array_equal(a[0], c[0])
    steps = a[0] - 0.0
    assert steps.std() > 0.1 * steps.mean() > 0      # d2d + c2c spread the step
    assert not np.array_equal(a[0], a[1])            # read noise


def test_lifetime_from_write_counts():
    dev = linear(endurance_cycles=1e6)
    wq, b = dev.program(0, np.zeros((4, 4)), np.zeros(4))
    for _ in range(10):
        wq, b = dev.update(0, wq, b, np.full((4, 4), 0.01 * dev.dw_min(0)) + np.eye(4) * dev.dw_min(0), b)
    life = dev.lifetime(samples_seen=10 * 50, samples_per_day=1000)  # batch 50
    assert life.max_writes_per_cell == 10
    assert life.writes_per_cell_per_sample == pytest.approx(10 / 500)
    assert life.days == pytest.approx(1e6 / (10 / 500 * 1000))
    with pytest.raises(ConfigError):
        dev.lifetime(0)


def test_bad_device_configs():
    with pytest.raises(ConfigError) as e:
        CrossbarDevice("sram-cim-22nm")
    assert e.value.field == "device.kind"
    with pytest.raises(ConfigError):
        CrossbarDevice("mcu-256kb")
    with pytest.raises(ConfigError):
        CrossbarDevice("rram-22nm", weight_range=0)
    with pytest.raises(ConfigError):
        CrossbarDevice("rram-22nm", colour=1)
    dev = linear()
    with pytest.raises(ConfigError, match="never programmed"):
        dev.read(0, np.zeros((2, 2)), np.zeros(2))
    dev.program(0, np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ConfigError, match="shape"):
        dev.update(0, np.zeros((2, 2)), np.zeros(2), np.zeros((3, 2)), np.zeros(2))


def blobs(n, rng, d=20, k=4):
    centres = rng.normal(0, 1.5, (k, d))
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y


def test_spela_learns_on_the_device_and_accuracy_is_measured():
    """Accuracy under device effects is measured by training through the hook (not assumed)."""
    X, y = blobs(1000, np.random.default_rng(0))
    Xtr, ytr, Xte, yte = X[:600], y[:600], X[600:], y[600:]
    rule = Spela(optimizer=Sgd(lr=0.2))
    ideal = SpelaClassifier((32, 4), rule=rule, epochs=3, random_state=0).fit(Xtr, ytr)
    dev = CrossbarDevice("rram-22nm", weight_range=1.0, seed=0, nonlinearity_ltp=2.0, nonlinearity_ltd=2.0,
                         d2d_sigma=0.2, c2c_sigma=0.2, stuck_at_hrs_rate=0.02, stuck_at_lrs_rate=0.005)
    hw = SpelaClassifier((32, 4), rule=rule, epochs=3, random_state=0, device=dev).fit(Xtr, ytr)
    # the 32-wide hidden layer is an exit too (SPELA reads out at every layer)
    acc_ideal, acc_dev = ideal.score(Xte, yte, layer=0), hw.score(Xte, yte, layer=0)
    assert acc_ideal > 0.95
    assert 0.6 < acc_dev <= 1.0  # well above chance (0.25) with faults, variation and 32 levels
    assert dev.update_calls == 3 * 600 * 2  # every sample, every layer went through the device
    life = dev.lifetime(samples_seen=hw.train_counts_.samples, samples_per_day=1000)
    assert life.max_writes_per_cell > 0 and life.days is not None and life.days > 0
