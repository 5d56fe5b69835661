"""The functional crossbar device model: levels, non-linear updates, faults, variation, endurance,
ADC/DAC quantisation of the matrix-vector products (the ``mvm`` hook) inside training."""

import numpy as np
import pytest

from sim import CrossbarDevice, load_preset
from sim.crossbar_device import ConverterConfig
from spela_hw import BackpropClassifier, Classifier, DeviceModel, PrecisionSpec, SpelaClassifier
from spela_hw.device import MatVecDeviceModel
from spela_hw.errors import ConfigError
from spela_hw.rules.common import forward_all, forward_layer, readout_predictions
from spela_hw.specs import Backprop, Sgd, Sigprop, Spela


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
    assert hw.device_.update_calls == 3 * 600 * 2  # every sample, every layer went through the device
    life = hw.device_.lifetime(samples_seen=hw.train_counts_.samples, samples_per_day=1000)
    assert life.max_writes_per_cell > 0 and life.days is not None and life.days > 0


def test_fit_trains_a_copy_of_the_device_and_leaves_the_hyper_parameter_alone():
    """scikit-learn's contract: fit never changes a parameter. The device state (conductances,
    write counts, its RNG) is learned state, ``device_``; so two fits from one device agree."""
    import pickle

    X, y = blobs(200, np.random.default_rng(1))
    dev = CrossbarDevice("rram-22nm", weight_range=1.0, seed=0, d2d_sigma=0.2, c2c_sigma=0.2)
    before = pickle.dumps(dev)
    clf = SpelaClassifier((16, 4), rule=Spela(optimizer=Sgd(lr=0.2)), epochs=1, random_state=0, device=dev)
    clf.fit(X, y)
    assert clf.device is dev and pickle.dumps(dev) == before
    assert dev.update_calls == 0 and dev.g == {}
    assert clf.device_ is not dev and clf.device_.update_calls == 200 * 2
    again = SpelaClassifier(**clf.get_params()).fit(X, y)
    for u, v in zip(clf.state_.weights, again.state_.weights):
        np.testing.assert_array_equal(u, v)


# -- converters: the mvm hook (input levels, tile partial sums, ADC) ------------------------------

def _layer(rng, m=64, n=300, sparsity=0.8):
    x = rng.random((12, n))
    x[x < sparsity] = 0.0
    return x, rng.uniform(-1, 1, (m, n)), rng.normal(size=m)


def _rel_err(a, exact):
    return float(np.abs(a - exact).max() / np.abs(exact).max())


def test_preset_converters_and_ideal_ones():
    dev = CrossbarDevice("rram-22nm")
    assert isinstance(dev, MatVecDeviceModel)
    assert dev.converters == ConverterConfig("bit_serial", input_bits=8, adc_bits=5, rows_per_tile=128)
    assert "ADC 5 bit" in dev.converters.describe() and "dynamic" in dev.converters.describe()
    assert CrossbarDevice("rram-22nm", adc_bits=4, adc_range="full_scale").converters.adc_range == "full_scale"
    bare = CrossbarDevice(load_preset("rram-22nm").crossbar.device)  # a bare cell: ideal converters
    assert bare.converters is None
    assert CrossbarDevice(load_preset("rram-22nm").crossbar.device, adc_bits=6).converters.adc_bits == 6
    x, w, b = _layer(np.random.default_rng(0))
    exact = x @ w.T + b
    ideal = CrossbarDevice("rram-22nm", converters=None).mvm(0, x, w, b)
    assert ideal.dtype == np.float32 and _rel_err(ideal, exact) < 1e-6


@pytest.mark.parametrize("encoding", ["bit_serial", "dac"])
def test_many_bits_reproduce_the_exact_product(encoding):
    x, w, b = _layer(np.random.default_rng(1))
    x[:3] -= 0.1  # negative inputs take the second, opposite-polarity pass
    exact = x @ w.T + b
    dev = CrossbarDevice("rram-22nm", input_encoding=encoding, input_bits=16, adc_bits=16, error_adc_bits=16)
    assert _rel_err(dev.mvm(0, x, w, b), exact) < 1e-4  # stated tolerance: 16-bit inputs and ADC
    p = np.random.default_rng(2).normal(size=(5, w.shape[0]))
    assert _rel_err(dev.mvm_transposed(0, p, w), p @ w) < 1e-4


