"""Immutable, validated descriptions of networks, precisions, optimisers and learning rules.

Descriptions never execute anything: backends (:mod:`spela_hw.backends`) build and run them.
Every spec validates itself on construction and raises :class:`~spela_hw.errors.ConfigError`
naming the field that is wrong.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from .classvectors import CLASS_VECTOR_METHODS
from .errors import ConfigError
from .fixedpoint import FixedPointFormat

__all__ = [
    "ACTIVATIONS",
    "NetworkSpec",
    "PrecisionSpec",
    "Sgd",
    "Adam",
    "Spela",
    "Backprop",
    "Sigprop",
    "RULES",
    "rule_from_dict",
    "spec_to_dict",
]

ACTIVATIONS = ("leaky_relu", "tanh", "identity")
#: Random bits per synapse of the stochastic-rounding unit when a precision does not say
#: (``PrecisionSpec.sr_bits``; model files without the field were trained with 16).
DEFAULT_SR_BITS = 16
#: The SR unit's range of random bits: one 16-bit half of a 32-bit hash word per synapse.
SR_BITS_RANGE = (1, 16)
INITS = ("he_uniform", "he_normal")
BIAS_INITS = ("uniform_fan_in", "zeros")


def _check_positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(name, f"must be an integer >= {minimum}, got {value!r}")


def _check_finite(name: str, value, lo: float = -math.inf, hi: float = math.inf,
                  lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    if value < lo or value > hi or (lo_open and value == lo):
        bracket = "(" if lo_open else "["
        raise ConfigError(name, f"must lie in {bracket}{lo}, {hi}], got {value!r}")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(name, f"must be one of {tuple(choices)}, got {value!r}")


@dataclass(frozen=True)
class NetworkSpec:
    """A stack of dense layers.

    Parameters
    ----------
    dims : tuple of int
        Widths from the input to the last layer, e.g. ``(784, 1024, 10)``.
    n_classes : int
        Number of classes (the number of class vectors per layer).
    activation : {"leaky_relu", "tanh", "identity"}
    slope : float
        Negative slope of LeakyReLU; also its derivative at 0 (PyTorch's convention).
    init : {"he_uniform", "he_normal"}
    bias_init : {"uniform_fan_in", "zeros"}
        ``uniform_fan_in`` is PyTorch's ``nn.Linear`` default U(+-1/sqrt(fan_in)).
    """

    dims: tuple[int, ...]
    n_classes: int = 10
    activation: str = "leaky_relu"
    slope: float = 0.001
    init: str = "he_uniform"
    bias_init: str = "uniform_fan_in"

    def __post_init__(self):
        if isinstance(self.dims, (str, bytes)) or not hasattr(self.dims, "__len__"):
            raise ConfigError("dims", f"must be a sequence of layer widths, got {self.dims!r}")
        object.__setattr__(self, "dims", tuple(self.dims))
        if len(self.dims) < 2:
            raise ConfigError("dims", f"needs an input width and at least one layer, got {self.dims}")
        for i, d in enumerate(self.dims):
            if isinstance(d, bool) or not isinstance(d, int) or d < 1:
                raise ConfigError(f"dims[{i}]", f"must be a positive integer, got {d!r}")
        _check_positive_int("n_classes", self.n_classes, 2)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_finite("slope", self.slope, 0.0, 1.0)
        _check_choice("init", self.init, INITS)
        _check_choice("bias_init", self.bias_init, BIAS_INITS)

    @property
    def n_layers(self) -> int:
        return len(self.dims) - 1

    def layer_shapes(self) -> list[tuple[int, int]]:
        """``(fan_out, fan_in)`` of every layer's weight matrix."""
        return [(self.dims[k + 1], self.dims[k]) for k in range(self.n_layers)]


@dataclass(frozen=True)
class PrecisionSpec:
    """Number formats of one network; ``PrecisionSpec()`` (all ``None``) means float32.

    Fixed point needs all five formats. ``update`` is the format of the post-synaptic term (the
    error) that multiplies the pre-synaptic activation; its ``rounding`` decides how each weight
    increment is rounded to one weight LSB (stochastic by default).

    ``weight_exponents`` gives each layer its own binary point (a per-layer power-of-two scale,
    as a shared exponent in hardware): layer ``k`` stores its weights in ``weight`` with
    ``weight_exponents[k]`` fewer fractional bits (range and LSB times ``2**e``), and its
    accumulator likewise, so that every layer has the same word width. Empty: one format for all
    layers. :meth:`for_layer` resolves the formats of one layer.

    ``sr_bits`` is the stochastic-rounding unit's number of random bits per synapse (1..16):
    an increment is rounded to the nearest ``sr_bits`` bits below the weight LSB and then up
    with probability equal to those bits read as a fraction (see :mod:`spela_hw.rng`); the same
    number prices the unit in ``sim`` (``BitWidths.from_precision``). It needs
    ``update.rounding == "stochastic"`` unless it is the default. Optimisers with state (Adam,
    momentum) keep their float32 step's own 24 random bits (:mod:`spela_hw.rules.optim`) and
    refuse another ``sr_bits``.
    """

    weight: FixedPointFormat | None = None
    activation: FixedPointFormat | None = None
    accumulator: FixedPointFormat | None = None
    class_vector: FixedPointFormat | None = None
    update: FixedPointFormat | None = None
    weight_exponents: tuple[int, ...] = ()
    sr_bits: int = DEFAULT_SR_BITS

    FORMATS = ("weight", "activation", "accumulator", "class_vector", "update")

    def __post_init__(self):
        names = list(self.FORMATS)
        given = [getattr(self, n) is not None for n in names]
        if any(given) and not all(given):
            missing = [n for n, g in zip(names, given) if not g][0]
            raise ConfigError(missing, "fixed point needs all five formats (or none for float32)")
        for n in names:
            v = getattr(self, n)
            if v is not None and not isinstance(v, FixedPointFormat):
                raise ConfigError(n, f"must be a FixedPointFormat, got {type(v).__name__}")
        if self.is_fixed:
            if self.accumulator.bits < self.weight.bits:
                raise ConfigError("accumulator.bits", "must be at least weight.bits")
            if self.update.rounding == "stochastic" and self.update.frac_bits > 62:
                raise ConfigError("update.frac_bits", "stochastic rounding supports at most 62")
        exps = self.weight_exponents
        if not isinstance(exps, tuple) or any(isinstance(e, bool) or not isinstance(e, int) for e in exps):
            raise ConfigError("weight_exponents", f"must be a tuple of integers, got {exps!r}")
        if exps and not self.is_fixed:
            raise ConfigError("weight_exponents", "apply to fixed-point weights only (float32 has none)")
        if any(abs(e) > 16 for e in exps):
            raise ConfigError("weight_exponents", f"must lie in -16..16, got {exps}")
        lo, hi = SR_BITS_RANGE
        if isinstance(self.sr_bits, bool) or not isinstance(self.sr_bits, int) or not lo <= self.sr_bits <= hi:
            raise ConfigError("sr_bits", f"must be an integer from {lo} to {hi}, got {self.sr_bits!r}")
        if self.sr_bits != DEFAULT_SR_BITS and not (self.is_fixed and self.update.rounding == "stochastic"):
            raise ConfigError("sr_bits", f"sets the stochastic-rounding unit: it needs fixed point with "
                                         f"update.rounding = 'stochastic', got {self.sr_bits} with "
                                         f"{'float32' if not self.is_fixed else repr(self.update.rounding)}")

    def for_layer(self, k: int) -> "PrecisionSpec":
        """The precision of layer ``k`` alone: its weight and accumulator formats resolved."""
        if not self.weight_exponents:
            return self
        if not 0 <= k < len(self.weight_exponents):
            raise ConfigError("weight_exponents", f"has {len(self.weight_exponents)} entries, no layer {k}")
        e = self.weight_exponents[k]
        return replace(self, weight=replace(self.weight, frac_bits=self.weight.frac_bits - e),
                       accumulator=replace(self.accumulator, frac_bits=self.accumulator.frac_bits - e),
                       weight_exponents=())

    @property
    def is_fixed(self) -> bool:
        return self.weight is not None

    @property
    def name(self) -> str:
        return f"w{self.weight.bits}a{self.activation.bits}" if self.is_fixed else "fp32"

    @classmethod
    def fixed(
        cls,
        weight_bits: int = 8,
        weight_range: float | tuple[float, ...] = 0.25,
        activation_bits: int = 16,
        activation_range: float = 128.0,
        update_bits: int = 24,
        update_rounding: str = "stochastic",
        overflow: str = "saturate",
        sr_bits: int = DEFAULT_SR_BITS,
    ) -> "PrecisionSpec":
        """A fixed-point precision from widths and real ranges (the usual way to make one).

        Weights hold ``[-weight_range, weight_range)``; activations ``[-activation_range, ...)``.
        A sequence of ranges, one per layer, gives each layer its own binary point
        (``weight_exponents``; ranges round up to powers of two): SGD on the cosine loss grows a
        layer's weight norm over the epochs, most in the output layer, so long runs may want a
        wider range there than in the input layer (bench/RESULTS.md).
        The default weight range 0.25 suits layers with fan-in of about 100 or more (He-uniform
        init ``sqrt(6 / fan_in) <= 0.25``): on MNIST 784-1000-34 it put 8-bit SPELA within 0.7
        points of float32 where 1.0 lost 2.4 (a finer LSB means less stochastic-rounding noise per
        update). Narrower layers need a wider range, or their init saturates. The default
        activation range 128 (16 bits: LSB 2**-8) holds the pre-activations that the cosine loss
        lets grow with the weights (an output layer reached |a| = 91 after 3 epochs of the
        official recipe); at the former default 8, saturated activations cost up to 17 points
        after 20 epochs, while one epoch scored the same at 8, 32 and 128 (bench/RESULTS.md).
        The accumulator is wide enough (32 bits) with the product's fractional bits; class
        vectors use 8 bits scaled to their entries (about 1/sqrt(width)); the update term (the
        post-synaptic ``lr * delta``) carries ``update_bits`` with ``update_bits - 8`` more
        fractional bits than a weight, so per-sample updates far below one weight LSB survive
        until the final (stochastic) rounding, which draws ``sr_bits`` random bits per synapse.
        """
        if isinstance(weight_bits, bool) or not isinstance(weight_bits, int) or not 2 <= weight_bits <= 16:
            raise ConfigError("weight_bits", f"must be an integer from 2 to 16, got {weight_bits!r}")
        per_layer = isinstance(weight_range, (list, tuple))
        ranges = tuple(weight_range) if per_layer else (weight_range,)
        if not ranges:
            raise ConfigError("weight_range", "needs at least one range")
        for r in ranges:
            _check_finite("weight_range", r, 0.0, math.inf, lo_open=True)
        _check_finite("activation_range", activation_range, 0.0, math.inf, lo_open=True)
        layer_fmts = [FixedPointFormat.for_range(weight_bits, r, overflow=overflow) for r in ranges]
        w = layer_fmts[0]
        exps = tuple(w.frac_bits - f.frac_bits for f in layer_fmts) if per_layer else ()
        finest = w.frac_bits - min(exps, default=0)  # the update term serves the finest layer
        a = FixedPointFormat.for_range(activation_bits, activation_range, overflow=overflow)
        acc = FixedPointFormat(32, w.frac_bits + a.frac_bits, overflow=overflow)
        cv = FixedPointFormat(8, 7, overflow=overflow)
        u = FixedPointFormat(update_bits, finest + update_bits - 8, rounding=update_rounding,
                             overflow=overflow)
        return cls(weight=w, activation=a, accumulator=acc, class_vector=cv, update=u,
                   weight_exponents=exps, sr_bits=sr_bits)

    def to_dict(self) -> dict:
        d = {n: (getattr(self, n).to_dict() if self.is_fixed else None) for n in self.FORMATS}
        if self.weight_exponents:
            d["weight_exponents"] = list(self.weight_exponents)
        if self.is_fixed:
            d["sr_bits"] = int(self.sr_bits)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PrecisionSpec":
        _check_table(cls, d)
        exps = d.get("weight_exponents") or ()
        if not isinstance(exps, (list, tuple)):
            raise ConfigError("weight_exponents", f"must be a list of integers, got {exps!r}")
        # files written before the SR unit had a width were trained with 16 random bits
        sr_bits = d.get("sr_bits", DEFAULT_SR_BITS)
        formats = {}
        for k, v in d.items():
            if k not in ("weight_exponents", "sr_bits"):
                try:
                    formats[k] = FixedPointFormat.from_dict(v) if v is not None else None
                except ConfigError as exc:
                    raise ConfigError(f"{k}.{exc.field}", exc.message) from None
        return cls(**formats, weight_exponents=tuple(exps), sr_bits=sr_bits)


@dataclass(frozen=True)
class Sgd:
    """Plain SGD with an optional step schedule.

    ``lr(epoch) = max(lr - step_delta * s, min_lr) * step_gamma**s`` with
    ``s = epoch // step_every`` (``step_every = 0``: constant). The official SPELA recipe is
    ``Sgd(2.5, step_every=10, step_delta=0.1)``.
    """

    lr: float = 0.01
    momentum: float = 0.0
    step_every: int = 0
    step_delta: float = 0.0
    step_gamma: float = 1.0
    min_lr: float = 0.0

    kind = "sgd"

    def __post_init__(self):
        _check_finite("optimizer.lr", self.lr, 0.0, math.inf, lo_open=True)
        _check_finite("optimizer.momentum", self.momentum, 0.0, 1.0)
        if self.momentum >= 1.0:
            raise ConfigError("optimizer.momentum", "must be < 1")
        _check_positive_int("optimizer.step_every", self.step_every, 0)
        _check_finite("optimizer.step_delta", self.step_delta, 0.0)
        _check_finite("optimizer.step_gamma", self.step_gamma, 0.0, 1.0, lo_open=True)
        _check_finite("optimizer.min_lr", self.min_lr, 0.0)

    def lr_at(self, epoch: int) -> float:
        s = epoch // self.step_every if self.step_every else 0
        return max(self.lr - self.step_delta * s, self.min_lr) * self.step_gamma**s


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba); in fixed point the moments are float32 optimiser state."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    kind = "adam"

    def __post_init__(self):
        _check_finite("optimizer.lr", self.lr, 0.0, math.inf, lo_open=True)
        _check_finite("optimizer.beta1", self.beta1, 0.0, 1.0)
        _check_finite("optimizer.beta2", self.beta2, 0.0, 1.0)
        if self.beta1 >= 1 or self.beta2 >= 1:
            raise ConfigError("optimizer.beta", "betas must be < 1")
        _check_finite("optimizer.eps", self.eps, 0.0, math.inf, lo_open=True)

    def lr_at(self, epoch: int) -> float:
        return self.lr


