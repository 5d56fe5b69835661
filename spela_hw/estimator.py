"""scikit-learn-style estimators over the learning rules (no scikit-learn dependency).

Hyper-parameters are stored verbatim by ``__init__`` and validated in ``fit``; learned state ends
in ``_``. One class, :class:`Classifier`, runs any rule; :class:`SpelaClassifier` and
:class:`BackpropClassifier` only change the default rule, so every rule shares one training loop,
one set of counts and one file format.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np

from .backends import BACKENDS, make_ops
from .blas import one_blas_thread
from .errors import ConfigError, DataError, DivergenceError
from .network import init_network
from .rules import init_rule_state, rule_for, train_chunk
from .rules.common import forward_all, new_counts, readout_layers, readout_predictions, uses_logit_readout
from .rules.optim import is_stateful
from .specs import DEFAULT_SR_BITS, NetworkSpec, PrecisionSpec, Spela, Backprop

__all__ = ["Classifier", "SpelaClassifier", "BackpropClassifier"]

log = logging.getLogger(__name__)

_PREDICT_BATCH = 2048


def check_n_jobs(n_jobs, field: str = "n_jobs") -> None:
    """``n_jobs`` as scikit-learn takes it: ``None``, -1 (all cores) or a positive integer (errors
    name ``field``: the CLI's is ``jobs``)."""
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))
                               or not (n_jobs >= 1 or n_jobs == -1)):
        raise ConfigError(field, f"must be -1 (all cores) or a positive integer, got {n_jobs!r}")


def kernel_threads(n_jobs) -> int:
    """Threads ``n_jobs`` allows within numba's thread pool (which ``NUMBA_NUM_THREADS`` caps,
    e.g. to 1 in each worker of a report or sweep)."""
    import numba

    available = numba.get_num_threads()
    return available if n_jobs == -1 else min(int(n_jobs or 1), available)


