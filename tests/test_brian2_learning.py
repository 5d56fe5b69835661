"""Spiking SPELA in Brian2 on tiny networks (runtime numpy target: no compiler, no build latency).

Rate and spike agree (direction of the weight change, learning curves), the result depends little
on dt, the same seed reproduces spikes and weights, the one-run schedule equals the per-sample
loop, the layer-wide sums are what they claim, and the counts add up.
"""

import json

import numpy as np
import pytest

from mappings.brian2 import (BackendConfig, EncodingConfig, PlasticityConfig, QuantizationConfig,
                             SpikingConfig, SpikingSpela)
from spela_hw import MappingError, NetworkSpec, Sgd, Spela

N_IN, HID, N_CLASSES = 24, 12, 3
SPEC = NetworkSpec((N_IN, HID, 6), n_classes=N_CLASSES)


def fast_config(dt_ms=1.0, code="poisson", seed=0, lr_eff=2.0, **plasticity):
    """Short windows so that a numpy-target run takes seconds."""
    return SpikingConfig(
        encoding=EncodingConfig(code=code, present_ms=40.0, rest_ms=10.0, gate_start_ms=10.0,
                                gate_stop_ms=40.0),
        plasticity=PlasticityConfig(lr_eff=lr_eff, hidden_rate_hz=60.0, **plasticity),
        backend=BackendConfig(target="numpy", dt_ms=dt_ms, seed=seed))


def prototypes(n_per_class, seed=0, noise=0.15):
    """Three well separated prototype images plus noise, pixels in [0, 1]."""
    rng = np.random.default_rng(seed)
    protos = np.zeros((N_CLASSES, N_IN))
    for c in range(N_CLASSES):
        protos[c, c * 8:(c + 1) * 8] = 0.9
        protos[c] += 0.1 * np.random.default_rng(100 + c).random(N_IN)
    y = np.repeat(np.arange(N_CLASSES), n_per_class)
    rng.shuffle(y)
    X = np.clip(protos[y] + noise * rng.standard_normal((len(y), N_IN)), 0, 1)
    return X, y


@pytest.fixture(scope="module")
def data():
    X, y = prototypes(12, seed=1)
    Xt, yt = prototypes(6, seed=2)
    return X, y, Xt, yt


def test_same_seed_gives_identical_spikes_and_weights(data):
    X, y, Xt, yt = data
    runs = []
    for seed in (0, 0, 1):
        net = SpikingSpela(SPEC, config=fast_config(seed=seed))
        res = net.fit(X[:12], y[:12], X_test=Xt[:6], y_test=yt[:6])
        runs.append((res, net.weights_))
    (r0, w0), (r1, w1), (r2, w2) = runs
    assert r0.counts == r1.counts
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    assert r0.counts != r2.counts
    assert not np.array_equal(w0[0], w2[0])


def test_one_run_schedule_equals_the_per_sample_loop(data):
    """The benchmark compares like with like: same spikes and weights both ways (regular code)."""
    X, y, Xt, yt = data
    a = SpikingSpela(SPEC, config=fast_config(code="regular"))
    ra = a.fit(X[:4], y[:4], X_test=Xt[:2], y_test=yt[:2])
    b = SpikingSpela(SPEC, config=fast_config(code="regular"))
    rb = b.fit(X[:4], y[:4], X_test=Xt[:2], y_test=yt[:2], loop=True)
    assert ra.counts["train"]["total"]["input_spikes"] > 0
    assert ra.counts == rb.counts
    for wa, wb in zip(a.weights_, b.weights_):
        np.testing.assert_allclose(wa, wb, atol=1e-9)


def test_chunked_runs_equal_one_run(data):
    """Bounded-memory chunks carry the weights over; with a deterministic code nothing changes."""
    X, y, Xt, yt = data
    a = SpikingSpela(SPEC, config=fast_config(code="regular"))
    ra = a.fit(X[:4], y[:4], X_test=Xt[:2], y_test=yt[:2])
    b = SpikingSpela(SPEC, config=fast_config(code="regular"))
    rb = b.fit(X[:4], y[:4], X_test=Xt[:2], y_test=yt[:2], chunk_samples=3)
    assert rb.info["chunks"] == 2
    assert ra.counts == rb.counts and ra.layer_accuracy == rb.layer_accuracy
    for wa, wb in zip(a.weights_, b.weights_):
        np.testing.assert_allclose(wa, wb, atol=1e-12)


def test_progress_reports_the_chunks_and_the_samples_simulated(data):
    """``progress`` hears every chunk and, through Brian2's report, the samples simulated
    (the runtime target calls back into Python; the standalone binary prints the same to stderr)."""
    X, y, Xt, yt = data
    heard = []
    SpikingSpela(SPEC, config=fast_config(code="regular")).fit(X[:4], y[:4], X_test=Xt[:2], y_test=yt[:2],
                                                               chunk_samples=3, progress=heard.append)
    assert heard.count("simulating 3 samples") == 2  # one run per chunk
    assert any(m.startswith("simulated 3/3 samples") for m in heard)
    assert any(m.startswith("chunk 1: samples 0-3 of 6") for m in heard)
    assert any(m.startswith("chunk 2: samples 3-6 of 6") for m in heard)