OPTIMIZERS = {"sgd": Sgd, "adam": Adam}


@dataclass(frozen=True)
class Spela:
    """The SPELA rule: every layer learns from the cosine of its output to its label's class vector.

    Parameters
    ----------
    loss : {"log_2_minus_cos", "neg_cos"}
        ``log(2 - cos)`` (official code) or ``-cos`` (paper text).
    input_norm : {"off", "every_layer", "paper_literal"}
        L2-normalise each layer's input in training and inference, or in training only (the
        paper's Algorithm 3 taken literally).
    class_vectors : {"auto", "simplex", "coulomb", "gaussian", "aligned", "onehot"}
        See :mod:`spela_hw.classvectors`. ``aligned`` aligns the simplex of a layer exactly as
        wide as the number of classes (a 10-unit output) with its units, so that every class is
        reachable by a non-negative LeakyReLU output; ``onehot`` gives such a layer one-hot
        vectors instead. The recipes keep ``auto`` (issue 18).
    update_order : {"pre_update", "recompute"}
        Pass the pre-update ``h`` on (official) or recompute it after the step (one more MVM).
    optimizer : Sgd or Adam
    """

    loss: str = "log_2_minus_cos"
    input_norm: str = "off"
    class_vectors: str = "auto"
    update_order: str = "pre_update"
    optimizer: Sgd | Adam = field(default_factory=lambda: Sgd(lr=0.05))

    name = "spela"

    def __post_init__(self):
        _check_choice("loss", self.loss, ("log_2_minus_cos", "neg_cos"))
        _check_choice("input_norm", self.input_norm, ("off", "every_layer", "paper_literal"))
        _check_choice("class_vectors", self.class_vectors, CLASS_VECTOR_METHODS)
        _check_choice("update_order", self.update_order, ("pre_update", "recompute"))
        if not isinstance(self.optimizer, (Sgd, Adam)):
            raise ConfigError("optimizer", f"must be Sgd or Adam, got {type(self.optimizer).__name__}")