def test_the_transposed_read_is_the_forward_read_of_the_transpose():
    rng = np.random.default_rng(7)
    p, w = rng.normal(size=(6, 40)), rng.uniform(-1, 1, (40, 300))
    dev = CrossbarDevice("rram-22nm", adc_bits=3, error_adc_bits=3, rows_per_tile=32, cols_per_tile=32)
    np.testing.assert_array_equal(dev.mvm_transposed(0, p, w), dev.mvm(0, p, w.T, np.zeros(300)))
    assert _rel_err(dev.mvm_transposed(0, p, w), p @ w) > 0.05  # 3 bits: visibly quantised
    exact = CrossbarDevice("rram-22nm", error_adc_bits=None).mvm_transposed(0, p, w)
    assert _rel_err(exact, p @ w) < 1e-6


def test_few_adc_bits_visibly_change_the_outputs():
    x, w, b = _layer(np.random.default_rng(2))
    exact = x @ w.T + b
    err = {bits: _rel_err(CrossbarDevice("rram-22nm", adc_bits=bits).mvm(0, x, w, b), exact)
           for bits in (2, 4, 8)}
    assert err[2] > 0.2 and err[2] > err[4] > err[8]
    assert err[8] < 0.02
    coarse = CrossbarDevice("rram-22nm", adc_bits=8, adc_range="full_scale").mvm(0, x, w, b)
    assert _rel_err(coarse, exact) > err[8]  # worst-case full scale wastes codes on sparse inputs


def test_tile_partial_sum_quantisation_by_hand():
    """4 inputs, 2 outputs, 2-row tiles, 3-bit ADC: N = 3 levels each side of zero."""
    x = np.array([[1.0, 2 / 3, 0.0, 1 / 3]])
    w = np.array([[0.5, 0.75, -1.0, 0.9],
                  [-0.5, 0.75, 0.5, -0.6]])
    b = np.array([0.25, -0.5])
    # DAC inputs, exact at 2 bits (levels 0, 1/3, 2/3, 1). Tile partial sums S:
    #   tile 0 (rows 0-1): 0.5*1 + 0.75*2/3 = 1.0 ; -0.5 + 0.5 = 0.0
    #   tile 1 (rows 2-3): 0.9/3 = 0.3            ; -0.6/3 = -0.2
    # full scale F = 0.75 * 2 rows * r(1) = 1.5, step F/3 = 0.5:
    #   Q(1.0) = 1.0, Q(0.0) = 0, Q(0.3) = 0.5, Q(-0.2) = 0   ->  a = (1.5, 0.0) + b
    dac = dict(input_encoding="dac", input_bits=2, adc_bits=3, rows_per_tile=2, input_range=1.0)
    dev = CrossbarDevice("rram-22nm", adc_range="full_scale", adc_range_fraction=0.75, **dac)
    np.testing.assert_allclose(dev.mvm(0, x, w, b), [[1.5 + 0.25, 0.0 - 0.5]], atol=1e-6)
    # dynamic range: F = max|S| = 1.0, step 1/3: Q(1.0) = 1, Q(0.3) = 1/3, Q(-0.2) = -1/3
    dyn = CrossbarDevice("rram-22nm", adc_range="dynamic", **dac)
    np.testing.assert_allclose(dyn.mvm(0, x, w, b), [[4 / 3 + 0.25, -1 / 3 - 0.5]], atol=1e-6)
    # bit-serial, 2 planes: q = (3, 2, 0, 1); plane 0 bits (1, 0, 0, 1), plane 1 bits (1, 1, 0, 0)
    #   plane 0: tile 0 S = (0.5, -0.5), tile 1 S = (0.9, -0.6)
    #   plane 1: tile 0 S = (1.25, 0.25), tile 1 S = (0, 0)
    # F = 2, step 2/3: Q = (2/3, -2/3), (2/3, -2/3), (4/3, 0), (0, 0)
    # a = 1/3 * plane 0 + 2/3 * plane 1 = (1/3 * 4/3 + 2/3 * 4/3, 1/3 * -4/3) = (4/3, -4/9)
    ser = CrossbarDevice("rram-22nm", input_encoding="bit_serial", input_bits=2, adc_bits=3, rows_per_tile=2,
                         input_range=1.0, adc_range="full_scale")
    np.testing.assert_allclose(ser.mvm(0, x, w, b), [[4 / 3 + 0.25, -4 / 9 - 0.5]], atol=1e-6)


