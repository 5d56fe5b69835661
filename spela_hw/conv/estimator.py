"""scikit-learn-style estimators of conv networks: :class:`ConvSpelaClassifier` and
:class:`ConvBackpropClassifier`, trained from one :class:`~spela_hw.conv.ConvNetSpec`.

Hyper-parameters are stored verbatim by ``__init__`` and validated in ``fit``; learned state ends
in ``_`` (``spec_``: the network description that ``sim`` sizes).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from ..backends import make_ops
from ..blas import one_blas_thread
from ..errors import ConfigError, DataError, DivergenceError, SpelaError
from ..estimator import check_n_jobs, check_xy, kernel_threads
from ..network import init_network
from ..rules.common import new_counts, readout_predictions
from ..rules.spela import train_batch
from ..specs import Adam, Backprop, NetworkSpec, PrecisionSpec, Sgd, Spela
from . import model as M
from .description import ConvNetSpec, parse_layers
from .fixed import BACKENDS as FIXED_BACKENDS
from .fixed import (
    check_fixed_spec,
    fixed_block_forward,
    fixed_block_scores,
    fixed_block_step,
    init_fixed_block,
)
from .updates import BlockUpdates

__all__ = ["ConvBackpropClassifier", "ConvClassifier", "ConvSpelaClassifier", "DenseSpela"]

log = logging.getLogger(__name__)

#: Smaller batches train on one thread: their block updates are too short for the hand-over to a
#: worker thread to pay. Idle machine, two threads against one: 1.03-1.24x below 8 samples, 1.16-1.33x
#: at 8 and 16, 1.46-1.96x at 64; on a loaded machine batch 1 ran 0.6-0.8x (bench/RESULTS.md, "Conv speed").
THREADS_MIN_BATCH = 8
_PREDICT_BATCH = 1000
SEED_NAMES = ("model", "class_vectors", "shuffle", "rounding")
#: Conv blocks under SPELA step with Adam: plain SGD (lr 1, batch 64) read out 69 % / 79 % at the
#: two blocks of c32k5p2-c64k5p2 after 2 epochs on 4000 bundled MNIST images, Adam 0.01 86 % / 93 %.
DEFAULT_CONV_OPTIMIZER = Adam(0.01)
#: The dense SPELA layers on the L2-normalised flattened map (plain SGD, mean over the batch).
DEFAULT_SPELA = Spela(input_norm="every_layer", optimizer=Sgd(20.0))
DEFAULT_BACKPROP = Backprop(optimizer=Adam(1e-3))


@dataclass
class DenseSpela:
    """One dense SPELA layer as the package's one-layer network: spec, ops, state and counts.

    The last layer (the classifier) is linear: a LeakyReLU output of ``N`` units cannot point at
    class vectors with negative entries (a 10-wide LeakyReLU output read out 10-42 % where a
    linear one read out 75-81 % in the same run); hidden dense layers use the network's LeakyReLU.
    """

    spec: NetworkSpec
    ops: object
    state: object
    counts: object


def infer_input_shape(n_features: int, input_shape) -> tuple[int, int, int]:
    """``input_shape`` as given, or ``(1, s, s)`` for ``s * s`` features (a square grey image)."""
    if input_shape is not None:
        return tuple(input_shape)
    s = math.isqrt(n_features)
    if s * s != n_features:
        raise ConfigError("input_shape", f"{n_features} features are not a square grey image: give "
                                         f"input_shape=(channels, height, width)")
    return (1, s, s)


class ConvClassifier:
    """A convolutional classifier trained by SPELA (local losses) or backprop.

    Parameters
    ----------
    net : str
        Layers as a spec string, e.g. ``"c32k5p2-c64k5p2-d10"`` (see :mod:`spela_hw.conv.description`).
    rule : Spela or Backprop or None
        SPELA: the dense layers' rule (loss, input normalisation, plain SGD). Backprop: its
        optimiser trains the whole network (softmax cross-entropy at the last layer).
    precision : PrecisionSpec or None
        ``None`` is float32. Fixed point (SPELA only) is bit-true (:mod:`spela_hw.conv.fixed`) and
        needs ``norm="none"``. Per-layer weight ranges (``weight_exponents``) count the conv
        blocks first, then the dense layers (e.g. ``PrecisionSpec.fixed(8, (0.25, 0.25, 1.0))``).
    input_shape : tuple of int or None
        ``(C, H, W)``; ``None`` takes a square grey image from the number of features.
    norm, conv_target, projection_dim, slope :
        See :class:`~spela_hw.conv.ConvNetSpec`.
    conv_optimizer : Sgd or Adam or None
        The conv blocks' optimiser under SPELA (default ``Adam(0.01)``); backprop uses ``rule``'s.
    conv_epochs : int or None
        SPELA: the conv blocks train in the first ``conv_epochs`` epochs only, then stay frozen
        (BatchNorm folded, as at inference) while the dense layers go on learning, as the paper's
        CNN recipe trains its head on the finished feature maps. ``None``: every epoch.
    batch_size, epochs, shuffle, random_state :
        As :class:`spela_hw.Classifier`.
    n_jobs : int or None
        Threads of SPELA's conv steps, as in scikit-learn: ``-1`` (default) the cores numba may
        use (``NUMBA_NUM_THREADS`` caps it), ``None`` or 1 one thread. A block's update runs
        beside the forward passes and updates of the layers after it (:mod:`spela_hw.conv.updates`),
        so at most one thread per conv block helps, and batches below ``THREADS_MIN_BATCH`` samples
        train on one. Results never depend on it, bit for bit.
        Backprop runs on one thread (every layer waits for the backward pass of the next), and
        refuses ``n_jobs`` above 1.
    backend : {"numba", "reference"}
        What runs SPELA's conv blocks: compiled kernels (default) or the NumPy reference
        (:mod:`spela_hw.conv.fixed`, :mod:`spela_hw.conv.model`). Fixed point: the same results
        bit for bit, training and inference. Float32 training: the same bits from batches of
        five samples, within float32 rounding below (:mod:`spela_hw.conv.float_numba`); float32
        inference and backprop run NumPy either way.
    """

    _default_rule = DEFAULT_SPELA

    def __init__(self, net="c32k5p2-c64k5p2-d10", rule=None, precision=None, input_shape=None, norm="batch",
                 conv_target="projection", projection_dim=100, slope=1e-3, conv_optimizer=None,
                 conv_epochs=None, batch_size=64, epochs=1, shuffle=True, random_state=None, backend="numba",
                 n_jobs=-1):
        self.net = net
        self.rule = rule
        self.precision = precision
        self.input_shape = input_shape
        self.norm = norm
        self.conv_target = conv_target
        self.projection_dim = projection_dim
        self.slope = slope
        self.conv_optimizer = conv_optimizer
        self.conv_epochs = conv_epochs
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.backend = backend
        self.n_jobs = n_jobs

    def get_params(self, deep=True):
        import inspect

        return {n: getattr(self, n) for n in inspect.signature(ConvClassifier.__init__).parameters if n != "self"}

    def set_params(self, **params):
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ConfigError(k, f"unknown parameter of {type(self).__name__}")
            setattr(self, k, v)
        return self

    def __repr__(self):
        return f"{type(self).__name__}(net={self.net!r}, rule={self.rule!r})"

    # -- validation ----------------------------------------------------------------------------
    def _validate(self, n_features: int, n_classes: int):
        for name, lo in (("batch_size", 1), ("epochs", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ConfigError(name, f"must be an integer >= {lo}, got {v!r}")
        seed = self.random_state
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ConfigError("random_state", f"must be None or a non-negative integer, got {seed!r}")
        if self.backend not in FIXED_BACKENDS:
            raise ConfigError("backend", f"must be one of {FIXED_BACKENDS}, got {self.backend!r}")
        precision = self.precision if self.precision is not None else PrecisionSpec()
        if not isinstance(precision, PrecisionSpec):
            raise ConfigError("precision", f"must be a PrecisionSpec, got {type(precision).__name__}")
        rule = self.rule if self.rule is not None else self._default_rule
        if not isinstance(rule, (Spela, Backprop)):
            raise ConfigError("rule", f"must be Spela or Backprop, got {type(rule).__name__}")
        if isinstance(rule, Spela) and (rule.optimizer.kind != "sgd" or rule.optimizer.momentum):
            raise ConfigError("rule.optimizer", "the dense SPELA layers run plain SGD (set conv_optimizer "
                                                "for the conv blocks)")
        if precision.is_fixed and not isinstance(rule, Spela):
            raise ConfigError("precision", "fixed-point conv networks train by SPELA in this version "
                                           "(backprop's conv layers run in float32)")
        conv_opt = self.conv_optimizer if self.conv_optimizer is not None else DEFAULT_CONV_OPTIMIZER
        if not isinstance(conv_opt, (Sgd, Adam)):
            raise ConfigError("conv_optimizer", f"must be Sgd or Adam, got {type(conv_opt).__name__}")
        if isinstance(rule, Backprop) and self.conv_optimizer is not None:
            raise ConfigError("conv_optimizer", "backprop trains every layer with rule.optimizer: "
                                                "conv_optimizer would be ignored")
        ce = self.conv_epochs
        if ce is not None and (isinstance(ce, bool) or not isinstance(ce, (int, np.integer)) or ce < 0):
            raise ConfigError("conv_epochs", f"must be None or an integer >= 0, got {ce!r}")
        if isinstance(rule, Backprop) and ce is not None:
            raise ConfigError("conv_epochs", "backprop trains every layer in every epoch: conv_epochs would be ignored")
        self._validate_n_jobs(rule.name)
        shape = infer_input_shape(n_features, self.input_shape)
        if math.prod(shape) != n_features:
            raise ConfigError("input_shape", f"{shape} holds {math.prod(shape)} values, X has {n_features} features")
        spec = ConvNetSpec(shape, parse_layers(self.net), n_classes=n_classes, norm=self.norm, slope=self.slope,
                           conv_target=self.conv_target, projection_dim=self.projection_dim)
        if precision.is_fixed:
            check_fixed_spec(spec)
        if precision.weight_exponents and len(precision.weight_exponents) != len(spec.layers):
            raise ConfigError("precision.weight_exponents", f"has {len(precision.weight_exponents)} entries for the "
                                                            f"{len(spec.layers)} layers of {spec.net} (conv blocks "
                                                            f"first, then dense layers)")
        if isinstance(rule, Backprop) and spec.dense_layers[-1].units != n_classes:
            raise ConfigError("net", f"backprop's last layer must have one unit per class ({n_classes}), "
                                     f"got {spec.dense_layers[-1].units}")
        return spec, precision, rule, conv_opt

    # -- initialisation --------------------------------------------------------------------------
    def _initialize(self, n_features: int, classes, seeds: dict | None = None):
        classes = np.unique(classes)
        spec, precision, rule, conv_opt = self._validate(n_features, len(classes))
        if seeds is None:  # drawn from random_state; a loaded model brings its own
            seeds = dict(zip(SEED_NAMES, (int(s) for s in np.random.SeedSequence(self.random_state).generate_state(4))))
        model_seed, cv_seed, round_seed = seeds["model"], seeds["class_vectors"], seeds["rounding"]
        dense = None
        if isinstance(rule, Spela):
            dense = self._dense_spela(spec, precision, rule, cv_seed, round_seed,
                                      np.random.default_rng([model_seed, 2]), self.backend)
        self.state_ = M.init_conv_state(spec, rule.name, model_seed, dense)
        self.state_.rounding_seed = round_seed
        self.state_.backend = self.backend
        if precision.is_fixed:
            self.state_.fixed = [init_fixed_block(precision.for_layer(k), spec, k, b, self.backend)
                                 for k, b in enumerate(self.state_.blocks)]
        self.spec_ = spec
        self.precision_ = precision
        self.rule_ = rule
        self.conv_optimizer_ = conv_opt
        self.classes_ = classes
        self.n_features_in_ = n_features
        self.seeds_ = dict(seeds)
        self.epochs_done_ = 0
        self.history_ = []
        return self

    @staticmethod
    def _dense_spela(spec, precision, rule, cv_seed, round_seed, rng, backend: str) -> list:
        dims = (spec.flat_features, *(d.units for d in spec.dense_layers))
        layers = []
        for k in range(len(dims) - 1):
            last = k == len(dims) - 2
            lspec = NetworkSpec((dims[k], dims[k + 1]), n_classes=spec.n_classes,
                                activation="identity" if last else "leaky_relu", slope=float(spec.slope))
            layer_precision = precision.for_layer(len(spec.conv_blocks) + k)
            # fixed point: the backend's kernels (numba's are the reference's bit for bit);
            # float32 keeps the reference's own sums (numba's loss unit sums in another order)
            ops = make_ops(backend if layer_precision.is_fixed else "reference", layer_precision, lspec)
            st = init_network(lspec, layer_precision, ops, rule.class_vectors, cv_seed + k, round_seed + k, rng=rng)
            layers.append(DenseSpela(lspec, ops, st, new_counts(st, "train")))
        return layers

    def _labels_to_index(self, y):
        idx = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
        if not np.all(self.classes_[idx] == y):
            bad = np.asarray(y)[self.classes_[idx] != y][0]
            raise DataError(f"label {bad.item()!r} is not one of the classes seen in fit: {self.classes_.tolist()}")
        return idx.astype(np.int64)

    # -- training --------------------------------------------------------------------------------
    def fit(self, X, y, eval_set=None, callback=None, classes=None):
        """Train from scratch for ``epochs`` epochs (``eval_set``: per-layer test accuracy each epoch)."""
        X, y = check_xy(X, y)
        self._initialize(X.shape[1], y if classes is None else np.union1d(classes, y))
        return self.continue_fit(X, y, eval_set, callback)

    def continue_fit(self, X, y, eval_set=None, callback=None):
        """Run the epochs still missing up to ``epochs`` (a loaded model resumes exactly)."""
        self._check_fitted()
        X, y = check_xy(X, y, self.n_features_in_)
        yi = self._labels_to_index(y)
        while self.epochs_done_ < self.epochs:
            lr = (self.rule_.optimizer if self.rule_.name == "backprop" else self.conv_optimizer_).lr_at(self.epochs_done_)
            if self._conv_frozen(self.epochs_done_):
                lr = 0.0  # the conv blocks' learning rate: they are frozen
            t0 = time.perf_counter()
            with one_blas_thread(), BlockUpdates(self._threads()) as updates:
                self._train_pass(X, yi, updates)
            self.epochs_done_ += 1
            record = {"epoch": self.epochs_done_, "lr": lr, "train_seconds": time.perf_counter() - t0,
                      "samples": len(X)}
            if self.rule_.name != "backprop":  # the dense layers' own SGD schedule
                record["dense_lr"] = self.rule_.optimizer.lr_at(self.epochs_done_ - 1)
            if eval_set is not None:
                for k, acc in enumerate(self.score_layers(*eval_set)):
                    record[f"layer{k + 1}_accuracy"] = acc
            self.history_.append(record)
            log.info("epoch %s", record)
            if callback is not None:
                callback(self, record)
        return self

    def _validate_n_jobs(self, rule_name: str) -> None:
        check_n_jobs(self.n_jobs)
        if rule_name == "backprop" and self.n_jobs is not None and self.n_jobs > 1:
            raise ConfigError("n_jobs", "backprop's conv network trains on one thread (every layer waits for the "
                                        "backward pass of the next): use n_jobs=-1, 1 or None")

    def _threads(self) -> int:
        """Threads of the conv steps: ``n_jobs`` within numba's thread count, one per conv block at
        most, and one below ``THREADS_MIN_BATCH`` samples per batch."""
        self._validate_n_jobs(self.rule_.name)  # set_params may have changed it since fit
        if self.rule_.name == "backprop" or self.batch_size < THREADS_MIN_BATCH:
            return 1
        return max(1, min(kernel_threads(self.n_jobs), len(self.spec_.conv_blocks)))

    def _train_pass(self, X, yi, updates):
        rng = np.random.default_rng([self.seeds_["shuffle"], self.epochs_done_])
        order = rng.permutation(len(X)) if self.shuffle else np.arange(len(X))
        bs = min(int(self.batch_size), len(X))
        epoch = self.epochs_done_
        for s0 in range(0, len(X), bs):
            sel = order[s0:s0 + bs]
            self._train_batch(M.to_images(self.spec_, X[sel]), yi[sel], epoch, updates)
        updates.join()
        self._check_finite()

    def _conv_frozen(self, epoch: int) -> bool:
        return self.conv_epochs is not None and epoch >= self.conv_epochs

    def _train_batch(self, x, y, epoch: int, updates):
        st = self.state_
        if self.rule_.name == "backprop":
            opt = self.rule_.optimizer
            M.backprop_step(st, x, y, opt, opt.lr_at(epoch))
            return
        opt = self.conv_optimizer_
        if self._conv_frozen(epoch):
            flat = self._block_outputs(x)[-1].reshape(len(x), -1)
        elif st.fixed is None:
            flat = M.conv_spela_step(st, x, y, opt, opt.lr_at(epoch), updates)
        else:
            flat = self._fixed_conv_step(x, y, opt, opt.lr_at(epoch), updates)
        lr = self.rule_.optimizer.lr_at(epoch)
        h = flat
        for layer in st.dense:
            x_in = layer.ops.quantize_input(h) if layer is st.dense[0] and st.fixed is None else h
            if layer is not st.dense[-1]:  # the pre-update output feeds the next layer
                xn = layer.ops.normalize_rows(x_in) if self.rule_.input_norm != "off" else x_in
                _, h, _ = layer.ops.forward(layer.state.weights[0], layer.state.biases[0], xn)
            train_batch(layer.state, layer.ops, self.rule_, x_in, y, lr, layer.counts)

    def _fixed_conv_step(self, x, y, opt, lr, updates):
        """One bit-true SPELA step of every fixed-point conv block (the updates go to ``updates``);
        the flattened output codes."""
        st = self.state_
        x = st.fixed[0].conv_ops.quantize_input(x)
        train_projection = self.spec_.conv_target == "projection"
        for k, (fb, blk) in enumerate(zip(st.fixed, self.spec_.conv_blocks)):
            updates.wait(k)  # this block's step on the previous batch
            x, update = fixed_block_step(fb, blk, x, y, opt, lr, train_projection, st.rounding_seed, k, st.step)
            updates.submit(k, update)
        st.step += 1
        return x.reshape(len(x), -1)

    def _check_finite(self):
        arrays = [p for b in self.state_.blocks for p in b.params().values()]
        if self.rule_.name == "backprop":
            arrays += [a for wb in self.state_.dense for a in wb]
        else:
            arrays += [layer.state.weights[0] for layer in self.state_.dense]
        if not all(np.isfinite(a).all() for a in arrays if a.dtype.kind == "f"):
            raise DivergenceError(f"training diverged in epoch {self.epochs_done_ + 1}: weights hold NaN "
                                  f"or inf (try a smaller learning rate)")

    # -- inference -------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "state_"):
            raise SpelaError(f"this {type(self).__name__} is not fitted yet: call fit first")

    @property
    def n_readouts_(self) -> int:
        """Read-outs: every conv block and dense layer under SPELA, the output only under backprop."""
        self._check_fitted()
        return 1 if self.rule_.name == "backprop" else len(self.spec_.layers)

    def _block_outputs(self, x) -> list:
        """Inference outputs of every conv block (BatchNorm folded; codes in fixed point)."""
        st = self.state_
        if st.fixed is None:
            return M.forward_blocks(st, x)
        outs, h = [], st.fixed[0].conv_ops.quantize_input(x)
        for fb, blk in zip(st.fixed, self.spec_.conv_blocks):
            h = fixed_block_forward(fb, blk, h)[0]
            outs.append(h)
        return outs

    def _predict_chunk(self, x) -> list:
        """Predicted class indices at every read-out for one chunk of images."""
        st = self.state_
        if self.rule_.name == "backprop":
            return [np.argmax(M.backprop_logits(st, x), axis=1)]
        outs = self._block_outputs(x)
        if st.fixed is None:
            preds = [np.argmax(M.block_scores(b, o), axis=1) for b, o in zip(st.blocks, outs)]
        else:
            preds = [np.argmax(fixed_block_scores(fb, o), axis=1) for fb, o in zip(st.fixed, outs)]
        h = outs[-1].reshape(len(x), -1)
        for j, layer in enumerate(st.dense):
            xin = layer.ops.quantize_input(h) if j == 0 and st.fixed is None else h
            if self.rule_.input_norm == "every_layer":
                xin = layer.ops.normalize_rows(xin)
            _, h, _ = layer.ops.forward(layer.state.weights[0], layer.state.biases[0], xin)
            preds.append(readout_predictions(layer.state, layer.ops, 0, h)[0])
        return preds

    def predict_layers(self, X) -> np.ndarray:
        """Predicted labels at every read-out ``(n_readouts, n_samples)``, first layer first."""
        self._check_fitted()
        X = check_xy(X, n_features=self.n_features_in_)
        out = np.empty((self.n_readouts_, len(X)), np.int64)
        with one_blas_thread():
            for s0 in range(0, len(X), _PREDICT_BATCH):
                for k, p in enumerate(self._predict_chunk(M.to_images(self.spec_, X[s0:s0 + _PREDICT_BATCH]))):
                    out[k, s0:s0 + len(p)] = p
        return self.classes_[out]

    def predict(self, X, layer=-1):
        """Predicted labels at read-out ``layer`` (default the last)."""
        n = self.n_readouts_
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n <= layer < n:
            raise ConfigError("layer", f"must be an integer in [{-n}, {n - 1}], got {layer!r}")
        return self.predict_layers(X)[layer]

    def score(self, X, y, layer=-1):
        """Accuracy at read-out ``layer``."""
        X, y = check_xy(X, y, getattr(self, "n_features_in_", None))
        return float(np.mean(self.predict(X, layer) == y))

    def score_layers(self, X, y):
        """Accuracy at every read-out (list, first layer first)."""
        X, y = check_xy(X, y, getattr(self, "n_features_in_", None))
        return [float(np.mean(p == y)) for p in self.predict_layers(X)]

    def save(self, path):
        """Save to a ``.npz`` model file (:func:`spela_hw.conv.io.save_conv_model`)."""
        from .io import save_conv_model

        return save_conv_model(self, path)


class ConvSpelaClassifier(ConvClassifier):
    __doc__ = "Conv network trained by SPELA (a local loss per conv block and dense layer).\n\n" + ConvClassifier.__doc__
    _default_rule = DEFAULT_SPELA


class ConvBackpropClassifier(ConvClassifier):
    __doc__ = "Conv network trained by backprop (softmax cross-entropy).\n\n" + ConvClassifier.__doc__
    _default_rule = DEFAULT_BACKPROP