@dataclass(frozen=True)
class Backprop:
    """End-to-end backpropagation with softmax cross-entropy at the last layer (the baseline)."""

    optimizer: Sgd | Adam = field(default_factory=lambda: Sgd(lr=0.01))

    name = "backprop"
    loss = "softmax_ce"

    def __post_init__(self):
        if not isinstance(self.optimizer, (Sgd, Adam)):
            raise ConfigError("optimizer", f"must be Sgd or Adam, got {type(self.optimizer).__name__}")


SIGPROP_FRONTS = ("concat", "learned_projection", "random_projection")
SIGPROP_LOSSES = ("in_batch_ce", "l2", "cosine")


@dataclass(frozen=True)
class Sigprop:
    """Signal propagation (Kohan et al. 2023): the label travels forward as a second stream.

    Every layer runs the input batch ``h = f(W x + b)`` and the target batch
    ``t = f(W t_prev + b)`` through the same weights and steps on a local loss between the two
    streams; no backward pass, no feedback weights. See ``spela_hw.rules.sigprop``.

    Parameters
    ----------
    front : {"concat", "learned_projection", "random_projection"}
        How the one-hot label ``c`` enters the first layer. ``concat``: ``C`` label columns ``S``
        appended to the first layer's inputs, the input stream carries ``[x, 0]`` and the target
        stream ``[0, c]``, so ``t_1 = f(S c + b_1)`` with ``S`` learned by the first layer's
        local update (the official code's learned ``Linear(C -> d_1)``). ``learned_projection``:
        a learned pattern ``P c`` in input space sent through ``W_1`` (``P`` steps through
        ``W_1^T``, the tutorial's ``[W_1] P_L``). ``random_projection``: the same with ``P`` fixed
        random (seeded, nothing to store or train).
    loss : {"in_batch_ce", "l2", "cosine"}
        ``in_batch_ce``: softmax cross-entropy of the logits ``h_n . t_j / temperature`` over the
        target rows ``j`` with every same-class row a positive (the official code's ``v9`` with
        ``targets="batch"``, its label-direct ``v1`` with ``targets="classes"``). ``l2``:
        ``|h - t_y|^2 / 2`` and ``cosine``: ``-cos(h, t_y)``, the tutorial's pull-only losses
        (measured on MNIST: they collapse unless ``target_grad=False``, whatever the front).
    targets : {"classes", "batch"}
        Rows of the target stream: the ``C`` class one-hots every step (works per sample,
        ``B' = C``) or one row per sample, its own label (``B' = B``; the in-batch loss needs
        same-class partners in the batch, a batch of one does not learn).
    temperature : float
        Logit divisor of ``in_batch_ce`` (1: the official code's raw dot products).
    inference : {"output_layer", "target_matching"}
        ``output_layer``: the last layer is a read-out trained by softmax cross-entropy on its
        detached input (the code's head; it needs one unit per class), every earlier layer
        reads out by target matching. ``target_matching``: every layer is a sigprop layer and
        predicts ``argmax_c sim(h, t^c)``, ``t^c`` the class ``c`` sent through the target path.
    hebbian : {"off", "target_pre", "input_pre"}
        The continuous-time Hebbian form instead of the loss gradient (needs ``loss="l2"``):
        ``dW = lr (t - h) t_prev^T`` (``target_pre``, the tutorial's form) or
        ``dW = lr [(t - h) * f'(a)] h_prev^T`` (``input_pre``, the L2 gradient through the
        input branch). Measured on MNIST: ``input_pre`` learns (it is ``l2`` with
        ``target_grad=False``), ``target_pre`` pushes ``t`` away from ``h`` and diverges.
    target_grad : bool
        The loss gradient also steps ``W`` through the target branch (official code) or only
        through the input branch (stop-gradient on ``t``).
    output_lr_scale : float
        Learning rate of the output layer relative to ``optimizer.lr``.
    optimizer : Sgd or Adam
        Per-layer SGD (fixed point: the update format's rounding); momentum and Adam keep float32
        state per layer (:mod:`spela_hw.rules.optim`). The defaults suit per-sample training
        (batch 1). Measured on 784-1024-10 in 10 epochs (bench/RESULTS.md): ``Sgd(0.05,
        step_every=5, step_gamma=0.5)`` with batch 32 (preset ``sigprop-sgd``) and ``Adam(5e-4)``
        with batch 128 (preset ``sigprop-adam``) both reach 98% on MNIST and 88% on
        Fashion-MNIST at the output layer; ``Sgd(0.3, step_every=5, step_gamma=0.5)`` with batch
        128 reaches 98% on MNIST (layer 1) but 86.9% on Fashion-MNIST (output).
    """

    front: str = "concat"
    loss: str = "in_batch_ce"
    targets: str = "classes"
    temperature: float = 1.0
    inference: str = "output_layer"
    hebbian: str = "off"
    target_grad: bool = True
    output_lr_scale: float = 3.0
    optimizer: Sgd | Adam = field(default_factory=lambda: Sgd(lr=0.01))

    name = "sigprop"

    def __post_init__(self):
        _check_choice("front", self.front, SIGPROP_FRONTS)
        _check_choice("loss", self.loss, SIGPROP_LOSSES)
        _check_choice("targets", self.targets, ("classes", "batch"))
        _check_finite("temperature", self.temperature, 0.0, math.inf, lo_open=True)
        _check_choice("inference", self.inference, ("output_layer", "target_matching"))
        _check_choice("hebbian", self.hebbian, ("off", "target_pre", "input_pre"))
        if not isinstance(self.target_grad, bool):
            raise ConfigError("target_grad", f"must be True or False, got {self.target_grad!r}")
        _check_finite("output_lr_scale", self.output_lr_scale, 0.0, math.inf, lo_open=True)
        if not isinstance(self.optimizer, (Sgd, Adam)):
            raise ConfigError("optimizer", f"must be Sgd or Adam, got {type(self.optimizer).__name__}")
        if self.hebbian != "off" and self.loss != "l2":
            raise ConfigError("hebbian", f"the Hebbian form is the update of the L2 pull loss: it needs "
                                         f"loss='l2', got loss={self.loss!r}")