def test_the_product_does_not_depend_on_batching():
    """The dynamic ranges are per input vector, so a batch equals its samples one by one."""
    x, w, b = _layer(np.random.default_rng(3))
    dev = CrossbarDevice("rram-22nm", adc_bits=4)
    whole = dev.mvm(0, x, w, b)
    one_by_one = np.concatenate([dev.mvm(0, x[i:i + 1], w, b) for i in range(len(x))])
    np.testing.assert_array_equal(whole, one_by_one)


def test_bad_converter_configs_name_the_field():
    for bad, field in ((dict(adc_bits=0), "adc_bits"), (dict(adc_bits=17), "adc_bits"), (dict(adc_bits=1), "adc_bits"),
                       (dict(adc_bits=4.0), "adc_bits"), (dict(input_bits=0), "input_bits"),
                       (dict(rows_per_tile=0), "rows_per_tile"), (dict(adc_range="auto"), "adc_range"),
                       (dict(adc_range_fraction=0.0), "adc_range_fraction"),
                       (dict(adc_range_fraction=1.5), "adc_range_fraction"),
                       (dict(input_encoding="pwm"), "input_encoding"), (dict(input_range=-1.0), "input_range"),
                       (dict(error_adc_bits=0), "error_adc_bits"), (dict(cols_per_tile=0), "cols_per_tile")):
        with pytest.raises(ConfigError) as e:
            CrossbarDevice("rram-22nm", **bad)
        assert e.value.field == field, bad
    with pytest.raises(ConfigError) as e:
        CrossbarDevice("rram-22nm", converters=None, adc_bits=4)
    assert e.value.field == "converters"
    with pytest.raises(ConfigError):
        CrossbarDevice("rram-22nm").mvm(0, np.zeros((2, 3)), np.zeros((4, 5)), np.zeros(4))


class _WeightsOnlyDevice:
    """A DeviceModel without ``mvm``: the loops must fall back to the exact product."""

    def __init__(self):
        self.reads = 0

    def program(self, layer, w, b):
        return w, b

    def read(self, layer, w, b):
        self.reads += 1
        return w, b

    def update(self, layer, w, b, dw, db):
        return w + dw, b + db


class _ScaledProductDevice(_WeightsOnlyDevice):
    """Exact weights, but a product that is off by a factor: proves the loops use ``mvm``."""

    def __init__(self, factor):
        super().__init__()
        self.factor, self.calls = factor, 0

    def mvm(self, layer, x, w, b):
        self.calls += 1
        return self.factor * (x @ w.T + b)


def test_a_device_without_mvm_still_trains_like_no_device():
    X, y = blobs(200, np.random.default_rng(4))
    params = dict(layer_sizes=(16, 4), rule=Spela(optimizer=Sgd(lr=0.2)), batch_size=2, epochs=2, random_state=0,
                  backend="reference")
    dev = _WeightsOnlyDevice()
    assert isinstance(dev, DeviceModel) and not isinstance(dev, MatVecDeviceModel)
    a = SpelaClassifier(**params, device=dev).fit(X, y)
    plain = SpelaClassifier(**params).fit(X, y)
    assert a.device_.reads == 2 * 2 * 100
    for u, v in zip(a.state_.weights, plain.state_.weights):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    assert a.score(X, y, layer=0) > 0.8  # chance is 0.25