def test_the_standalone_progress_report_is_cpp_on_stderr():
    from mappings.brian2.codegen import progress_report_code

    code = progress_report_code(120.0)
    assert "std::cerr" in code and "std::cout" not in code and "0.12" in code


def _rate_and_spike_updates(dt_ms, x, label):
    """Weight change of one training sample: spiking rule vs the rate rule at the same weights."""
    cfg = fast_config(dt_ms=dt_ms, code="regular", eta=(0.002, 0.002))
    net = SpikingSpela(SPEC, Spela(), cfg)
    w0 = [w.copy() for w in net.weights_]
    clf = net.to_spela_hw(rule=Spela(optimizer=Sgd(0.1)), shuffle=False)
    rate_w0 = clf.weights_
    net.fit(x[None], [label])
    clf.partial_fit(x[None].astype(np.float32), [label])
    dspike = [w - w_0 for w, w_0 in zip(net.weights_, w0)]
    drate = [w - w_0 for w, w_0 in zip(clf.weights_, rate_w0)]
    return dspike, drate


def _cos(a, b):
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_rate_and_spike_rules_change_weights_in_the_same_direction(data):
    X, y, _, _ = data
    for s in range(2):
        dspike, drate = _rate_and_spike_updates(1.0, X[s], y[s])
        # Layer 1: same pre-synaptic factor (pixels vs their Poisson-free regular trains).
        assert _cos(dspike[0], drate[0]) > 0.6
        # Per output neuron: the sign of the post-synaptic term agrees where it is not tiny.
        post_s, post_r = dspike[0].sum(1), drate[0].sum(1)
        big = np.abs(post_r) > 0.2 * np.abs(post_r).max()
        assert np.mean(np.sign(post_s[big]) == np.sign(post_r[big])) >= 0.8


def test_update_depends_little_on_dt(data):
    """dt = 1 ms vs 0.5 ms: the same sample moves the weights the same way (cosine > 0.9)."""
    X, y, _, _ = data
    d1, _ = _rate_and_spike_updates(1.0, X[0], y[0])
    d05, _ = _rate_and_spike_updates(0.5, X[0], y[0])
    assert _cos(d1[0], d05[0]) > 0.9
    ratio = np.linalg.norm(d1[0]) / np.linalg.norm(d05[0])
    assert 0.7 < ratio < 1.4


def test_learning_curves_of_rate_and_spike_models_are_close(data):
    """Both learn the prototypes from the same initial weights and codes; test accuracies within
    0.25 of each other and both well above chance (1/3)."""
    X, y, Xt, yt = data
    net = SpikingSpela(SPEC, config=fast_config())
    lr = net.rate_equivalent_lr()[0]
    assert lr == pytest.approx(2.0 * 0.02 * 250)  # lr_eff * tau_m * r_max
    clf = net.to_spela_hw(rule=Spela(optimizer=Sgd(lr)), shuffle=False)
    res = net.fit(X, y, X_test=Xt, y_test=yt)
    clf.partial_fit(X.astype(np.float32), y)
    rate_acc = clf.score_layers(Xt.astype(np.float32), yt)
    assert min(res.layer_accuracy) >= 0.6
    assert min(rate_acc) >= 0.6
    for a, b in zip(res.layer_accuracy, rate_acc):
        assert abs(a - b) <= 0.25
    curve = [c["accuracy"][0] for c in res.online_accuracy]
    assert len(curve) == 10 and np.mean(curve[-3:]) >= np.mean(curve[:3])


def test_counts_add_up(data):
    X, y, Xt, yt = data
    net = SpikingSpela(SPEC, config=fast_config())
    res = net.fit(X[:6], y[:6], X_test=Xt[:4], y_test=yt[:4])
    train, test = res.counts["train"], res.counts["test"]
    assert train["samples"] == 6 and test["samples"] == 4
    for phase in (train, test):
        l1, l2 = phase["layers"]
        assert l1["synaptic_ops"] == pytest.approx(l1["input_spikes"] * HID)
        assert l2["input_spikes"] == pytest.approx(l1["output_spikes"])  # layer 2 hears layer 1
        assert l2["synaptic_ops"] == pytest.approx(l1["output_spikes"] * 6)
        assert l1["neuron_updates"] == HID * 50  # 50 steps of 1 ms per sample
    assert 0 < train["total"]["plasticity_updates"] < train["total"]["synaptic_ops"]
    assert test["total"]["plasticity_updates"] == 0
    # the gate is open 30 of the 40 ms of input: about 3/4 of the input spikes are gated
    l1 = train["layers"][0]
    assert 0.6 < l1["plasticity_updates"] / l1["synaptic_ops"] < 0.9
    json.dumps(res.to_dict())  # plain data only: no Brian2 quantities leak out