def check_xy(X, y=None, n_features=None, name="X"):
    """Validate features (finite, 2-D, float) and labels (1-D integers of the same length)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D (samples, features), got shape {X.shape}")
    if X.dtype == np.uint8:
        X = X.astype(np.float32) / 255.0
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{name} must be numeric, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.all(np.isfinite(X)):
        raise DataError(f"{name} contains NaN or infinite values")
    if n_features is not None and X.shape[1] != n_features:
        raise DataError(f"{name} has {X.shape[1]} features, the model expects {n_features}")
    if y is None:
        return X
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(f"y must be 1-D with one label per row of {name}: got shape {y.shape} for {len(X)} rows")
    if len(y) == 0:
        raise DataError("no samples")
    return X, y


class Classifier:
    """A feed-forward classifier trained by a forward-only or backprop rule, bit-true.

    Parameters
    ----------
    layer_sizes : tuple of int
        Widths of the trained layers, input excluded (``(1024, 10)`` makes 784-1024-10).
    rule : Spela, Backprop or another rule spec
    precision : PrecisionSpec or None
        ``None`` is float32.
    activation, slope, init, bias_init :
        See :class:`~spela_hw.specs.NetworkSpec`.
    batch_size : int
        1 is the per-sample edge mode (one weight update per sample); mean reduction otherwise.
        At most the number of samples given to ``fit``.
    epochs : int
    shuffle : bool
        Reshuffle every epoch (seeded); ``False`` keeps the data order.
    backend : {"numba", "reference"}
    device : DeviceModel or None
        Functional device model called during training (float32 only). Like every
        hyper-parameter it is never changed: ``fit`` programs and trains a deep copy, the learned
        attribute ``device_`` (read the device's state after training, its write counts or
        lifetime, from there).
    random_state : int >= 0 or None
        Seeds initialisation, class vectors, shuffling and stochastic rounding.
    class_vector_seed : int or None
        Seed of the class vectors (derived from ``random_state`` when ``None``).
    progress : bool
        Show a progress bar on stderr.
    n_jobs : int or None
        Most kernel threads of the numba backend, as in scikit-learn: ``-1`` (default) allows the
        cores this process may run on, ``None`` or 1 keeps to one thread. The fused SPELA kernels
        use at most two, and only in stretches where a thread chooser measures them faster than
        one (so a busy machine falls back to one). The per-step paths (backprop, sigprop, and
        float32 SPELA mini-batches of wide hidden layers) run BLAS on one thread
        (:mod:`spela_hw.blas`). Results never depend on it, bit for bit.
    """

    _default_rule = Spela

    def __init__(self, layer_sizes=(1024, 10), rule=None, precision=None, activation="leaky_relu",
                 slope=0.001, init="he_uniform", bias_init="uniform_fan_in", batch_size=1, epochs=1,
                 shuffle=True, backend="numba", device=None, random_state=None,
                 class_vector_seed=None, progress=False, n_jobs=-1):
        self.layer_sizes = layer_sizes
        self.rule = rule
        self.precision = precision
        self.activation = activation
        self.slope = slope
        self.init = init
        self.bias_init = bias_init
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.backend = backend
        self.device = device
        self.random_state = random_state
        self.class_vector_seed = class_vector_seed
        self.progress = progress
        self.n_jobs = n_jobs

    # -- scikit-learn protocol -----------------------------------------------------------------
    def get_params(self, deep=True):
        import inspect

        names = [p for p in inspect.signature(Classifier.__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params):
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ConfigError(k, f"unknown parameter of {type(self).__name__}")
            setattr(self, k, v)
        if "n_jobs" in params and hasattr(self, "_ops"):
            self._validate_n_jobs()
            self._ops.threads = self._kernel_threads()
        return self

    def __repr__(self):
        return f"{type(self).__name__}(layer_sizes={self.layer_sizes!r}, rule={self.rule!r})"

    # -- validation ----------------------------------------------------------------------------
    def _resolved_rule(self):
        return self.rule if self.rule is not None else self._default_rule()

    def _validate(self, n_features, n_classes):
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ConfigError("batch_size", f"must be a positive integer, got {self.batch_size!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)) or self.epochs < 0:
            raise ConfigError("epochs", f"must be a non-negative integer, got {self.epochs!r}")
        for name in ("random_state", "class_vector_seed"):
            seed = getattr(self, name)
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
                raise ConfigError(name, f"must be None or a non-negative integer, got {seed!r}")
        if self.backend not in BACKENDS:
            raise ConfigError("backend", f"must be one of {BACKENDS}, got {self.backend!r}")
        self._validate_n_jobs()
        precision = self.precision if self.precision is not None else PrecisionSpec()
        if not isinstance(precision, PrecisionSpec):
            raise ConfigError("precision", f"must be a PrecisionSpec, got {type(precision).__name__}")
        if self.device is not None and precision.is_fixed:
            raise ConfigError("device", "device models run with float32 weights (precision=None)")
        sizes = tuple(self.layer_sizes)
        spec = NetworkSpec((n_features, *sizes), n_classes=n_classes, activation=self.activation,
                           slope=self.slope, init=self.init, bias_init=self.bias_init)
        rule = self._resolved_rule()
        rule_for(rule)  # a spec the toolkit implements
        if precision.sr_bits != DEFAULT_SR_BITS and is_stateful(rule.optimizer):
            raise ConfigError("precision.sr_bits", f"sets the SR unit of plain SGD updates, got {precision.sr_bits} "
                                                   f"with an optimiser with state (Adam, SGD with momentum), whose "
                                                   f"steps round with 24 random bits: use the default {DEFAULT_SR_BITS}")
        if getattr(rule, "loss", None) == "softmax_ce" and sizes[-1] != n_classes:
            raise ConfigError("layer_sizes", f"backprop's last layer must have one unit per class ({n_classes})")
        return spec, precision, rule

    def _validate_n_jobs(self):
        check_n_jobs(self.n_jobs)

    def _kernel_threads(self) -> int:
        return kernel_threads(self.n_jobs)

    def _seeds(self):
        ss = np.random.SeedSequence(self.random_state)
        init_seed, cv_seed, shuffle_seed, round_seed = ss.generate_state(4)
        if self.class_vector_seed is not None:
            cv_seed = self.class_vector_seed
        return int(init_seed), int(cv_seed), int(shuffle_seed), int(round_seed)

    def _initialize(self, n_features, classes, weights=None, biases=None):
        classes = np.unique(classes)
        spec, precision, rule = self._validate(n_features, len(classes))
        init_seed, cv_seed, shuffle_seed, round_seed = self._seeds()
        ops = make_ops(self.backend, precision, spec)
        self.classes_ = classes
        self.n_features_in_ = n_features
        self.network_spec_ = spec
        self.precision_ = precision
        self.rule_ = rule
        self.class_vector_seed_ = cv_seed
        self.state_ = init_network(spec, precision, ops, getattr(rule, "class_vectors", "auto"), cv_seed,
                                   round_seed, weights, biases, np.random.default_rng(init_seed))
        init_rule_state(self.state_, ops, rule, np.random.default_rng([init_seed, 1]))
        self._ops = ops
        ops.threads = self._kernel_threads()
        self._shuffle_seed = shuffle_seed
        self.train_counts_ = new_counts(self.state_, "train")
        self.epochs_done_ = 0
        self.history_ = []
        # the user's device is a hyper-parameter: training changes a copy of its state only
        self.device_ = copy.deepcopy(self.device)
        if self.device_ is not None:
            for k in range(spec.n_layers):
                w, b = self.device_.program(k, self.state_.weights[k], self.state_.biases[k])
                self.state_.weights[k][...] = w
                self.state_.biases[k][...] = b
        return self

    def _labels_to_index(self, y):
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        if not np.all(self.classes_[idx] == y):
            bad = np.asarray(y)[self.classes_[idx] != y][0]
            raise DataError(f"label {bad.item()!r} is not one of the classes seen in fit: "
                            f"{self.classes_.tolist()}")
        return idx.astype(np.int64)

    # -- training ------------------------------------------------------------------------------
    def fit(self, X, y, eval_set=None, callback=None, classes=None):
        """Train from scratch for ``epochs`` epochs.

        ``eval_set=(X_test, y_test)`` records per-layer accuracy after every epoch in
        ``history_``; ``callback(self, record)`` runs after every epoch (e.g. to checkpoint);
        ``classes`` lists every label when ``y`` (a small subset, say) may miss some.
        Float weights that become NaN or infinite (a learning rate far too large) stop training
        with :class:`~spela_hw.errors.DivergenceError`, before the callback of that epoch.
        """
        X, y = check_xy(X, y)
        self._initialize(X.shape[1], y if classes is None else np.union1d(classes, y))
        return self.continue_fit(X, y, eval_set, callback)

    def continue_fit(self, X, y, eval_set=None, callback=None):
        """Run the epochs still missing up to ``epochs`` (resumes a loaded checkpoint exactly)."""
        self._check_fitted()
        X, y = check_xy(X, y, self.n_features_in_)
        if self.batch_size > len(X):
            raise ConfigError("batch_size", f"{self.batch_size} is larger than the {len(X)} training samples")
        while self.epochs_done_ < self.epochs:
            record = self._run_epoch(X, y, eval_set)
            if callback is not None:
                callback(self, record)
        return self

    def partial_fit(self, X, y, classes=None):
        """One pass over ``(X, y)`` at the current epoch's learning rate (initialises on first call)."""
        X, y = check_xy(X, y, getattr(self, "n_features_in_", None))
        if not hasattr(self, "state_"):
            self._initialize(X.shape[1], y if classes is None else classes)
        self._train_pass(X, self._labels_to_index(y), self.rule_.optimizer.lr_at(self.epochs_done_))
        return self

    def _run_epoch(self, X, y, eval_set=None):
        lr = self.rule_.optimizer.lr_at(self.epochs_done_)
        t0 = time.perf_counter()
        self._train_pass(X, self._labels_to_index(y), lr, desc=f"epoch {self.epochs_done_ + 1}/{self.epochs}")
        seconds = time.perf_counter() - t0
        self.epochs_done_ += 1
        record = {"epoch": self.epochs_done_, "lr": lr, "train_seconds": seconds, "samples": len(X)}
        if eval_set is not None:
            for k, acc in enumerate(self.score_layers(*eval_set)):
                record[f"layer{k + 1}_accuracy"] = acc
        self.history_.append(record)
        log.info("epoch %s", record)
        return record

    def _train_pass(self, X, yi, lr, desc="training"):
        ops, state, rule = self._ops, self.state_, self.rule_
        # The order depends on (seed, epoch) only, so a run resumed from a checkpoint is identical.
        rng = np.random.default_rng([self._shuffle_seed, self.epochs_done_])
        order = rng.permutation(len(X)) if self.shuffle else np.arange(len(X))
        bs = min(int(self.batch_size), len(X))  # a batch larger than the pass is the whole pass
        check_finite = not self.precision_.is_fixed  # integer codes cannot diverge
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(X), desc=desc, unit="sample", leave=False, mininterval=0.5)
        chunk = max(bs, (4096 // bs) * bs)  # quantise inputs a chunk at a time, not per sample
        with one_blas_thread():
            for c0 in range(0, len(X), chunk):
                sel = order[c0:c0 + chunk]
                xq = ops.quantize_input(X[sel])
                yc = yi[sel]
                train_chunk(state, ops, rule, xq, yc, lr, bs, self.train_counts_, device=self.device_)
                if check_finite:
                    self._check_finite(lr, c0 + len(sel))
                if bar is not None:
                    bar.update(len(sel))
        if bar is not None:
            bar.close()

    def _check_finite(self, lr, samples):
        """Raise :class:`DivergenceError` when a float weight or bias is NaN or inf (one read of
        the weights per chunk of thousands of samples: negligible next to training on them)."""
        for k, (w, b) in enumerate(zip(self.state_.weights, self.state_.biases)):
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise DivergenceError(
                    f"training diverged by sample {samples} of epoch {self.epochs_done_ + 1}: layer {k + 1} "
                    f"weights hold NaN or inf (learning rate {lr:g}; try a smaller one). The estimator's "
                    f"weights are now invalid; the last checkpoint, if any, is untouched")

    # -- inference -----------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "state_"):
            from .errors import SpelaError

            raise SpelaError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def _layer_index(self, layer):
        n = self.network_spec_.n_layers
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n <= layer < n:
            raise ConfigError("layer", f"must be an integer in [{-n}, {n - 1}], got {layer!r}")
        return int(layer) % n

    def _outputs(self, X, upto, counts=None):
        """Per-layer outputs for X in chunks: yields (rows, list of h)."""
        normalize = getattr(self.rule_, "input_norm", "off") == "every_layer"
        with one_blas_thread():  # also around the caller's read-outs, which run between yields
            for s0 in range(0, len(X), _PREDICT_BATCH):
                xq = self._ops.quantize_input(X[s0:s0 + _PREDICT_BATCH])
                yield s0, forward_all(self.state_, self._ops, xq, normalize, upto, counts,
                                      logits_last=uses_logit_readout(self.rule_))

    def _readout(self, k, h, counts=None):
        """(predictions, scores) at layer k: argmax of the logits at a backprop model's last layer,
        cosine to the class vectors everywhere else."""
        logits = uses_logit_readout(self.rule_) and k == self.network_spec_.n_layers - 1
        return readout_predictions(self.state_, self._ops, k, h, counts, logits=logits)

    def decision_function(self, X, layer=-1):
        """Read-out scores ``V_k h_k`` ``(n_samples, n_classes)`` at ``layer`` (cosine x |h|);
        the logits at the last layer of a model read out by logits (backprop)."""
        self._check_fitted()
        X = check_xy(X, n_features=self.n_features_in_)
        k = self._layer_index(layer)
        out = np.empty((len(X), len(self.classes_)), np.float64)
        for s0, hs in self._outputs(X, k):
            out[s0:s0 + len(hs[k])] = self._readout(k, hs[k])[1]
        return out

    def predict_layers(self, X, counts=None):
        """Predicted labels at every layer: array ``(n_layers, n_samples)``."""
        self._check_fitted()
        X = check_xy(X, n_features=self.n_features_in_)
        L = self.network_spec_.n_layers
        out = np.empty((L, len(X)), np.int64)
        for s0, hs in self._outputs(X, L - 1, counts):
            for k in range(L):
                out[k, s0:s0 + len(hs[k])] = self._readout(k, hs[k], counts)[0]
        if counts is not None:
            counts.samples += len(X)
        return self.classes_[out]

    def predict(self, X, layer=-1):
        """Predicted labels at ``layer`` (every layer is an exit; default the last)."""
        self._check_fitted()
        X = check_xy(X, n_features=self.n_features_in_)
        k = self._layer_index(layer)
        out = np.empty(len(X), np.int64)
        for s0, hs in self._outputs(X, k):
            out[s0:s0 + len(hs[k])] = self._readout(k, hs[k])[0]
        return self.classes_[out]

    def score(self, X, y, layer=-1):
        """Accuracy at ``layer``."""
        X, y = check_xy(X, y, self.n_features_in_ if hasattr(self, "n_features_in_") else None)
        return float(np.mean(self.predict(X, layer) == y))

    def score_layers(self, X, y):
        """Accuracy at every layer's read-out (list, first layer first)."""
        X, y = check_xy(X, y, getattr(self, "n_features_in_", None))
        return [float(np.mean(p == y)) for p in self.predict_layers(X)]

    @property
    def readout_layers_(self) -> tuple[int, ...]:
        """Layers (0-based) whose read-out the rule trains: all of them for SPELA and sigprop, the
        output only for backprop. ``score_layers`` and ``history_`` still hold every layer's cosine
        read-out; at a backprop hidden layer it is not a measure of the model."""
        self._check_fitted()
        return readout_layers(self.rule_, self.network_spec_.n_layers)

    def inference_counts(self, X, exit_layer=-1, readout="exit"):
        """Counts of inferring ``X`` up to ``exit_layer`` with a read-out at the exit (or every layer)."""
        self._check_fitted()
        X = check_xy(X, n_features=self.n_features_in_)
        k = self._layer_index(exit_layer)
        counts = new_counts(self.state_, "infer")
        for s0, hs in self._outputs(X, k, counts):
            for j in (range(k + 1) if readout == "all" else [k]):
                self._readout(j, hs[j], counts)
        counts.samples += len(X)
        return counts

    # -- parameters ----------------------------------------------------------------------------
    @property
    def weights_(self):
        """Real-valued weight matrices ``(fan_out, fan_in)`` (float64 copies)."""
        self._check_fitted()
        return [self._ops.layer(k).real_params(w, b)[0]
                for k, (w, b) in enumerate(zip(self.state_.weights, self.state_.biases))]

    @property
    def biases_(self):
        self._check_fitted()
        return [self._ops.layer(k).real_params(w, b)[1]
                for k, (w, b) in enumerate(zip(self.state_.weights, self.state_.biases))]

    @property
    def class_vectors_(self):
        """Unit class vectors of every layer, ``(n_classes, width)`` float64."""
        self._check_fitted()
        return [v.copy() for v in self.state_.unit_vectors]

    @classmethod
    def from_weights(cls, weights, biases, classes=None, **params):
        """A fitted classifier holding the given real-valued weights (quantised if fixed point)."""
        weights = [np.asarray(w, np.float64) for w in weights]
        biases = [np.asarray(b, np.float64) for b in biases]
        for k, (w, b) in enumerate(zip(weights, biases)):
            if w.ndim != 2 or b.shape != (w.shape[0],) or (k and w.shape[1] != weights[k - 1].shape[0]):
                raise DataError(f"layer {k}: weight {w.shape} and bias {b.shape} do not chain")
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise DataError(f"layer {k}: weights contain NaN or inf")
        params.setdefault("layer_sizes", tuple(w.shape[0] for w in weights))
        clf = cls(**params)
        classes = np.arange(10) if classes is None else np.asarray(classes)
        return clf._initialize(weights[0].shape[1], classes, weights, biases)

    @classmethod
    def from_preset(cls, name: str, **overrides):
        """An unfitted estimator with a named recipe (see :mod:`spela_hw.recipes`)."""
        from .recipes import preset_params

        return cls(**preset_params(name, **overrides))

    def save(self, path, training_data=None):
        """Save to a ``.npz`` model file (see :func:`spela_hw.io.save_model`)."""
        from .io import save_model

        return save_model(self, path, training_data)


class SpelaClassifier(Classifier):
    __doc__ = "SPELA (forward-only, local cosine loss per layer).\n\n" + Classifier.__doc__
    _default_rule = Spela


class BackpropClassifier(Classifier):
    __doc__ = "Backpropagation baseline (softmax cross-entropy).\n\n" + Classifier.__doc__
    _default_rule = Backprop