@pytest.mark.parametrize("cls", [SpelaClassifier, BackpropClassifier, Classifier])
def test_every_training_forward_pass_goes_through_mvm(cls):
    X, y = blobs(120, np.random.default_rng(5))
    rule = {SpelaClassifier: Spela(optimizer=Sgd(lr=0.2)), BackpropClassifier: Backprop(Sgd(0.1)),
            Classifier: Sigprop(optimizer=Sgd(0.05))}[cls]  # sigprop: the input stream only
    params = dict(layer_sizes=(16, 4), rule=rule, batch_size=10, epochs=1, random_state=0, backend="numba")
    exact = _ScaledProductDevice(1.0)
    a = cls(**params, device=exact).fit(X, y)
    plain = cls(**params).fit(X, y)
    assert a.device_.calls == 2 * 12  # both layers, every mini-batch (the fused chunk path is not taken)
    for u, v in zip(a.state_.weights, plain.state_.weights):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)
    halved = cls(**params, device=_ScaledProductDevice(0.5)).fit(X, y)
    assert not np.allclose(halved.state_.weights[0], plain.state_.weights[0], atol=1e-4)
    # inference on the device: forward_all reads and multiplies through it
    dev = _ScaledProductDevice(1.0)
    xq = a._ops.quantize_input(X[:7])
    on_dev = forward_all(a.state_, a._ops, xq, False, device=dev)
    off = forward_all(a.state_, a._ops, xq, False)
    assert dev.calls == 2
    np.testing.assert_allclose(on_dev[-1], off[-1], rtol=1e-5, atol=1e-6)


class _NoErrorPathDevice(_ScaledProductDevice):
    """Exact forward products, but the transposed read returns zeros: no error reaches layer 0."""

    def mvm_transposed(self, layer, p, w):
        self.calls += 1
        return np.zeros((len(p), w.shape[1]))


def test_backprop_error_path_goes_through_the_transposed_read():
    X, y = blobs(60, np.random.default_rng(8))
    params = dict(layer_sizes=(16, 4), rule=Backprop(Sgd(0.1)), batch_size=10, epochs=1, random_state=0)
    dev = _NoErrorPathDevice(1.0)
    cut = BackpropClassifier(**params, device=dev).fit(X, y)
    start = BackpropClassifier(**{**params, "epochs": 0}).fit(X, y)
    assert cut.device_.calls == 6 * (2 + 1)  # per step: two forward products, one transposed
    np.testing.assert_array_equal(cut.state_.weights[0], start.state_.weights[0])  # no error arrived
    assert not np.array_equal(cut.state_.weights[1], start.state_.weights[1])


def test_device_products_need_float32():
    X, y = blobs(20, np.random.default_rng(6))
    clf = SpelaClassifier((8, 4), precision=PrecisionSpec.fixed(8), random_state=0).fit(X, y)
    with pytest.raises(ConfigError) as e:
        forward_layer(clf.state_, clf._ops, 0, clf._ops.quantize_input(X), _ScaledProductDevice(1.0))
    assert e.value.field == "device"


def test_spela_learns_through_4_bit_adcs():
    X, y = blobs(1000, np.random.default_rng(0))
    Xtr, ytr, Xte, yte = X[:600], y[:600], X[600:], y[600:]
    rule = Spela(optimizer=Sgd(lr=0.2))
    accs = {}
    for bits in (2, 4):
        dev = CrossbarDevice("rram-22nm", weight_range=1.0, seed=0, adc_bits=bits)
        clf = SpelaClassifier((32, 4), rule=rule, batch_size=10, epochs=3, random_state=0, device=dev).fit(Xtr, ytr)
        h = forward_all(clf.state_, clf._ops, clf._ops.quantize_input(Xte), False, device=clf.device_)[0]
        accs[bits] = float(np.mean(readout_predictions(clf.state_, clf._ops, 0, h)[0] == yte))
    assert accs[4] > 0.9          # 4-bit ADCs: learns the blobs
    assert accs[4] > accs[2]      # 2-bit ADCs (3 levels): visibly worse