def test_layer_sums_norm_and_cosine_inside_the_network():
    """The normaliser's summed variables equal NumPy sums of y*e and y^2, and ny, cosv follow."""
    import brian2 as b2

    from mappings.brian2.network import _build, _device, _namespace

    from dataclasses import replace

    cfg = fast_config()
    cfg = replace(cfg, encoding=replace(cfg.encoding, reset_at_onset=False))
    net = SpikingSpela(SPEC, config=cfg)
    plan = net._plans()[:1]
    with _device("numpy", cfg):
        b2.defaultclock.dt = 1 * b2.ms
        objs, h = _build(cfg, N_IN, plan, "log_2_minus_cos", True, None, "params", {})
        network = b2.Network(*objs)
        layer = h["layers"][0]
        for g in [h["inp"], layer]:
            g.env_s, g.gate_s, g.label_s, g.train_s = 0.0, 0.0, 1.0, 0.0
        y0 = np.random.default_rng(0).uniform(0.2, 2.0, HID)
        layer.y = y0
        network.run(1 * b2.ms, namespace=_namespace(cfg, None, {}))
        norm = [o for o in objs if o.name == "norm1"][0]
        y_seen = [y0, y0 * np.exp(-1 / 20)]  # summed before or after the trace decayed one step
        e = net.class_codes_[0][1]
        assert any(np.isclose(norm.S_yy[0], np.sum(ys**2)) for ys in y_seen)
        assert any(np.isclose(norm.S_ye[0], np.sum(ys * e)) for ys in y_seen)
        ny = np.sqrt(norm.S_yy[0]) + cfg.plasticity.norm_floor
        # run_regularly ran before the last sums were formed: check the relation one step later
        s_yy, s_ye = norm.S_yy[0], norm.S_ye[0]
        network.run(1 * b2.ms, namespace=_namespace(cfg, None, {}))
        assert norm.ny[0] == pytest.approx(np.sqrt(s_yy) + cfg.plasticity.norm_floor)
        assert norm.cosv[0] == pytest.approx(s_ye / (np.sqrt(s_yy) + cfg.plasticity.norm_floor))
        assert np.all(layer.ny[:] == norm.ny[0]) and np.all(layer.cosv[:] == norm.cosv[0])
        del ny


def test_export_round_trip_matches_the_rate_twin(data):
    X, y, Xt, yt = data
    net = SpikingSpela(SPEC, config=fast_config())
    net.fit(X, y)
    twin = [float(np.mean(p == yt)) for p in net.predict_rate_twin(Xt)]
    clf = net.to_spela_hw()
    exported = clf.score_layers(Xt.astype(np.float32), yt)
    np.testing.assert_allclose(clf.class_vectors_[0], net.class_codes_[0])
    for a, b in zip(twin, exported):
        assert abs(a - b) <= 0.2


def test_ttfs_code_sends_one_spike_per_nonzero_pixel(data):
    X, y, Xt, yt = data
    Xs = X[:3].copy()
    Xs[Xs < 0.2] = 0.0
    net = SpikingSpela(SPEC, config=fast_config(code="ttfs"))
    res = net.evaluate(Xs, y[:3])
    assert res.counts["test"]["layers"][0]["input_spikes"] == pytest.approx(np.mean((Xs > 0).sum(1)))
    assert res.rate_twin_accuracy is None


def test_on_off_pairs_learn_and_refuse_export(data):
    X, y, Xt, yt = data
    cfg = fast_config(sign_policy="on_off_differential")
    net = SpikingSpela(SPEC, config=cfg)
    assert [w.shape for w in net.weights_] == [(2 * HID, N_IN), (12, 2 * HID)]
    assert (net.class_codes_[0] < 0).any()
    res = net.fit(X, y, X_test=Xt, y_test=yt)
    assert res.layer_accuracy[0] > 0.5
    with pytest.raises(MappingError, match="nonnegative"):
        net.to_spela_hw()


def test_quantized_variant_keeps_weights_on_the_8_bit_grid(data):
    X, y, Xt, yt = data
    q = QuantizationConfig(weight_bits=8)
    net = SpikingSpela(SPEC, config=fast_config(quantization=q))
    res = net.fit(X, y, X_test=Xt, y_test=yt)
    from mappings.brian2.network import weight_step

    for w in net.weights_:
        lsb = weight_step(net.config, w.shape[1])
        assert lsb == pytest.approx(2.0 / 127)  # fan-ins 24 and 12: four He bounds exceed w_max
        np.testing.assert_allclose(w / lsb, np.round(w / lsb), atol=1e-9)
        assert np.abs(w).max() <= 2.0 + 1e-12
    assert weight_step(net.config, 784) == pytest.approx(0.5 / 127)  # one shared exponent per group
    assert max(res.layer_accuracy) > 0.5
