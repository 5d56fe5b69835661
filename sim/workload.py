"""Layer shapes of a network (dense and im2col convolutions) and closed-form operation counts.

A :class:`Workload` is what the hardware model sizes: per layer the weight matrix
``fan_out x fan_in`` (a convolution is lowered by im2col to ``c_out x (k*k*c_in)`` applied at
``positions`` output pixels), the activation volumes it reads and writes, and the dimension its
local loss sees. :func:`closed_form_counts` predicts the :class:`~spela_hw.counts.Counts` a
learner fills, so energy can be computed before (or without) a training run; for dense networks
it equals what the ``spela_hw`` training loop counts (test).

Conventions of the closed form (what a training run cannot know in advance):

* data-dependent counters are their upper bounds: ``forward_macs_nonzero = forward_macs``,
  ``update_macs_nonzero = update_macs``, ``update_writes = weight_writes``; ``saturations`` and
  ``zero_norm_events`` are 0;
* a convolution's weights are read once per sample (weight-stationary) and its update is the
  sum over positions (``positions * m * n`` MACs); SPELA's input normalisation applies to dense
  layers only, and a projection target costs one cosine (3 loss-unit operations) per channel;
* SPELA on a convolution applies the loss to the flattened, pooled output (class vectors of
  that dimension, ``target = "flat"``) unless the layer has a projection (``projection_params``:
  its forward and back-projection MACs go to ``loss_macs``, and when it is trainable its update
  MACs to ``update_macs`` and its values to the weight traffic; a ``"fixed_projection"`` is
  regenerated from a seed, so it is neither read from memory nor written) or compares the
  channel means (``"pooled"``: one add per pooled value in ``loss_macs``);
* BatchNorm (``norm_channels``) is digital per-channel arithmetic counted in ``loss_macs``: in
  training 6 multiply-adds per value (batch mean and variance, normalise-scale-shift, and the
  three of its backward pass), at inference 1 (the running statistics folded into one scale and
  shift); its scale and shift are read and written with the weights.

:func:`spec_workload` sizes a :class:`spela_hw.conv.ConvNetSpec`, the description the conv
trainers take, through the same layer constructor as :func:`conv_workload`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spela_hw.conv import ConvBlock, ConvNetSpec
from spela_hw.conv.description import MAX_GROUPS as MAX_CLASS_GROUPS
from spela_hw.counts import COUNTERS, Counts
from spela_hw.errors import ConfigError
from spela_hw.specs import NetworkSpec, PrecisionSpec, Sigprop, Spela

from .algorithms import ALGORITHMS, AlgorithmProfile

__all__ = [
    "LayerShape",
    "Workload",
    "as_workload",
    "conv_workload",
    "spec_workload",
    "vgg8",
    "closed_form_counts",
    "per_sample_counts",
    "rule_name",
    "algorithm_profile",
    "precision_bits",
    "COUNT_RULES",
]


TARGETS = ("flat", "projection", "fixed_projection", "pooled")


@dataclass(frozen=True)
class LayerShape:
    """One layer as the hardware sees it.

    Attributes
    ----------
    name : str
    kind : {"dense", "conv"}
    fan_in : int
        ``n``: rows of the (im2col) weight matrix, ``k*k*c_in`` for a convolution.
    fan_out : int
        ``m``: columns of the weight matrix (output channels).
    positions : int
        Matrix-vector products per sample (output pixels; 1 for dense).
    in_values : int
        Activation values the layer reads per sample (its input tensor).
    out_values : int
        Values it produces per sample before pooling (``positions * fan_out``).
    pooled_values : int
        Values passed to the next layer (after pooling).
    pool : int
        Pooling window size (4 for 2x2; 1 = none); a backprop pooling index has
        ``ceil(log2(pool))`` bits per pooled value.
    loss_dim : int
        Dimension of the vector a local loss compares with a class vector.
    projection_params : int
        Values of the projection in front of the local loss (SPELA CNN extension): ``c_out``
        matrices of ``(h*w) x projection_dim``.
    target : {"flat", "projection", "fixed_projection", "pooled"}
        What SPELA's local loss of a convolution compares with the class vectors: the flattened
        pooled output, a trainable projection of each channel, the same projection regenerated
        from a seed (nothing stored), or the channel means (``loss_dim = fan_out``). Dense layers
        are ``"flat"``.
    norm_channels : int
        Channels of a BatchNorm after the convolution (0: none): ``2 * norm_channels`` trainable
        values (scale, shift) and as many running statistics (mean, variance).
    class_groups : int
        Entries of the class-grouping table (class -> group per channel, ``c_out * C``) of a
        projection target; 0 otherwise.
    has_bias : bool
    """

    name: str
    kind: str
    fan_in: int
    fan_out: int
    positions: int = 1
    in_values: int = 0
    out_values: int = 0
    pooled_values: int = 0
    pool: int = 1
    loss_dim: int = 0
    projection_params: int = 0
    target: str = "flat"
    norm_channels: int = 0
    class_groups: int = 0
    has_bias: bool = True

    def __post_init__(self):
        if self.kind not in ("dense", "conv"):
            raise ConfigError(f"{self.name}.kind", f"must be 'dense' or 'conv', got {self.kind!r}")
        if self.target not in TARGETS:
            raise ConfigError(f"{self.name}.target", f"must be one of {TARGETS}, got {self.target!r}")
        if (self.projection_params > 0) != (self.target in ("projection", "fixed_projection")):
            raise ConfigError(f"{self.name}.projection_params", f"a {self.target!r} target "
                              f"{'needs' if self.target.endswith('projection') else 'has no'} projection")
        for f in ("fan_in", "fan_out", "positions", "pool"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{self.name}.{f}", f"must be a positive integer, got {v!r}")
        if self.in_values == 0:
            object.__setattr__(self, "in_values", self.fan_in * (1 if self.kind == "dense" else self.positions))
        if self.out_values == 0:
            object.__setattr__(self, "out_values", self.fan_out * self.positions)
        if self.pooled_values == 0:
            object.__setattr__(self, "pooled_values", self.out_values // self.pool)
        if self.loss_dim == 0:
            object.__setattr__(self, "loss_dim", self.pooled_values)

    @property
    def weights(self) -> int:
        return self.fan_in * self.fan_out

    @property
    def biases(self) -> int:
        return self.fan_out if self.has_bias else 0

    @property
    def macs(self) -> int:
        """Forward MACs per sample."""
        return self.weights * self.positions

    @property
    def norm_params(self) -> int:
        """BatchNorm's trainable scale and shift (as many running statistics)."""
        return 2 * self.norm_channels

    @property
    def stored_projection(self) -> int:
        """Projection values kept in memory and trained (0 for a seeded or no projection)."""
        return self.projection_params if self.target == "projection" else 0

    @property
    def trainable(self) -> int:
        """Values one update step reads and writes: weights, biases, BatchNorm, stored projection."""
        return self.weights + self.biases + self.norm_params + self.stored_projection


