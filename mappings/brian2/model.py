"""``SpikingSpela``: a network spec plus the SPELA rule run as spiking plasticity in Brian2.

Three uses:

(a) train in spikes from scratch: :meth:`SpikingSpela.fit` (one Brian2 run for the whole training
    schedule followed by the test samples with the gate closed);
(b) run rate-trained ``spela_hw`` weights as spikes: :meth:`SpikingSpela.from_spela_hw`
    (rate-to-spike conversion with threshold balancing) then :meth:`SpikingSpela.evaluate`;
(c) export spike-trained weights back to ``spela_hw``: :meth:`SpikingSpela.to_spela_hw` (a fitted
    ``SpelaClassifier`` to evaluate with the rate model and price with ``sim``).

Units. Spiking weights ``w`` are jumps of the membrane potential per input spike in threshold
units; ``b`` is the constant drive (the potential the membrane would settle at without input).
The rate twin of a layer (docs/spiking.md §8.2): ``v_inf = b + tau_m * sum_i w_i r_i`` with the
LIF rate ``phi(v_inf) = 1/(t_ref + tau_m ln(v_inf/(v_inf - 1)))`` (or the IF rate without leak).
Its linearisation ``h = v_inf - 1``, rate ``~ h/tau_m``, gives the rate-model parameters
``W_1 = tau_m r_max w_1``, ``W_k = w_k`` (k > 1) and ``B_k = b_k - 1``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np

from spela_hw.errors import ConfigError, MappingError
from spela_hw.specs import NetworkSpec, Sgd, Spela

from .codes import check_codes, layer_codes
from .config import NeuronConfig, SpikingConfig
from .network import LayerPlan, merge_runs, resolve_target, run_per_sample_loop, run_schedule
from .results import SpikingResult, readout, spike_counts
from .schedule import Schedule, check_images, make_schedule

__all__ = ["SpikingSpela"]

log = logging.getLogger(__name__)


class SpikingSpela:
    """A spiking SPELA network.

    Parameters
    ----------
    spec : NetworkSpec
        Layer widths in *units* (``(784, 400, 10)``); under ON/OFF pairs every unit is two neurons.
    rule : Spela, optional
        Its ``loss`` is used (``log_2_minus_cos`` or ``neg_cos``). ``input_norm`` must be ``off``:
        per-sample normalisation of rates is not part of the mapping.
    config : SpikingConfig, optional
    class_codes : list of arrays, optional
        ``(n_classes, width)`` codes per layer; by default derived from ``class_code_seed`` with
        the config's sign policy (see :mod:`mappings.brian2.codes`).
    weights, biases : lists of arrays, optional
        Initial spiking parameters ``(neurons, pre-neurons)``; drawn from ``spec.init`` otherwise.
    class_code_seed : int
    learnable : bool
        ``False`` for converted networks: inference only, read-out codes of any sign.

    Attributes
    ----------
    weights_, biases_ : lists of float64 arrays (spiking units)
    class_codes_ : list of ``(n_classes, width)`` arrays
    result_ : SpikingResult of the last run
    """

    def __init__(self, spec: NetworkSpec, rule: Spela | None = None, config: SpikingConfig | None = None,
                 class_codes=None, weights=None, biases=None, class_code_seed: int = 0,
                 learnable: bool = True):
        if not isinstance(spec, NetworkSpec):
            raise ConfigError("spec", f"must be a NetworkSpec, got {type(spec).__name__}")
        rule = Spela() if rule is None else rule
        if not isinstance(rule, Spela):
            raise MappingError(f"rule: the spiking mapping implements SPELA only, got {type(rule).__name__}")
        if rule.input_norm != "off":
            raise MappingError("rule.input_norm: per-sample input normalisation has no spiking "
                               f"counterpart in this mapping; use 'off', got {rule.input_norm!r}")
        if spec.activation != "leaky_relu":
            raise MappingError(f"spec.activation: LIF rates approximate a (leaky) ReLU, got {spec.activation!r}")
        config = SpikingConfig() if config is None else config
        if not isinstance(config, SpikingConfig):
            raise ConfigError("config", f"must be a SpikingConfig, got {type(config).__name__}")
        pl = config.plasticity
        if pl.eta is not None and len(pl.eta) != spec.n_layers:
            raise ConfigError("plasticity.eta", f"needs one rate per layer ({spec.n_layers}), got {len(pl.eta)}")
        self.spec, self.rule, self.config = spec, rule, config
        self.learnable = learnable
        self.on_off = pl.sign_policy == "on_off_differential"
        self.class_code_seed = int(class_code_seed)
        units = spec.dims[1:]
        if class_codes is None:
            self.class_codes_ = [layer_codes(spec.n_classes, m, self.class_code_seed, k, pl.sign_policy,
                                             pl.class_codes, pl.code_density) for k, m in enumerate(units)]
        else:
            if len(class_codes) != spec.n_layers:
                raise MappingError(f"class_codes: need one code matrix per layer ({spec.n_layers}), "
                                   f"got {len(class_codes)}")
            policy = pl.sign_policy if learnable else "on_off_differential"  # read-out only: any sign
            self.class_codes_ = [check_codes(c, spec.n_classes, m, policy, k)
                                 for k, (c, m) in enumerate(zip(class_codes, units))]
        self.neurons = [m * (2 if self.on_off else 1) for m in units]
        self.off_gains_ = [1.0] * spec.n_layers
        self.pre_neurons = [spec.dims[0]] + self.neurons[:-1]
        if weights is None:
            self.weights_, self.biases_ = self._init_params()
        else:
            self.weights_, self.biases_ = self._check_params(weights, biases)

    # -- parameters ----------------------------------------------------------------------------
    def _init_params(self):
        rng = np.random.default_rng([self.config.backend.seed, 0xB2])
        ws, bs = [], []
        for m, n in zip(self.neurons, self.pre_neurons):
            if self.spec.init == "he_uniform":
                w = rng.uniform(-math.sqrt(6 / n), math.sqrt(6 / n), size=(m, n))
            else:
                w = rng.normal(0.0, math.sqrt(2 / n), size=(m, n))
            b = rng.uniform(-1 / math.sqrt(n), 1 / math.sqrt(n), m) if self.spec.bias_init == "uniform_fan_in" \
                else np.zeros(m)
            ws.append(w)
            bs.append(b)
        return ws, bs

    def _check_params(self, weights, biases):
        if biases is None or len(weights) != self.spec.n_layers or len(biases) != self.spec.n_layers:
            raise MappingError(f"weights/biases: need {self.spec.n_layers} of each")
        ws, bs = [], []
        for k, (w, b, m, n) in enumerate(zip(weights, biases, self.neurons, self.pre_neurons)):
            w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
            if w.shape != (m, n):
                raise MappingError(f"weights[{k}]: expected shape {(m, n)} for spec {self.spec.dims}, got {w.shape}")
            if b.shape != (m,):
                raise MappingError(f"biases[{k}]: expected shape {(m,)}, got {b.shape}")
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise MappingError(f"weights[{k}]: contains NaN or infinity")
            ws.append(w.copy())
            bs.append(b.copy())
        return ws, bs

    def learning_rates(self) -> list[float]:
        """Per-layer ``eta``: given, or ``lr_eff / (T_gate * r_pre)`` (docs/spiking.md §2.3)."""
        pl, enc = self.config.plasticity, self.config.encoding
        if pl.eta is not None:
            return list(pl.eta)
        gate_s = enc.gate_ms * 1e-3
        rates = [enc.rate_max_hz] + [pl.hidden_rate_hz] * (self.spec.n_layers - 1)
        return [pl.lr_eff / (gate_s * r) for r in rates]

    def rate_equivalent_lr(self) -> list[float]:
        """Per-layer SGD learning rate of the exported rate model (:meth:`to_rate_params` units)
        that moves the weights as far per sample as the spiking rule does at gain G = 1.

        Per sample the spiking rule moves ``w`` by ``eta T_gate r_pre delta`` on average; with
        ``r_pre = r_max x`` (input) or ``h/tau_m`` (hidden) and the export scales this is
        ``eta T_gate tau_m r_max^2`` for the first layer and ``eta T_gate / tau_m`` after it.
        """
        enc, tau = self.config.encoding, self.config.neuron.tau_m_ms * 1e-3
        gate_s = enc.gate_ms * 1e-3
        etas = self.learning_rates()
        return [eta * gate_s * tau * enc.rate_max_hz**2 if k == 0 else eta * gate_s / tau
                for k, eta in enumerate(etas)]

    def _plans(self) -> list[LayerPlan]:
        etas = self.learning_rates()
        ratio = self.config.plasticity.eta_bias_ratio
        return [LayerPlan(w, b, c, eta, eta * ratio)
                for w, b, c, eta in zip(self.weights_, self.biases_, self.class_codes_, etas)]

    # -- running -------------------------------------------------------------------------------
    def fit(self, X, y, epochs: int = 1, X_test=None, y_test=None, shuffle_seed: int | None = 0,
            curve_blocks: int = 10, loop: bool = False, chunk_samples: int | None = None,
            progress=None) -> SpikingResult:
        """Learn in spikes, then (in the same run) test with the gate closed.

        ``loop=True`` runs the straightforward one-``run()``-per-sample-phase loop instead of one
        run (runtime targets; for the benchmark). ``chunk_samples`` splits a long schedule into
        runs of that many samples (weights carried over) to bound the memory of the image table
        (8 bytes per pixel per sample). ``progress(text)``, when given, hears the build and the
        samples simulated so far (see :func:`~mappings.brian2.network.run_schedule`). Updates
        ``weights_``/``biases_``.
        """
        if chunk_samples is not None and (isinstance(chunk_samples, bool) or not isinstance(chunk_samples, int)
                                          or chunk_samples < 1):
            raise ConfigError("chunk_samples", f"must be a positive integer or None, got {chunk_samples!r}")
        if not self.learnable:
            raise MappingError("this network was converted for inference only; it cannot learn")
        sched = make_schedule(X, y, X_test, y_test, epochs, self.spec.dims[0], self.spec.n_classes,
                              self.config.plasticity.schedule, shuffle_seed,
                              self.config.plasticity.decay_samples)
        y_test = None if y_test is None else np.asarray(y_test).astype(np.int64)
        return self._run(sched, learn=True, y_test=y_test, y_train=sched.labels[sched.train],
                         curve_blocks=curve_blocks, loop=loop, chunk_samples=chunk_samples, progress=progress)

    def evaluate(self, X, y, loop: bool = False, progress=None) -> SpikingResult:
        """Inference only (static synapses, no normaliser): accuracy at every layer's read-out."""
        sched = make_schedule(None, None, X, y, 0, self.spec.dims[0], self.spec.n_classes)
        return self._run(sched, learn=False, y_test=np.asarray(y).astype(np.int64), loop=loop, progress=progress)

    def _run_chunked(self, plans, sched: Schedule, learn: bool, chunk: int, progress=None):
        """Consecutive runs of ``chunk`` samples each, weights carried over (bounded memory: the
        image table of one run holds one chunk). With ``reset_at_onset`` no other state crosses
        a sample boundary, so chunking changes nothing but the random streams (seed + chunk)."""
        import shutil
        import tempfile

        cfg = self.config
        tmp = None
        if cfg.backend.build_dir is None and not cfg.backend.build_cache \
                and resolve_target(cfg.backend.target) == "cpp_standalone":
            # one project directory for every chunk: unchanged sources are not recompiled
            tmp = tempfile.mkdtemp(prefix="spela_brian2_chunks_")
            cfg = replace(cfg, backend=replace(cfg.backend, build_dir=tmp))
        parts = []
        try:
            for i, a in enumerate(range(0, sched.n_samples, chunk)):
                raw = run_schedule(cfg, self.spec.dims[0], plans, sched.slice(a, a + chunk),
                                   self.rule.loss, learn, seed_offset=i, progress=progress)
                log.info("chunk %d: samples %d-%d, wall %.1f s", i, a, min(a + chunk, sched.n_samples), raw.wall_s)
                if progress is not None:
                    progress(f"chunk {i + 1}: samples {a}-{min(a + chunk, sched.n_samples)} of {sched.n_samples} "
                             f"done ({raw.wall_s:.0f} s)")
                plans = [LayerPlan(w, b, p.codes, p.eta, p.eta_b) for w, b, p in zip(raw.weights, raw.biases, plans)]
                parts.append(raw)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        return merge_runs(parts)

    def _run(self, sched: Schedule, learn: bool, y_test=None, y_train=None, curve_blocks: int = 10,
             loop: bool = False, chunk_samples: int | None = None, progress=None) -> SpikingResult:
        plans = self._plans()
        if loop:
            raw = run_per_sample_loop(self.config, self.spec.dims[0], plans, sched, self.rule.loss, learn)
        elif chunk_samples and sched.n_samples > chunk_samples:
            raw = self._run_chunked(plans, sched, learn, chunk_samples, progress)
        else:
            raw = run_schedule(self.config, self.spec.dims[0], plans, sched, self.rule.loss, learn,
                               progress=progress)
        if learn:
            self.weights_, self.biases_ = raw.weights, raw.biases
        n_tr = sched.n_train
        acc, silent, twin = [], [], None
        test_images = sched.images[n_tr:]
        if sched.n_test and y_test is not None:
            for k, codes in enumerate(self.class_codes_):
                pred, sil = readout(raw.counts[k][n_tr:], codes, self.on_off, self.off_gains_[k])
                acc.append(float(np.mean(pred == y_test)))
                silent.append(float(np.mean(sil)))
            if self.config.encoding.code != "ttfs":
                twin = tuple(float(np.mean(p == y_test)) for p in self.predict_rate_twin(test_images))
        curve = []
        if n_tr and y_train is not None:
            edges = np.linspace(0, n_tr, max(1, min(curve_blocks, n_tr)) + 1).astype(int)
            for a, b in zip(edges[:-1], edges[1:]):
                accs = [float(np.mean(readout(raw.counts[k][a:b], c, self.on_off, self.off_gains_[k])[0]
                                      == y_train[a:b]))
                        for k, c in enumerate(self.class_codes_)]
                curve.append({"samples_seen": int(b), "accuracy": accs})
        counts = spike_counts(raw, sched, plans, self.config, self.spec.n_classes, learn)
        info = {"config": self.config.to_dict(), "dims": list(self.spec.dims), "loss": self.rule.loss,
                "sign_policy": self.config.plasticity.sign_policy,
                "class_codes": self.config.plasticity.class_codes if self.learnable else "given",
                "n_train": int(n_tr), "n_test": int(sched.n_test),
                "epochs": int(sched.epoch.max() + 1) if n_tr else 0,
                "eta": self.learning_rates() if learn else None, "loop": loop,
                "chunk_samples": chunk_samples, **raw.extra}
        self.result_ = SpikingResult("train" if learn else "inference", tuple(acc), twin, curve,
                                     tuple(silent), counts, raw.target, raw.wall_s, raw.build_s,
                                     raw.sim_s, info)
        return self.result_

    # -- rate twin -----------------------------------------------------------------------------
    def rate_twin_rates(self, X) -> list[np.ndarray]:
        """Noise-free firing rates (Hz) of every layer from the LIF (or IF) rate function."""
        X = check_images(X, self.spec.dims[0])
        neu, enc = self.config.neuron, self.config.encoding
        tau, tref = neu.tau_m_ms * 1e-3, neu.t_ref_ms * 1e-3
        r = X * enc.rate_max_hz
        out = []
        for w, b in zip(self.weights_, self.biases_):
            if neu.leak:
                v = b + tau * (r @ w.T)
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = np.where(v > 1, 1.0 / (tref + tau * np.log(v / np.maximum(v - 1, 1e-300))), 0.0)
            else:
                drive = np.maximum(b / tau + r @ w.T, 0.0)
                r = drive / (1.0 + drive * tref)
            out.append(r)
        return out

    def predict_rate_twin(self, X) -> list[np.ndarray]:
        """Predicted classes at every layer from the rate twin."""
        return [readout(r, c, self.on_off, g)[0]
                for r, c, g in zip(self.rate_twin_rates(X), self.class_codes_, self.off_gains_)]

    # -- conversion ----------------------------------------------------------------------------
    def to_rate_params(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Rate-model (``spela_hw``) weights and biases of the linearised rate twin."""
        if self.on_off:
            raise MappingError("export needs sign_policy='nonnegative': an ON/OFF layer feeds both "
                               "halves of its pairs to the next layer, which a dense rate layer of "
                               "the spec's width cannot represent")
        scale0 = self.config.neuron.tau_m_ms * 1e-3 * self.config.encoding.rate_max_hz
        ws = [w * (scale0 if k == 0 else 1.0) for k, w in enumerate(self.weights_)]
        bs = [b - 1.0 for b in self.biases_]
        return ws, bs

    def to_spela_hw(self, **params):
        """A fitted ``SpelaClassifier`` holding the exported weights and these class codes."""
        from spela_hw import SpelaClassifier

        ws, bs = self.to_rate_params()
        params.setdefault("rule", self.rule)
        params.setdefault("slope", self.spec.slope)
        clf = SpelaClassifier.from_weights(ws, bs, classes=np.arange(self.spec.n_classes), **params)
        install_class_vectors(clf, self.class_codes_)
        return clf

    @classmethod
    def from_spela_hw(cls, clf, X_calibration, config: SpikingConfig | None = None,
                      percentile: float = 99.9, signed: bool = True,
                      output_rate_hz: float | None = None) -> "SpikingSpela":
        """Rate-to-spike conversion of a fitted ``spela_hw`` classifier (threshold balancing).

        Each layer's activations on ``X_calibration`` give ``lambda_k`` (the ``percentile``-th
        value, pixels ``lambda_0 = 1``); weights become ``W_k lambda_{k-1}/lambda_k`` and the bias a
        drive ``tau_m R B_k/lambda_k``, so a unit at ``lambda_k`` fires at ``R`` (the input's
        ``rate_max_hz``). Neurons are non-leaky IF with reset by subtraction and no refractory
        period (rates linear in the drive). The read-out uses the classifier's own (signed) class
        vectors. The result is inference only.

        ``signed=True`` (default) keeps LeakyReLU's negative branch: every unit becomes an ON
        neuron (rate ~ relu(a)) and an OFF neuron (rate ~ relu(-a), its own scale), the next layer
        hears the OFF neurons through ``-slope * W`` and the read-out is
        ``count_on - slope * lambda_off/lambda_on * count_off``; this is exact in the rate limit
        and matters where the targets are signed (a 10-wide output layer with simplex vectors
        has most of its outputs negative). ``signed=False`` keeps ON neurons only (ReLU).

        ``output_rate_hz`` (default ``4 R``, at most one spike per step) is the rate of the last
        layer at ``lambda``: it feeds nothing, so finer spike counts there cost few spikes and
        reduce the read-out's quantisation noise.
        """
        rule = getattr(clf, "rule_", None)
        if not isinstance(rule, Spela):
            raise MappingError("from_spela_hw: the classifier must be a fitted SpelaClassifier")
        if rule.input_norm != "off":
            raise MappingError("rule.input_norm: conversion supports 'off' only")
        spec = clf.network_spec_
        if not 0 < percentile <= 100:
            raise ConfigError("percentile", f"must lie in (0, 100], got {percentile}")
        base = SpikingConfig() if config is None else config
        neuron = NeuronConfig(tau_m_ms=base.neuron.tau_m_ms, t_ref_ms=0.0, reset="subtract", leak=False,
                              tau_y_ms=base.neuron.tau_y_ms)
        policy = "on_off_differential" if signed else "nonnegative"
        cfg = replace(base, neuron=neuron, plasticity=replace(base.plasticity, sign_policy=policy))
        R = base.encoding.rate_max_hz
        R_out = 4.0 * R if output_rate_hz is None else float(output_rate_hz)
        if not 0 < R_out <= 1e3 / base.backend.dt_ms:
            raise ConfigError("output_rate_hz", f"must lie in (0, 1/dt], got {R_out}")
        tau = cfg.neuron.tau_m_ms * 1e-3
        alpha = spec.slope
        x = check_images(X_calibration, spec.dims[0], "X_calibration")
        h = x
        lam_on_prev, lam_off_prev = 1.0, None  # pixels: rate R*x, no OFF inputs
        sw, sb, gains = [], [], []
        for w, b in zip(clf.weights_, clf.biases_):
            a = h @ w.T + b
            h = np.where(a > 0, a, alpha * a)
            lam_on = float(np.percentile(np.maximum(a, 0), percentile))
            lam_off = float(np.percentile(np.maximum(-a, 0), percentile)) or 1.0
            if lam_on <= 0:
                raise MappingError("from_spela_hw: a layer is silent on the calibration data")
            if len(sw) == spec.n_layers - 1:  # last layer: its own target rate
                lam_on, lam_off = lam_on * R / R_out, lam_off * R / R_out
            # coefficients on the previous layer's ON rates (and OFF rates)
            from_on = w * lam_on_prev
            blocks_on = [from_on / lam_on]
            blocks_off = [-from_on / lam_off]
            if lam_off_prev is not None:
                from_off = -alpha * w * lam_off_prev
                blocks_on.append(from_off / lam_on)
                blocks_off.append(-from_off / lam_off)
            if signed:
                sw.append(np.vstack([np.hstack(blocks_on), np.hstack(blocks_off)]))
                sb.append(np.concatenate([tau * R * b / lam_on, -tau * R * b / lam_off]))
                lam_off_prev = lam_off
            else:
                sw.append(blocks_on[0])
                sb.append(tau * R * b / lam_on)
            gains.append(alpha * lam_off / lam_on)
            lam_on_prev = lam_on
        net = cls(spec, rule, cfg, class_codes=clf.class_vectors_, weights=sw, biases=sb, learnable=False)
        net.off_gains_ = gains if signed else [1.0] * spec.n_layers
        return net


def install_class_vectors(clf, codes) -> None:
    """Make a fitted ``spela_hw`` classifier read out (and learn) with the given unit codes.

    ``spela_hw`` derives its class vectors from a seed; the spiking mapping needs non-negative
    codes, so they are swapped into the classifier's state here.
    """
    state, ops = clf.state_, clf._ops
    for k, c in enumerate(codes):
        c = np.asarray(c, np.float64)
        vq, vn, s = ops.store_class_vectors(c)
        state.unit_vectors[k] = c
        state.vectors[k] = vq
        state.vector_norms[k] = vn
        state.vector_scales[k] = s


def rate_spela_with_codes(spec: NetworkSpec, codes, lr: float, seed: int = 0, **params):
    """An unfitted-equivalent ``SpelaClassifier`` (He init) reading out with ``codes``, for
    comparing rate SPELA and spiking SPELA with the same class codes."""
    from spela_hw import SpelaClassifier

    rng = np.random.default_rng(seed)
    ws, bs = [], []
    for m, n in spec.layer_shapes():
        ws.append(rng.uniform(-math.sqrt(6 / n), math.sqrt(6 / n), (m, n)))
        bs.append(rng.uniform(-1 / math.sqrt(n), 1 / math.sqrt(n), m))
    params.setdefault("rule", Spela(optimizer=Sgd(lr)))
    clf = SpelaClassifier.from_weights(ws, bs, classes=np.arange(spec.n_classes), random_state=seed, **params)
    install_class_vectors(clf, codes)
    return clf