RULES: dict[str, type] = {"spela": Spela, "backprop": Backprop, "sigprop": Sigprop}


def spec_to_dict(spec) -> dict:
    """JSON-ready dict of any spec (rules carry their ``rule`` name and optimiser ``kind``)."""
    d = asdict(spec)
    if hasattr(spec, "optimizer"):
        d["optimizer"] = {"kind": spec.optimizer.kind, **asdict(spec.optimizer)}
    if spec.__class__ in RULES.values():
        d = {"rule": spec.name, **d}
    return d


def _check_table(cls, d, where: str = "", extra=()) -> None:
    """``d`` is a dict of ``cls``'s fields (plus ``extra`` keys): else ConfigError naming the key."""
    if not isinstance(d, dict):
        raise ConfigError(where or cls.__name__, f"must be a table, got {d!r}")
    unknown = set(d) - {f.name for f in fields(cls)} - set(extra)
    if unknown:
        raise ConfigError(where + str(sorted(unknown, key=str)[0]), f"unknown field of {cls.__name__}")


def rule_from_dict(d: dict):
    """Inverse of :func:`spec_to_dict` for rules."""
    name = d.get("rule") if isinstance(d, dict) else None
    if not isinstance(name, str) or name not in RULES:
        raise ConfigError("rule", f"must be one of {tuple(RULES)}, got {name!r}")
    cls = RULES[name]
    _check_table(cls, d, extra=("rule",))
    d = {k: v for k, v in d.items() if k != "rule"}
    if "optimizer" in d:
        opt = d["optimizer"]
        kind = opt.get("kind", "sgd") if isinstance(opt, dict) else None
        if not isinstance(kind, str) or kind not in OPTIMIZERS:
            raise ConfigError("optimizer.kind", f"must be one of {tuple(OPTIMIZERS)}, got {kind!r}")
        _check_table(OPTIMIZERS[kind], opt, "optimizer.", extra=("kind",))
        d["optimizer"] = OPTIMIZERS[kind](**{k: v for k, v in opt.items() if k != "kind"})
    return cls(**d)