@dataclass(frozen=True)
class Workload:
    """A network as a stack of :class:`LayerShape` plus the number of classes."""

    layers: tuple[LayerShape, ...]
    n_classes: int
    name: str = "network"
    input_values: int = field(default=0)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ConfigError("layers", "a workload needs at least one layer")
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise ConfigError("n_classes", f"must be an integer >= 2, got {self.n_classes!r}")
        if self.input_values == 0:
            object.__setattr__(self, "input_values", self.layers[0].in_values)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def weights(self) -> int:
        return sum(layer.weights for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @classmethod
    def dense(cls, dims, n_classes: int | None = None, name: str | None = None) -> "Workload":
        """A multilayer perceptron ``dims = (784, 1024, 10)``; ``n_classes`` defaults to ``dims[-1]``."""
        dims = tuple(int(d) for d in dims)
        if len(dims) < 2 or any(d < 1 for d in dims):
            raise ConfigError("dims", f"need an input width and at least one positive layer width, got {dims}")
        layers = tuple(LayerShape(f"L{k + 1}", "dense", dims[k], dims[k + 1]) for k in range(len(dims) - 1))
        return cls(layers, n_classes or dims[-1], name or "-".join(map(str, dims)))


def as_workload(network, n_classes: int | None = None) -> Workload:
    """A :class:`Workload` from a Workload, a :class:`~spela_hw.specs.NetworkSpec`, a
    :class:`~spela_hw.conv.ConvNetSpec` or a dims sequence."""
    if isinstance(network, Workload):
        return network
    if isinstance(network, NetworkSpec):
        return Workload.dense(network.dims, n_classes or network.n_classes)
    if isinstance(network, ConvNetSpec):
        if n_classes is not None and n_classes != network.n_classes:
            raise ConfigError("n_classes", f"the conv network is described with {network.n_classes} classes, "
                                           f"got {n_classes}")
        return spec_workload(network)
    if isinstance(network, (tuple, list)) and network and all(isinstance(d, (int, np.integer)) for d in network):
        return Workload.dense(network, n_classes)
    raise ConfigError("network", f"must be a Workload, a NetworkSpec, a ConvNetSpec or a sequence of widths, "
                                 f"got {network!r}")


def _conv_layer(name: str, c_in: int, in_hw: tuple[int, int], kernel: int, c_out: int, conv_hw: tuple[int, int],
                pool: int, n_classes: int, projection_dim: int = 0, target: str = "flat",
                norm: bool = False) -> LayerShape:
    """One convolution as the hardware sees it: ``kernel x kernel x c_in -> c_out`` at ``conv_hw``
    output pixels, then BatchNorm (``norm``) and a ``pool x pool`` max-pool (floored sizes)."""
    (h, w), (oh, ow) = in_hw, conv_hw
    ph, pw = oh // pool, ow // pool
    if target == "flat" and projection_dim:
        target = "projection"
    proj = c_out * ph * pw * projection_dim if target.endswith("projection") else 0
    loss_dim = {"flat": c_out * ph * pw, "pooled": c_out}.get(target, c_out * projection_dim)
    return LayerShape(name, "conv", kernel * kernel * c_in, c_out, positions=oh * ow, in_values=h * w * c_in,
                      pooled_values=c_out * ph * pw, pool=pool * pool, loss_dim=loss_dim, projection_params=proj,
                      target=target, norm_channels=c_out if norm else 0,
                      class_groups=c_out * n_classes if proj else 0)


def conv_workload(rows, n_classes: int, name: str = "cnn", projection_dim: int = 0, target: str = "flat",
                  norm: bool = False) -> Workload:
    """A network from NeuroSim ``NetWork.csv``-style rows.

    Each row is ``(ifm_h, ifm_w, c_in, k, c_out, pool, stride)``: a ``k x k`` convolution with
    'same' padding and stride ``stride`` followed, when ``pool`` is true, by 2x2 pooling; a row with
    ``ifm_h = ifm_w = k = 1`` is a dense layer. ``projection_dim > 0`` adds SPELA's CNN-extension
    projection to every convolution: a ``(h*w) x projection_dim`` matrix per output channel after
    pooling, trainable (``target="projection"``, the default then) or regenerated from a seed
    (``"fixed_projection"``), so the loss sees ``c_out * projection_dim`` values; ``"pooled"``
    compares the channel means instead. ``norm`` puts a BatchNorm after every convolution.
    """
    if target not in TARGETS:
        raise ConfigError("target", f"must be one of {TARGETS}, got {target!r}")
    if target.endswith("projection") and projection_dim < 1:
        raise ConfigError("projection_dim", f"a {target!r} target needs projection_dim >= 1, got {projection_dim}")
    if target == "pooled" and projection_dim:
        raise ConfigError("projection_dim", f"a 'pooled' target has no projection, got {projection_dim}")
    layers = []
    for i, row in enumerate(rows):
        if len(row) != 7:
            raise ConfigError(f"rows[{i}]", "needs (ifm_h, ifm_w, c_in, k, c_out, pool, stride)")
        h, w, c_in, k, c_out, pool, stride = (int(x) for x in row)
        if h == w == k == 1:
            layers.append(LayerShape(f"FC{i + 1}", "dense", c_in, c_out))
            continue
        layers.append(_conv_layer(f"C{i + 1}", c_in, (h, w), k, c_out, (math.ceil(h / stride), math.ceil(w / stride)),
                                  2 if pool else 1, n_classes, projection_dim, target, norm))
    return Workload(tuple(layers), n_classes, name)


def spec_workload(spec: ConvNetSpec) -> Workload:
    """The :class:`Workload` of a conv network description, exactly as the trainers build it.

    Conv blocks become :func:`conv_workload`'s layers (the same constructor) with the spec's
    padding, stride and pool, its BatchNorm (``norm="batch"``) and SPELA's read-out
    (``conv_target``, ``projection_dim``); dense layers take the flattened map. Named by the
    spec string, e.g. ``"1x28x28:c32k5p2-c64k5p2-d10"``.
    """
    if not isinstance(spec, ConvNetSpec):
        raise ConfigError("network", f"must be a ConvNetSpec, got {type(spec).__name__}")
    layers = []
    for i, (layer, s) in enumerate(zip(spec.layers, spec.shapes())):
        if isinstance(layer, ConvBlock):
            c_in, h, w = s["input"]
            layers.append(_conv_layer(f"C{i + 1}", c_in, (h, w), layer.kernel, layer.filters, s["conv"][1:],
                                      layer.pool, spec.n_classes, spec.projection_dim if spec.conv_target != "pooled"
                                      else 0, spec.conv_target, spec.norm == "batch"))
        else:
            layers.append(LayerShape(f"FC{i + 1}", "dense", s["input"][0], layer.units))
    return Workload(tuple(layers), spec.n_classes, f"{'x'.join(map(str, spec.input_shape))}:{spec.net}")


# NeuroSim's VGG-8 for CIFAR-10 (NetWork.csv): 6 convolutions + 2 dense layers.
VGG8_ROWS = (
    (32, 32, 3, 3, 128, 0, 1),
    (32, 32, 128, 3, 128, 1, 1),
    (16, 16, 128, 3, 256, 0, 1),
    (16, 16, 256, 3, 256, 1, 1),
    (8, 8, 256, 3, 512, 0, 1),
    (8, 8, 512, 3, 512, 1, 1),
    (1, 1, 8192, 1, 1024, 0, 1),
    (1, 1, 1024, 1, 10, 0, 1),
)


def vgg8(projection_dim: int = 0) -> Workload:
    """VGG-8 on CIFAR-10 as in NeuroSim's ``NetWork.csv`` (12 973 440 weights, ~616 M MACs)."""
    return conv_workload(VGG8_ROWS, 10, "vgg8" if not projection_dim else f"vgg8-proj{projection_dim}",
                         projection_dim)


# -- closed-form counts --------------------------------------------------------------------------


def rule_name(rule) -> str:
    """``"spela"``, ``"backprop"``, ... from a rule spec or a name."""
    if isinstance(rule, str):
        return rule
    name = getattr(rule, "name", None)
    if not isinstance(name, str):
        raise ConfigError("rule", f"must be a rule spec or a rule name, got {rule!r}")
    return name


def algorithm_profile(rule) -> AlgorithmProfile:
    """The :class:`~sim.algorithms.AlgorithmProfile` of a rule spec or name."""
    name = rule_name(rule)
    if name not in ALGORITHMS:
        raise ConfigError("rule", f"must be one of {tuple(ALGORITHMS)}, got {name!r}")
    return ALGORITHMS[name]


def precision_bits(precision: PrecisionSpec | None) -> tuple[str, dict]:
    """``(name, bits)`` as stored in :class:`Counts` (32 everywhere for float32)."""
    if precision is None or not precision.is_fixed:
        return "fp32", {k: 32 for k in ("weight", "activation", "accumulator", "class_vector", "update")}
    return precision.name, {k: getattr(precision, k).bits
                            for k in ("weight", "activation", "accumulator", "class_vector", "update")}


def _zeros(n_layers: int) -> dict[str, np.ndarray]:
    return {name: np.zeros(n_layers, dtype=np.int64) for name in COUNTERS}


def _local_loss_macs(L: LayerShape) -> int:
    """Loss-side MACs of one SPELA training sample beyond the cosine: projection forward and back
    (``P`` each), the channel means of a pooled target, BatchNorm (module docstring)."""
    pooled = L.pooled_values if L.target == "pooled" else 0
    return 2 * L.projection_params + pooled + NORM_TRAIN_MACS * L.norm_channels * L.positions


#: BatchNorm multiply-adds per value: training (statistics, normalise, backward), inference (folded).
NORM_TRAIN_MACS, NORM_INFER_MACS = 6, 1


def _spela_train(workload: Workload, rule, samples: int, steps: int, batch_size: int) -> dict:
    spec = rule if isinstance(rule, Spela) else Spela()
    d = _zeros(workload.n_layers)
    norm = spec.input_norm != "off"
    for k, L in enumerate(workload.layers):
        wb = L.trainable
        d["forward_macs"][k] = L.macs * samples
        norm_k = norm and L.kind == "dense"  # a conv block's loss never normalises its input
        d["loss_macs"][k] = (2 * L.loss_dim + (L.in_values if norm_k else 0) + _local_loss_macs(L)) * samples
        d["update_macs"][k] = (L.macs + L.stored_projection) * samples
        d["weight_reads"][k] = wb * (samples + steps)
        d["weight_writes"][k] = wb * steps
        d["act_reads"][k] = 2 * L.in_values * samples
        d["act_writes"][k] = 2 * L.out_values * samples
        d["class_vector_reads"][k] = L.loss_dim * samples
        if L.projection_params:  # one (1 - cos)^2 per channel (spela_hw.conv.model)
            ops = 3 * L.fan_out
        else:
            ops = 3 + (1 if spec.loss == "log_2_minus_cos" else 0) + (2 if norm_k else 0)
        d["loss_unit_ops"][k] = ops * samples
        if spec.update_order == "recompute":  # one more forward pass after the step
            d["forward_macs"][k] += L.macs * samples
            d["weight_reads"][k] += (wb - L.stored_projection) * samples
            d["act_reads"][k] += L.in_values * samples
            d["act_writes"][k] += L.out_values * samples
    return d


def _backprop_train(workload: Workload, rule, samples: int, steps: int, batch_size: int) -> dict:
    """Backprop counts as ``spela_hw.rules.backprop`` defines them (its module docstring)."""
    d = _zeros(workload.n_layers)
    Ls = workload.layers
    last = len(Ls) - 1
    n_cls = Ls[-1].fan_out
    for k, L in enumerate(Ls):
        wb = L.weights + L.biases + L.norm_params
        d["forward_macs"][k] = L.macs * samples
        d["loss_macs"][k] = NORM_TRAIN_MACS * L.norm_channels * L.positions * samples  # BatchNorm
        d["error_macs"][k] = (L.macs if k > 0 else 0) * samples
        d["update_macs"][k] = L.macs * samples
        # forward read, transposed read for the error path (not for the first layer), RMW per step
        d["weight_reads"][k] = (wb + (L.weights if k > 0 else 0)) * samples + wb * steps
        d["weight_writes"][k] = wb * steps
        # forward input + update input; p_k read by the error path (k >= 1); the stored
        # pre-activation read back for the derivative when the layer above propagates (k < last)
        reads = 2 * L.in_values + (L.out_values if k > 0 else 0) + (L.out_values if k < last else 0)
        # output; stored pre-activation and p_k written by the layer above (k < last); output term
        writes = L.out_values + (2 * L.out_values if k < last else n_cls)
        d["act_reads"][k] = reads * samples
        d["act_writes"][k] = writes * samples
        if k == last:
            d["loss_macs"][k] += n_cls * samples          # sum of exponentials
            d["loss_unit_ops"][k] = 2 * n_cls * samples   # N exponentials, N divisions
    return d


def _sigprop_step(d: dict, workload: Workload, spec: Sigprop, B: int) -> None:
    """Add one sigprop step on a mini-batch of ``B`` samples (``spela_hw.rules.sigprop`` docstring)."""
    Ls = workload.layers
    C = workload.n_classes
    R = C if spec.targets == "classes" else B  # target rows forwarded, B'
    n_sig = len(Ls) - 1 if spec.inference == "output_layer" else len(Ls)
    for k, L in enumerate(Ls):
        m, n = L.fan_out, L.fan_in
        # input stream
        d["forward_macs"][k] += B * m * n
        d["weight_reads"][k] += B * (m * n + m)
        d["act_reads"][k] += B * n
        d["act_writes"][k] += B * m
        if k >= n_sig:  # the read-out layer: softmax cross-entropy on its detached input
            d["loss_macs"][k] += B * m
            d["loss_unit_ops"][k] += 2 * B * m
            d["act_writes"][k] += B * m
            d["update_macs"][k] += B * m * n
            d["act_reads"][k] += B * n
            d["weight_reads"][k] += m * n + m
            d["weight_writes"][k] += m * n + m
            continue
        concat = k == 0 and spec.front == "concat"
        n_in = C if concat else n  # the concat front's target rows enter through the C label columns
        d["target_macs"][k] += R * m * n_in
        d["weight_reads"][k] += R * (m * n_in + m)
        d["act_reads"][k] += R * n_in
        d["act_writes"][k] += R * m
        if k == 0 and not concat:  # projection front t_0 = f(P c), P n x C
            d["target_macs"][k] += R * n * C
            d["weight_reads"][k] += R * n * C
            d["act_reads"][k] += R * C
            d["act_writes"][k] += R * n
        # local loss: rows of the input branch (p_h) and of the target branch (p_t)
        h_rows, t_rows = B, 0
        if spec.loss == "in_batch_ce":
            d["loss_macs"][k] += 2 * B * R * m + B * R
            d["loss_unit_ops"][k] += 2 * B * R
            d["act_writes"][k] += B * m
            if spec.target_grad:
                d["loss_macs"][k] += B * R * m
                d["act_writes"][k] += R * m
                t_rows = R
        elif spec.loss == "cosine":
            branches = 2 if spec.target_grad else 1
            d["loss_macs"][k] += branches * 3 * B * m
            d["loss_unit_ops"][k] += branches * 3 * B
            d["act_writes"][k] += branches * B * m
            t_rows = B if spec.target_grad else 0
        else:  # l2 and the Hebbian forms
            d["loss_macs"][k] += B * m
            d["act_writes"][k] += B * m
            if spec.hebbian == "target_pre":
                h_rows, t_rows = 0, B
            elif spec.hebbian == "off" and spec.target_grad:
                d["loss_macs"][k] += B * m
                d["act_writes"][k] += B * m
                t_rows = B
        # one read-modify-write of W, b from every row; concat's target rows step S (and b) only
        mac_rows = h_rows + (0 if concat else t_rows)
        d["update_macs"][k] += mac_rows * m * n
        d["act_reads"][k] += mac_rows * n
        d["weight_reads"][k] += m * n + m
        d["weight_writes"][k] += m * n + m
        if t_rows and k == 0 and spec.front != "random_projection":
            front_rows = m if concat else n  # S is m x C, a learned P is n x C
            if spec.front == "learned_projection":  # q = (p_t W) f'(a_0)
                d["error_macs"][k] += t_rows * m * n
                d["weight_reads"][k] += t_rows * m * n
            d["update_macs"][k] += t_rows * front_rows * C
            d["act_reads"][k] += t_rows * C
            d["weight_reads"][k] += front_rows * C
            d["weight_writes"][k] += front_rows * C


def _sigprop_train(workload: Workload, rule, samples: int, steps: int, batch_size: int) -> dict:
    """Sigprop counts as ``spela_hw.rules.sigprop`` defines them (its module docstring).

    Dense layers only. With ``targets="batch"`` the in-batch loss costs ``B^2`` per step, so the
    last, partial mini-batch is counted with its own size.
    """
    spec = rule if isinstance(rule, Sigprop) else Sigprop()
    if any(L.kind != "dense" for L in workload.layers):
        raise ConfigError("network", "closed-form sigprop counts exist for dense layers only")
    if spec.inference == "output_layer" and workload.layers[-1].fan_out != workload.n_classes:
        raise ConfigError("network", f"sigprop's output layer needs one unit per class ({workload.n_classes})")
    d = _zeros(workload.n_layers)
    full, rest = divmod(samples, batch_size)
    if full:
        one = _zeros(workload.n_layers)
        _sigprop_step(one, workload, spec, batch_size)
        for key in d:
            d[key] += one[key] * full
    if rest:
        _sigprop_step(d, workload, spec, rest)
    return d


def _inference(workload: Workload, rule, samples: int, exit_layer: int, readouts: str) -> dict:
    d = _zeros(workload.n_layers)
    # rules whose last layer is read out by the argmax of its logits (as spela_hw's
    # uses_logit_readout): backprop, and sigprop's output layer (its spec's default)
    logit_last = (algorithm_profile(rule).readout == "logits"
                  and getattr(rule, "inference", "output_layer") == "output_layer")
    norm = isinstance(rule, Spela) and rule.input_norm == "every_layer"
    n_cls = workload.n_classes
    for k, L in enumerate(workload.layers[: exit_layer + 1]):
        d["forward_macs"][k] = L.macs * samples
        d["weight_reads"][k] = (L.weights + L.biases + L.norm_params) * samples
        d["act_reads"][k] = L.in_values * samples
        d["act_writes"][k] = L.out_values * samples
        d["loss_macs"][k] = NORM_INFER_MACS * L.norm_channels * L.positions * samples  # folded BatchNorm
        if norm and L.kind == "dense":  # |x|^2 and one rsqrt + scale per sample, as in training
            d["loss_macs"][k] += L.in_values * samples
            d["loss_unit_ops"][k] = 2 * samples
        # a logit read-out counts nothing; every other exit is the cosine read-out to that layer's
        # class vectors (sigprop: to its C x m class-target table; same counts, as in spela_hw)
        logits = logit_last and k == workload.n_layers - 1
        reads_out = not logits and (k == exit_layer or readouts == "all")
        if reads_out:
            d["readout_macs"][k] = n_cls * L.loss_dim * samples
            d["class_vector_reads"][k] = n_cls * L.loss_dim * samples
            if L.projection_params:
                d["loss_macs"][k] += L.projection_params * samples
                d["weight_reads"][k] += L.stored_projection * samples
            elif L.target == "pooled":
                d["loss_macs"][k] += L.pooled_values * samples
    return d


# Closed-form training counts per rule: adding a rule is one entry here.
COUNT_RULES = {"spela": _spela_train, "backprop": _backprop_train, "sigprop": _sigprop_train}


def closed_form_counts(
    network,
    rule,
    batch_size: int = 1,
    phase: str = "train",
    samples: int | None = None,
    precision: PrecisionSpec | None = None,
    exit_layer: int | None = None,
    readouts: str = "exit",
    n_classes: int | None = None,
) -> Counts:
    """The :class:`~spela_hw.counts.Counts` a learner would fill, in closed form.

    Parameters
    ----------
    network : Workload, NetworkSpec or sequence of int
    rule : Spela, Backprop, Sigprop or str
        A rule spec (its ``loss`` and ``input_norm`` matter for SPELA; every option but the
        optimiser for sigprop) or a name in :data:`COUNT_RULES` (the spec's defaults).
    batch_size : int
        Samples per update step (training).
    phase : {"train", "infer"}
    samples : int, optional
        Samples processed; defaults to one batch. ``update_steps = ceil(samples / batch_size)``.
    precision : PrecisionSpec, optional
        Recorded in the counts (``bits``); float32 when omitted.
    exit_layer : int, optional
        Inference only: the layer read out (0-based; default the last). Layers after it cost
        nothing (early exit).
    readouts : {"exit", "all"}
        Inference only: read out the exit layer, or every layer up to it (SPELA's every-layer
        accuracy).
    """
    wl = as_workload(network, n_classes)
    name = rule_name(rule)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("batch_size", f"must be a positive integer, got {batch_size!r}")
    samples = batch_size if samples is None else samples
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ConfigError("samples", f"must be a non-negative integer, got {samples!r}")
    prec_name, bits = precision_bits(precision)
    if phase == "train":
        if name not in COUNT_RULES:
            raise ConfigError("rule", f"closed-form training counts exist for {tuple(COUNT_RULES)}, got {name!r}")
        steps = -(-samples // batch_size)
        data = COUNT_RULES[name](wl, rule, samples, steps, batch_size)
    elif phase == "infer":
        last = wl.n_layers - 1
        exit_layer = last if exit_layer is None else exit_layer
        if isinstance(exit_layer, bool) or not isinstance(exit_layer, int) or not 0 <= exit_layer <= last:
            raise ConfigError("exit_layer", f"must be an integer in [0, {last}], got {exit_layer!r}")
        if readouts not in ("exit", "all"):
            raise ConfigError("readouts", f"must be 'exit' or 'all', got {readouts!r}")
        steps = 0
        data = _inference(wl, rule, samples, exit_layer, readouts)
    else:
        raise ConfigError("phase", f"must be 'train' or 'infer', got {phase!r}")
    data["forward_macs_nonzero"] = data["forward_macs"].copy()
    data["update_macs_nonzero"] = data["update_macs"].copy()
    data["update_writes"] = data["weight_writes"].copy()
    return Counts(wl.n_layers, phase, prec_name, bits, samples, steps, data)


def per_sample_counts(counts: Counts) -> list[dict[str, float]]:
    """Counters per sample as one dict per layer (tidy form for tables)."""
    ps = counts.per_sample()
    return [{name: float(ps[name][k]) for name in COUNTERS} for k in range(counts.n_layers)]
